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

func TestIdempotencyKeys(t *testing.T) {
	ctx := testContext(t, time.Minute)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db := MustOpenDBAt(t, filepath.Join(t.TempDir(), "simgate.db"), store.Options{Now: func() time.Time { return now }})
	k := &simgate.APIKey{Hash: bytes.Repeat([]byte{1}, 32), Scopes: []simgate.Scope{simgate.ScopeSend}}
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	h1, h2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	step := func(hash []byte, want simgate.IdempotencyOutcome) {
		t.Helper()
		got, _, _, _, err := db.ReserveIdempotencyKey(ctx, k.ID, "a", hash, 24*time.Hour, 30*time.Second)
		if err != nil || got != want {
			t.Fatalf("reserve = %q, %v; want %q", got, err, want)
		}
	}
	step(h1, simgate.IdempotencyReserved)
	step(h1, simgate.IdempotencyInFlight)
	step(h2, simgate.IdempotencyMismatch)
	if err := db.ReleaseIdempotencyKey(ctx, k.ID, "a"); err != nil {
		t.Fatal(err)
	}
	step(h2, simgate.IdempotencyReserved)
	if err := db.CompleteIdempotencyKey(ctx, k.ID, "a", 201, []byte(`{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	got, status, body, _, err := db.ReserveIdempotencyKey(ctx, k.ID, "a", h2, 24*time.Hour, 30*time.Second)
	if err != nil || got != simgate.IdempotencyReplay || status != 201 || string(body) != `{"id":1}` {
		t.Fatalf("replay = %q %d %s %v", got, status, body, err)
	}
	if err := db.ReleaseIdempotencyKey(ctx, k.ID, "a"); err != nil {
		t.Fatal(err)
	}
	step(h2, simgate.IdempotencyReplay) // a completed key is not released
	now = now.Add(24 * time.Hour)
	step(h1, simgate.IdempotencyReserved)
	if n, err := db.PurgeIdempotencyKeys(ctx, now.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v", n, err)
	}
}
