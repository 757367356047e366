package store_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

func hashOf(code string) func(id string) []byte {
	return func(id string) []byte { return bytes.Repeat([]byte(code[:1]), 32) }
}

func matchOf(code string) func(id string, hash []byte) bool {
	return func(id string, hash []byte) bool { return bytes.Equal(hash, bytes.Repeat([]byte(code[:1]), 32)) }
}

func TestVerificationLifecycle(t *testing.T) {
	ctx := testContext(t, time.Minute)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	db := MustOpenDBAt(t, filepath.Join(t.TempDir(), "simgate.db"), store.Options{Now: clock})

	v := &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 3, ExpiresAt: clock().Add(10 * time.Minute)}
	resent, err := db.StartVerification(ctx, v, hashOf("1"), nil, 2, 10*time.Minute, 100)
	if err != nil || resent {
		t.Fatalf("start: %v, resent %v", err, resent)
	}
	id := v.ID
	v2 := &simgate.Verification{To: v.To, CodeLength: 6, MaxAttempts: 3, ExpiresAt: clock().Add(10 * time.Minute)}
	if resent, err = db.StartVerification(ctx, v2, hashOf("2"), nil, 2, 10*time.Minute, 100); err != nil || !resent || v2.ID != id || v2.SendCount != 2 {
		t.Fatalf("resend: %v, resent %v, %+v", err, resent, v2)
	}
	_, err = db.StartVerification(ctx, &simgate.Verification{To: v.To, CodeLength: 6, MaxAttempts: 3, ExpiresAt: clock().Add(time.Minute)}, hashOf("3"), nil, 2, 10*time.Minute, 100)
	var rl *simgate.RateLimitError
	if simgate.ErrorCode(err) != simgate.CodeRateLimited || !asRateLimit(err, &rl) || rl.RetryAfter() != 10*time.Minute {
		t.Fatalf("third send: %v", err)
	}

	// The first code was replaced.
	got, changed, failures, err := db.CheckVerification(ctx, id, "", matchOf("1"), 100)
	if err != nil || changed || got.Status != simgate.VerificationPending || got.Attempts != 1 || failures != 1 {
		t.Fatalf("old code: %+v, %v, %d, %v", got, changed, failures, err)
	}
	if got.CodeHash != nil {
		t.Fatal("CheckVerification returned the hash")
	}
	got, changed, _, err = db.CheckVerification(ctx, "", v.To, matchOf("2"), 100)
	if err != nil || !changed || got.Status != simgate.VerificationApproved || got.ApprovedAt.IsZero() {
		t.Fatalf("new code: %+v, %v, %v", got, changed, err)
	}
	if _, _, _, err = db.CheckVerification(ctx, "", v.To, matchOf("2"), 100); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("by number after approval: %v", err)
	}
	got, changed, _, err = db.CheckVerification(ctx, id, "", matchOf("2"), 100)
	if err != nil || changed || got.Status != simgate.VerificationApproved {
		t.Fatalf("again: %+v, %v, %v", got, changed, err)
	}

	// Expiry, seen by Get before any write, then written by the sweep.
	advance(10 * time.Minute)
	v3 := &simgate.Verification{To: "+4915123456780", CodeLength: 6, MaxAttempts: 3, ExpiresAt: clock().Add(time.Minute)}
	if _, err := db.StartVerification(ctx, v3, hashOf("4"), nil, 2, 10*time.Minute, 100); err != nil {
		t.Fatal(err)
	}
	advance(time.Minute)
	if got, _ := db.GetVerification(ctx, v3.ID); got.Status != simgate.VerificationExpired {
		t.Fatalf("Get after expiry: %s", got.Status)
	}
	if n, err := db.ExpireVerifications(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireVerifications = %d, %v", n, err)
	}
	if _, err := db.CancelVerification(ctx, v3.ID); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("cancel expired: %v", err)
	}
	if err := db.PurgeVerificationCounters(ctx, clock()); err != nil {
		t.Fatal(err)
	}
}

func asRateLimit(err error, target **simgate.RateLimitError) bool {
	e, ok := err.(*simgate.RateLimitError)
	*target = e
	return ok
}

// TestVerificationConcurrentApproval: of many concurrent correct checks,
// exactly one approves.
func TestVerificationConcurrentApproval(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db := MustOpenDB(t)
	v := &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 5, ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := db.StartVerification(ctx, v, hashOf("7"), nil, 5, time.Minute, 100); err != nil {
		t.Fatal(err)
	}
	var approved atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, changed, _, err := db.CheckVerification(ctx, v.ID, "", matchOf("7"), 100)
			if err != nil {
				t.Error(err)
			} else if changed && got.Status == simgate.VerificationApproved {
				approved.Add(1)
			}
		}()
	}
	wg.Wait()
	if got, want := approved.Load(), int32(1); got != want {
		t.Fatalf("approvals = %d, want %d", got, want)
	}
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

func TestAlerts(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	for range 3 {
		if _, err := db.CreateAlertOnce(ctx, "k", "s", "d", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateAlert(ctx, "k2", "s", "d"); err != nil {
		t.Fatal(err)
	}
	as, err := db.ListAlerts(ctx, 0, 0)
	if err != nil || len(as) != 2 || as[0].Kind != "k" || as[1].Kind != "k2" {
		t.Fatalf("alerts = %+v, %v", as, err)
	}
}

// TestStartVerificationWithMessage: the verification and its SMS are stored
// in one transaction; a failing message builder stores neither; a resend
// cancels the SMS still queued with the old code.
func TestStartVerificationWithMessage(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db := MustOpenDBAt(t, filepath.Join(t.TempDir(), "simgate.db"), store.Options{})
	newV := func() *simgate.Verification {
		return &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 3, ExpiresAt: time.Now().Add(10 * time.Minute)}
	}
	msg := func(v *simgate.Verification) (*simgate.Message, error) {
		return &simgate.Message{To: v.To, Text: "sealed", VerificationID: v.ID, Priority: simgate.PriorityVerification,
			ExpiresAt: v.ExpiresAt, Parts: make([]simgate.Part, 1)}, nil
	}

	// A builder that fails leaves nothing behind.
	bad := newV()
	if _, err := db.StartVerification(ctx, bad, hashOf("1"), func(*simgate.Verification) (*simgate.Message, error) {
		return nil, simgate.Errorf(simgate.CodeInvalid, "no")
	}, 5, 10*time.Minute, 100); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("err = %v, want invalid", err)
	}
	if _, err := db.GetVerification(ctx, bad.ID); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("verification of a failed start: %v, want not found", err)
	}

	v := newV()
	if _, err := db.StartVerification(ctx, v, hashOf("1"), msg, 5, 10*time.Minute, 100); err != nil {
		t.Fatal(err)
	}
	first, err := db.FindMessage(ctx, v.MessageID)
	if err != nil || first.VerificationID != v.ID || first.Status != simgate.StatusQueued {
		t.Fatalf("message of the verification: %+v, %v", first, err)
	}
	v2 := newV()
	if resent, err := db.StartVerification(ctx, v2, hashOf("2"), msg, 5, 10*time.Minute, 100); err != nil || !resent || v2.ID != v.ID {
		t.Fatalf("resend: %v, %v, id %s", resent, err, v2.ID)
	}
	if m, err := db.FindMessage(ctx, first.ID); err != nil || m.Status != simgate.StatusCanceled || m.Text != "" {
		t.Fatalf("first SMS after the resend: %+v, %v; want canceled with its text erased", m, err)
	}
	if got, err := db.GetVerification(ctx, v.ID); err != nil || got.MessageID != v2.MessageID || got.MessageID == first.ID {
		t.Fatalf("verification's message after resend: %+v, %v", got, err)
	}
}
