package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/storetest"
)

// openWithClock opens a new database on a clock that moves only when told.
func openWithClock(t *testing.T) (*store.DB, *storetest.Clock, string) {
	c := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "simgate.db")
	return MustOpenDBAt(t, path, store.Options{Now: c.Now}), c, path
}

func newMessage(to, text string, parts int) *simgate.Message {
	return storetest.NewMessage(to, text, parts)
}

// createMessage stores m queued, in a message transaction of its own
// (storetest.CreateMessage).
func createMessage(ctx context.Context, db *store.DB, m *simgate.Message) error {
	return storetest.CreateMessage(ctx, db, m)
}

// UpsertModem moves an IMEI to a new name: the IMEI is what makes a modem the
// same modem.
func TestUpsertModem(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, _, _ := openWithClock(t)
	id := simgate.ModemIdentity{IMEI: "350000000000006", ICCID: "8901"}
	if err := db.UpsertModem(ctx, "m0", id); err != nil {
		t.Fatal(err)
	}
	if err := db.UpsertModem(ctx, "renamed", id); err != nil {
		t.Fatalf("same IMEI under a new name: %v", err)
	}
}
