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

// startVerification stores v as a new pending verification with hash, as
// the verification service does (verify.Service.Start), without its rules.
func startVerification(t *testing.T, db *store.DB, v *simgate.Verification, hash []byte) {
	t.Helper()
	if err := db.UpdateVerifications(context.Background(), func(tx simgate.VerificationTx) error {
		v.ID, v.CodeHash = simgate.NewID("ver", tx.Now()), hash
		if err := tx.CreateVerification(context.Background(), v); err != nil {
			return err
		}
		return tx.AddSend(context.Background(), v.To)
	}); err != nil {
		t.Fatal(err)
	}
}

// The reads and writes of a verification transaction, as the verification
// service uses them: creation, lookups, a resend's update, attempts, the
// windows' counts, and the status change that happens once.
func TestVerificationTx(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	update := func(fn func(tx simgate.VerificationTx) error) {
		t.Helper()
		if err := db.UpdateVerifications(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	v := &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 3, Reference: "r1", ExpiresAt: clk.Now().Add(10 * time.Minute)}
	startVerification(t, db, v, bytes.Repeat([]byte{1}, 32))
	if v.Status != simgate.VerificationPending || v.SendCount != 1 || v.Attempts != 0 || !v.CreatedAt.Equal(clk.Now().UTC().Truncate(time.Millisecond)) {
		t.Fatalf("created: %+v", v)
	}

	update(func(tx simgate.VerificationTx) error {
		got, msg, err := tx.PendingVerification(ctx, v.To)
		if err != nil || got.ID != v.ID || !bytes.Equal(got.CodeHash, v.CodeHash) || msg != "" || got.Reference != "r1" {
			t.Fatalf("pending of the number: %+v, %q, %v", got, msg, err)
		}
		got.CodeHash, got.CodeLength, got.Reference = bytes.Repeat([]byte{2}, 32), 8, "r2"
		got.ExpiresAt = clk.Now().Add(5 * time.Minute)
		if err := tx.ResendVerification(ctx, got); err != nil {
			return err
		}
		got.Attempts = 2
		if err := tx.SetVerificationAttempts(ctx, got); err != nil {
			return err
		}
		for _, add := range []func(context.Context, string) error{tx.AddSend, tx.AddFailure, tx.AddFailure} {
			if err := add(ctx, v.To); err != nil {
				return err
			}
		}
		return nil
	})
	update(func(tx simgate.VerificationTx) error {
		got, _, err := tx.FindVerification(ctx, v.ID)
		if err != nil || got.SendCount != 2 || got.CodeLength != 8 || got.Reference != "r2" || got.Attempts != 2 ||
			!bytes.Equal(got.CodeHash, bytes.Repeat([]byte{2}, 32)) {
			t.Fatalf("after the resend: %+v, %v", got, err)
		}
		sends, oldest, err := tx.CountSends(ctx, v.To, clk.Now().Add(-time.Minute))
		if err != nil || sends != 2 || !oldest.Equal(clk.Now().UTC().Truncate(time.Millisecond)) {
			t.Fatalf("sends = %d since %v, %v", sends, oldest, err)
		}
		if failures, _, err := tx.CountFailures(ctx, v.To, clk.Now().Add(-time.Minute)); err != nil || failures != 2 {
			t.Fatalf("failures = %d, %v", failures, err)
		}
		if n, _, err := tx.CountSends(ctx, v.To, clk.Now().Add(time.Millisecond)); err != nil || n != 0 {
			t.Fatalf("sends after now = %d, %v", n, err)
		}
		got.ApprovedAt = tx.Now()
		if err := tx.SetVerificationStatus(ctx, got, simgate.VerificationApproved); err != nil {
			return err
		}
		if got.CodeHash != nil || got.Status != simgate.VerificationApproved {
			t.Fatalf("approved: %+v", got)
		}
		if err := tx.SetVerificationStatus(ctx, got, simgate.VerificationCanceled); simgate.ErrorCode(err) != simgate.CodeConflict {
			t.Fatalf("a second change of status: %v, want conflict", err)
		}
		if _, _, err := tx.PendingVerification(ctx, v.To); simgate.ErrorCode(err) != simgate.CodeNotFound {
			t.Fatalf("pending after approval: %v, want not found", err)
		}
		return nil
	})
	got, _, err := db.GetVerification(ctx, v.ID)
	if err != nil || got.Status != simgate.VerificationApproved || got.CodeHash != nil || got.ApprovedAt.IsZero() {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if _, _, err := db.GetVerification(ctx, "ver_nosuch"); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("get of no verification: %v", err)
	}

	// Expiry is written by the sweep, and the counters are purged.
	v3 := &simgate.Verification{To: "+4915123456780", CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(time.Minute)}
	startVerification(t, db, v3, bytes.Repeat([]byte{3}, 32))
	clk.Advance(time.Minute)
	if n, err := db.ExpireVerifications(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireVerifications = %d, %v", n, err)
	}
	if got, _, err := db.GetVerification(ctx, v3.ID); err != nil || got.Status != simgate.VerificationExpired {
		t.Fatalf("after the sweep: %+v, %v", got, err)
	}
	if err := db.PurgeVerificationCounters(ctx, clk.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	update(func(tx simgate.VerificationTx) error {
		if n, _, err := tx.CountSends(ctx, v.To, time.Time{}); err != nil || n != 0 {
			t.Fatalf("sends after the purge = %d, %v", n, err)
		}
		return nil
	})
}

// TestVerificationConcurrentApproval: of many concurrent transactions that
// each approve a verification they find pending, exactly one approves.
func TestVerificationConcurrentApproval(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db := MustOpenDB(t)
	v := &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 5, ExpiresAt: time.Now().Add(time.Hour)}
	startVerification(t, db, v, bytes.Repeat([]byte{7}, 32))
	var approved atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
				got, _, err := tx.FindVerification(ctx, v.ID)
				if err != nil || got.Status != simgate.VerificationPending {
					return err
				}
				if err := tx.SetVerificationStatus(ctx, got, simgate.VerificationApproved); err != nil {
					return err
				}
				approved.Add(1)
				return nil
			})
			if err != nil {
				t.Error(err)
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

// TestUpdateVerificationsWithMessage: the verification and its SMS are
// stored in one transaction; an error from the function stores neither;
// canceling the queued SMS of a verification erases their text.
func TestUpdateVerificationsWithMessage(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db := MustOpenDBAt(t, filepath.Join(t.TempDir(), "simgate.db"), store.Options{})
	newV := func() *simgate.Verification {
		return &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 3, ExpiresAt: time.Now().Add(10 * time.Minute)}
	}
	start := func(v *simgate.Verification, fail error) (*simgate.Message, error) {
		var m *simgate.Message
		return m, db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
			v.ID, v.CodeHash = simgate.NewID("ver", tx.Now()), bytes.Repeat([]byte{1}, 32)
			if err := tx.CreateVerification(ctx, v); err != nil {
				return err
			}
			// As queue.Dispatcher.Prepare leaves it.
			m = &simgate.Message{To: v.To, Text: "sealed", VerificationID: v.ID, Priority: simgate.PriorityVerification,
				ExpiresAt: v.ExpiresAt, Status: simgate.StatusQueued, Reason: "accepted",
				Parts: []simgate.Part{{Status: simgate.StatusQueued}}}
			if err := tx.CreateMessage(ctx, m); err != nil {
				return err
			}
			return fail
		})
	}

	// A function that fails leaves nothing behind.
	bad := newV()
	m, err := start(bad, simgate.Errorf(simgate.CodeInvalid, "no"))
	if simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("err = %v, want invalid", err)
	}
	if _, _, err := db.GetVerification(ctx, bad.ID); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("verification of a failed start: %v, want not found", err)
	}
	if _, err := db.FindMessage(ctx, m.ID); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("message of a failed start: %v, want not found", err)
	}

	v := newV()
	first, err := start(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := db.FindMessage(ctx, first.ID); err != nil || got.VerificationID != v.ID || got.Status != simgate.StatusQueued {
		t.Fatalf("message of the verification: %+v, %v", got, err)
	}
	if got, msg, err := db.GetVerification(ctx, v.ID); err != nil || got.MessageID != first.ID || msg != simgate.StatusQueued {
		t.Fatalf("verification's message: %+v, %q, %v", got, msg, err)
	}
	if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		return tx.CancelQueuedMessages(ctx, v.ID, "replaced")
	}); err != nil {
		t.Fatal(err)
	}
	if m, err := db.FindMessage(ctx, first.ID); err != nil || m.Status != simgate.StatusCanceled || m.Text != "" {
		t.Fatalf("first SMS after the cancel: %+v, %v; want canceled with its text erased", m, err)
	}
}
