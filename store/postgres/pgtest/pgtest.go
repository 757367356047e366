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
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// NewDatabase creates an empty database on the server SIMGATE_TEST_POSTGRES
// names (.ci/postgres starts one) and returns its DSN; the database is
// dropped when the test ends. Without a server the test is skipped, unless
// SIMGATE_REQUIRE_POSTGRES is set (CI sets both). The DSN keeps the query
// parameters of SIMGATE_TEST_POSTGRES, pgxpool's (pool_max_conns=8, say)
// included.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("SIMGATE_TEST_POSTGRES")
	if admin == "" {
		if os.Getenv("SIMGATE_REQUIRE_POSTGRES") != "" {
			t.Fatal("SIMGATE_REQUIRE_POSTGRES is set but SIMGATE_TEST_POSTGRES names no server")
		}
		t.Skip("no PostgreSQL: set SIMGATE_TEST_POSTGRES to a PostgreSQL 14+ DSN (.ci/postgres starts one)")
	}
	// pgxpool's settings (pool_max_conns and the like) are for the
	// database's pools, not PostgreSQL: the connection that creates the
	// database goes without them.
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	server := *u
	server.RawQuery = q.Encode()
	admin = server.String()
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
	u.Path = "/" + name
	return u.String()
}
