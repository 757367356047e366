package store_test

import (
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
	return &simgate.Message{To: to, Text: text, Parts: make([]simgate.Part, parts)}
}

// Pages are newest first and the cursor continues where the last page ended.
func TestMessages_List(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	var ids []string
	for i := 0; i < 5; i++ {
		to := "+15550000001"
		if i%2 == 1 {
			to = "+15550000002"
		}
		m := newMessage(to, "x", 1)
		if err := createMessage(ctx, db, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		if i < 3 {
			clk.Advance(time.Second) // the last two share a millisecond
		}
	}
	var got []string
	cursor := ""
	for {
		ms, next, err := db.ListMessages(ctx, simgate.MessageFilter{Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			got = append(got, m.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 5 || got[4] != ids[0] {
		t.Fatalf("paged %v, want all 5 newest first (oldest %s)", got, ids[0])
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
	}
	ms, _, err := db.ListMessages(ctx, simgate.MessageFilter{To: "+15550000002"})
	if err != nil || len(ms) != 2 {
		t.Fatalf("by recipient: %d, %v", len(ms), err)
	}
	if _, _, err := db.ListMessages(ctx, simgate.MessageFilter{Cursor: "nope!"}); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("bad cursor: %v", err)
	}
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

// Opt-outs are idempotent both ways. That they refuse all but verification
// messages is the queue's rule (queue.TestCreate_OptOut).
func TestOptOuts(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, _, _ := openWithClock(t)
	for i := 0; i < 2; i++ {
		if err := db.SetOptOut(ctx, "+15550000001", "STOP", true); err != nil {
			t.Fatal(err)
		}
	}
	if k, ok, err := db.OptedOut(ctx, "+15550000001"); err != nil || !ok || k != "STOP" {
		t.Fatalf("OptedOut = %q %v %v", k, ok, err)
	}
	for i := 0; i < 2; i++ {
		if err := db.SetOptOut(ctx, "+15550000001", "START", false); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := db.OptedOut(ctx, "+15550000001"); ok {
		t.Fatal("still opted out")
	}
}
