package postgres

import (
	"context"
	"testing"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/storetest"
)

// openForTest opens a new, empty database on the test server with the
// clock now, closed when the test ends.
func openForTest(t *testing.T, now simgate.Clock) *DB {
	t.Helper()
	db, err := Open(context.Background(), newDatabase(t), Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAPIKeys(t *testing.T) {
	storetest.APIKeys(t, func(t *testing.T, now simgate.Clock) storetest.KeyStore { return openForTest(t, now) })
}
