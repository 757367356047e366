package store_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

// TestIdempotencyLease: a reservation whose request died is taken over once
// its lease has run out; the store tells apart a dead request that created
// a message (recorded with the reservation in the message's transaction)
// from one that created nothing, and never releases a reservation with a
// message.
func TestIdempotencyLease(t *testing.T) {
	ctx := testContext(t, time.Minute)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db := MustOpenDBAt(t, filepath.Join(t.TempDir(), "simgate.db"), store.Options{Now: func() time.Time { return now }})
	k := &simgate.APIKey{Hash: bytes.Repeat([]byte{1}, 32), Scopes: []simgate.Scope{simgate.ScopeSend}}
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	hash := bytes.Repeat([]byte{7}, 32)
	const ttl, lease = 24 * time.Hour, 30 * time.Second
	reserve := func(key string, want simgate.IdempotencyOutcome, wantID string) {
		t.Helper()
		got, _, _, id, err := db.ReserveIdempotencyKey(ctx, k.ID, key, hash, ttl, lease)
		if err != nil || got != want || id != wantID {
			t.Fatalf("reserve %s = %q %q, %v; want %q %q", key, got, id, err, want, wantID)
		}
	}

	// "a" dies after creating its message; "b" before creating anything.
	reserve("a", simgate.IdempotencyReserved, "")
	reserve("b", simgate.IdempotencyReserved, "")
	m := &simgate.Message{To: "+4915123456780", Text: "x", Parts: make([]simgate.Part, 1)}
	if err := createMessage(simgate.WithIdempotencyKey(ctx, k.ID, "a"), db, m); err != nil {
		t.Fatal(err)
	}
	// A failed request's release does not forget a key that created a message.
	if err := db.ReleaseIdempotencyKey(ctx, k.ID, "a"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(lease - time.Millisecond)
	reserve("a", simgate.IdempotencyInFlight, "")
	reserve("b", simgate.IdempotencyInFlight, "")
	now = now.Add(time.Millisecond)
	reserve("a", simgate.IdempotencyRecover, m.ID)
	reserve("b", simgate.IdempotencyReserved, "")
	// Taken over: a new lease, not a second takeover.
	reserve("a", simgate.IdempotencyInFlight, "")
	reserve("b", simgate.IdempotencyInFlight, "")
	if err := db.CompleteIdempotencyKey(ctx, k.ID, "a", 201, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	reserve("a", simgate.IdempotencyReplay, "")
}
