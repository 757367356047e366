package storetest

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// IdempotencyStore is the contract of Idempotency-Keys (api.IdempotencyStore),
// with what the tests need around it: keys, and a message created under a
// reservation.
type IdempotencyStore interface {
	ReserveIdempotencyKey(ctx context.Context, apiKeyID, key string, requestHash []byte, ttl, lease time.Duration) (simgate.IdempotencyOutcome, int, []byte, string, error)
	CompleteIdempotencyKey(ctx context.Context, apiKeyID, key string, status int, body []byte) error
	ReleaseIdempotencyKey(ctx context.Context, apiKeyID, key string) error
	PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)
	CreateAPIKey(ctx context.Context, k *simgate.APIKey) error
	UpdateVerifications(ctx context.Context, fn func(simgate.VerificationTx) error) error
}

// idempotencySetup opens a database with one API key.
func idempotencySetup(t *testing.T, open Open) (IdempotencyStore, *Clock, string) {
	t.Helper()
	clk := NewClock()
	db := as[IdempotencyStore](t, open(t, "idempotency", clk.Now))
	k := &simgate.APIKey{Hash: bytes.Repeat([]byte{1}, 32), Scopes: []simgate.Scope{simgate.ScopeSend}}
	if err := db.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return db, clk, k.ID
}

// IdempotencyKeys checks a key's life: reserved, in flight, a mismatch for
// another request, released after a failure, completed and replayed (a
// completed key is not released), reserved again after its ttl, purged.
func IdempotencyKeys(t *testing.T, open Open) {
	ctx := testContext(t)
	db, clk, keyID := idempotencySetup(t, open)
	h1, h2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	step := func(hash []byte, want simgate.IdempotencyOutcome) {
		t.Helper()
		got, _, _, _, err := db.ReserveIdempotencyKey(ctx, keyID, "a", hash, 24*time.Hour, 30*time.Second)
		if err != nil || got != want {
			t.Fatalf("reserve = %q, %v; want %q", got, err, want)
		}
	}
	step(h1, simgate.IdempotencyReserved)
	step(h1, simgate.IdempotencyInFlight)
	step(h2, simgate.IdempotencyMismatch)
	if err := db.ReleaseIdempotencyKey(ctx, keyID, "a"); err != nil {
		t.Fatal(err)
	}
	step(h2, simgate.IdempotencyReserved)
	if err := db.CompleteIdempotencyKey(ctx, keyID, "a", 201, []byte(`{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.CompleteIdempotencyKey(ctx, keyID, "a", 201, []byte(`{"id":2}`)); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("a second completion: %v, want not found (not reserved)", err)
	}
	got, status, body, _, err := db.ReserveIdempotencyKey(ctx, keyID, "a", h2, 24*time.Hour, 30*time.Second)
	if err != nil || got != simgate.IdempotencyReplay || status != 201 || string(body) != `{"id":1}` {
		t.Fatalf("replay = %q %d %s %v", got, status, body, err)
	}
	if err := db.ReleaseIdempotencyKey(ctx, keyID, "a"); err != nil {
		t.Fatal(err)
	}
	step(h2, simgate.IdempotencyReplay) // a completed key is not released
	clk.Advance(24 * time.Hour)
	step(h1, simgate.IdempotencyReserved)
	if n, err := db.PurgeIdempotencyKeys(ctx, clk.Now().Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v", n, err)
	}
}

// IdempotencyLease checks that a reservation whose request died is taken
// over once its lease has run out; that the store tells apart a dead
// request that created a message (recorded with the reservation in the
// message's transaction) from one that created nothing; and that a
// reservation with a message is never released.
func IdempotencyLease(t *testing.T, open Open) {
	ctx := testContext(t)
	db, clk, keyID := idempotencySetup(t, open)
	hash := bytes.Repeat([]byte{7}, 32)
	const ttl, lease = 24 * time.Hour, 30 * time.Second
	reserve := func(key string, want simgate.IdempotencyOutcome, wantID string) {
		t.Helper()
		got, _, _, id, err := db.ReserveIdempotencyKey(ctx, keyID, key, hash, ttl, lease)
		if err != nil || got != want || id != wantID {
			t.Fatalf("reserve %s = %q %q, %v; want %q %q", key, got, id, err, want, wantID)
		}
	}

	// "a" dies after creating its message; "b" before creating anything.
	reserve("a", simgate.IdempotencyReserved, "")
	reserve("b", simgate.IdempotencyReserved, "")
	m := &simgate.Message{To: "+4915123456780", Text: "x", Status: simgate.StatusQueued, Reason: "accepted",
		Priority: simgate.PriorityNormal, Parts: []simgate.Part{{Status: simgate.StatusQueued, MR: -1}}}
	if err := db.UpdateVerifications(simgate.WithIdempotencyKey(ctx, keyID, "a"), func(tx simgate.VerificationTx) error {
		return tx.CreateMessage(simgate.WithIdempotencyKey(ctx, keyID, "a"), m)
	}); err != nil {
		t.Fatal(err)
	}
	// A failed request's release does not forget a key that created a message.
	if err := db.ReleaseIdempotencyKey(ctx, keyID, "a"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(lease - time.Millisecond)
	reserve("a", simgate.IdempotencyInFlight, "")
	reserve("b", simgate.IdempotencyInFlight, "")
	clk.Advance(time.Millisecond)
	reserve("a", simgate.IdempotencyRecover, m.ID)
	reserve("b", simgate.IdempotencyReserved, "")
	// Taken over: a new lease, not a second takeover.
	reserve("a", simgate.IdempotencyInFlight, "")
	reserve("b", simgate.IdempotencyInFlight, "")
	if err := db.CompleteIdempotencyKey(ctx, keyID, "a", 201, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	reserve("a", simgate.IdempotencyReplay, "")
}

// IdempotencyConcurrent checks that of requests racing with one new key
// (on any host) exactly one runs, and of retries racing to take over a dead
// request's reservation exactly one takes it.
func IdempotencyConcurrent(t *testing.T, open Open) {
	ctx := testContext(t)
	db, clk, keyID := idempotencySetup(t, open)
	hash := bytes.Repeat([]byte{7}, 32)
	race := func() map[simgate.IdempotencyOutcome]int {
		t.Helper()
		var mu sync.Mutex
		got := map[simgate.IdempotencyOutcome]int{}
		var wg sync.WaitGroup
		var failed atomic.Bool
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o, _, _, _, err := db.ReserveIdempotencyKey(ctx, keyID, "k", hash, 24*time.Hour, 30*time.Second)
				if err != nil {
					failed.Store(true)
					t.Error(err)
				}
				mu.Lock()
				got[o]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if failed.Load() {
			t.FailNow()
		}
		return got
	}
	if got := race(); got[simgate.IdempotencyReserved] != 1 || got[simgate.IdempotencyInFlight] != 19 {
		t.Fatalf("20 requests with a new key: %v; want one reserved, 19 in flight", got)
	}
	clk.Advance(30 * time.Second)
	if got := race(); got[simgate.IdempotencyReserved] != 1 || got[simgate.IdempotencyInFlight] != 19 {
		t.Fatalf("20 retries past the lease: %v; want one takeover, 19 in flight", got)
	}
}
