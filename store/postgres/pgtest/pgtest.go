// Package pgtest gives tests a PostgreSQL database of their own, on the
// server SIMGATE_TEST_POSTGRES names: the PostgreSQL store's tests
// (store/postgres) and those of the services that run on it (queue).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// NewDatabase creates an empty database on the server SIMGATE_TEST_POSTGRES
// names (.ci/postgres starts one) and returns its DSN; the database is
// dropped when the test ends. Without a server the test is skipped, unless
// SIMGATE_REQUIRE_POSTGRES is set (CI sets both).
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("SIMGATE_TEST_POSTGRES")
	if admin == "" {
		if os.Getenv("SIMGATE_REQUIRE_POSTGRES") != "" {
			t.Fatal("SIMGATE_REQUIRE_POSTGRES is set but SIMGATE_TEST_POSTGRES names no server")
		}
		t.Skip("no PostgreSQL: set SIMGATE_TEST_POSTGRES to a PostgreSQL 14+ DSN (.ci/postgres starts one)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("cannot reach the test server: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "simgate_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("cannot drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("cannot drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
