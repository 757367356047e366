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

// VerificationStore is the contract of verifications (verify.Store, with
// the simgate.VerificationTx it runs its rules in), of alerts (the API's
// AlertStore), and the read of a message the tests check an SMS with.
type VerificationStore interface {
	UpdateVerifications(ctx context.Context, fn func(simgate.VerificationTx) error) error
	GetVerification(ctx context.Context, id string) (*simgate.Verification, simgate.MessageStatus, error)
	ExpireVerifications(ctx context.Context) (int64, error)
	PurgeVerificationCounters(ctx context.Context, before time.Time) error
	CreateAlert(ctx context.Context, kind, subject, detail string) error
	CreateAlertOnce(ctx context.Context, kind, subject, detail string, period time.Duration) (bool, error)
	ListAlerts(ctx context.Context, afterID int64, limit int) ([]*simgate.Alert, error)
	FindMessage(ctx context.Context, id string) (*simgate.Message, error)
}

// testContext returns a context that ends within a minute, so that a stuck
// test fails instead of hanging.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// pause stands for the work a service does between a read and the write
// it decides on (a code's hash, a message's text), so that a transaction
// whose read is not guarded until its write shows it within a few runs.
func pause() { time.Sleep(5 * time.Millisecond) }

// StartVerification stores v as a new pending verification with hash, as
// the verification service does (verify.Service.Start), without its rules:
// in v's service, the default service when v names none.
func StartVerification(t *testing.T, db interface {
	UpdateVerifications(ctx context.Context, fn func(simgate.VerificationTx) error) error
}, v *simgate.Verification, hash []byte) {
	t.Helper()
	if v.ServiceID == "" {
		v.ServiceID = simgate.DefaultServiceID
	}
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

// VerificationTx checks the reads and writes of a verification
// transaction, as the verification service uses them: creation, lookups, a
// resend's update, attempts, the windows' counts, and the status change
// that happens once; then the expiry sweep and the purge of the counters.
func VerificationTx(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[VerificationStore](t, open(t, "verifications", clk.Now))
	update := func(fn func(tx simgate.VerificationTx) error) {
		t.Helper()
		if err := db.UpdateVerifications(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	v := &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 3, Reference: "r1", ExpiresAt: clk.Now().Add(10 * time.Minute)}
	StartVerification(t, db, v, bytes.Repeat([]byte{1}, 32))
	if v.Status != simgate.VerificationPending || v.SendCount != 1 || v.Attempts != 0 || !v.CreatedAt.Equal(clk.Now().UTC().Truncate(time.Millisecond)) ||
		!v.UpdatedAt.Equal(v.CreatedAt) || !v.ApprovedAt.IsZero() {
		t.Fatalf("created: %+v", v)
	}

	update(func(tx simgate.VerificationTx) error {
		got, msg, err := tx.PendingVerification(ctx, simgate.DefaultServiceID, v.To)
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
		if err := tx.ResendVerification(ctx, &simgate.Verification{ID: "ver_nosuch", CodeLength: 6, ExpiresAt: clk.Now()}); simgate.ErrorCode(err) != simgate.CodeNotFound {
			t.Fatalf("resend of no verification: %v, want not found", err)
		}
		if _, _, err := tx.FindVerification(ctx, "ver_nosuch"); simgate.ErrorCode(err) != simgate.CodeNotFound {
			t.Fatalf("find of no verification: %v, want not found", err)
		}
		return nil
	})
	update(func(tx simgate.VerificationTx) error {
		got, _, err := tx.FindVerification(ctx, v.ID)
		if err != nil || got.SendCount != 2 || got.CodeLength != 8 || got.Reference != "r2" || got.Attempts != 2 ||
			!bytes.Equal(got.CodeHash, bytes.Repeat([]byte{2}, 32)) || !got.ExpiresAt.Equal(clk.Now().Add(5*time.Minute)) {
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
		if _, _, err := tx.PendingVerification(ctx, simgate.DefaultServiceID, v.To); simgate.ErrorCode(err) != simgate.CodeNotFound {
			t.Fatalf("pending after approval: %v, want not found", err)
		}
		return nil
	})
	got, _, err := db.GetVerification(ctx, v.ID)
	if err != nil || got.Status != simgate.VerificationApproved || got.CodeHash != nil || !got.ApprovedAt.Equal(clk.Now()) {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if _, _, err := db.GetVerification(ctx, "ver_nosuch"); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("get of no verification: %v", err)
	}

	// Expiry is written by the sweep, and the counters are purged.
	v3 := &simgate.Verification{To: "+4915123456780", CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(time.Minute)}
	StartVerification(t, db, v3, bytes.Repeat([]byte{3}, 32))
	clk.Advance(time.Minute)
	if n, err := db.ExpireVerifications(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireVerifications = %d, %v", n, err)
	}
	if got, _, err := db.GetVerification(ctx, v3.ID); err != nil || got.Status != simgate.VerificationExpired || !got.UpdatedAt.Equal(clk.Now()) {
		t.Fatalf("after the sweep: %+v, %v", got, err)
	}
	if n, err := db.ExpireVerifications(ctx); err != nil || n != 0 {
		t.Fatalf("a second sweep = %d, %v; want none", n, err)
	}
	update(func(tx simgate.VerificationTx) error {
		if got, _, err := tx.FindVerification(ctx, v3.ID); err != nil || got.CodeHash != nil {
			t.Fatalf("hash after the sweep: %+v, %v; want erased", got, err)
		}
		return nil
	})
	if err := db.PurgeVerificationCounters(ctx, clk.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	update(func(tx simgate.VerificationTx) error {
		if n, _, err := tx.CountSends(ctx, v.To, time.Time{}); err != nil || n != 0 {
			t.Fatalf("sends after the purge = %d, %v", n, err)
		}
		if n, _, err := tx.CountFailures(ctx, v.To, time.Time{}); err != nil || n != 0 {
			t.Fatalf("failures after the purge = %d, %v", n, err)
		}
		return nil
	})
}

// SpentVerifications checks the lookup of a number's verification that had
// its last check: the newest of the service, only while it has not expired,
// and none of another service, of another number, or in another status.
func SpentVerifications(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[VerificationStore](t, open(t, "spent", clk.Now))
	const number = "+4915123456789"
	spend := func(v *simgate.Verification, status simgate.VerificationStatus) {
		t.Helper()
		StartVerification(t, db, v, bytes.Repeat([]byte{1}, 32))
		if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
			return tx.SetVerificationStatus(ctx, v, status)
		}); err != nil {
			t.Fatal(err)
		}
	}
	find := func(serviceID, number string) (*simgate.Verification, error) {
		var v *simgate.Verification
		err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
			var err error
			v, err = tx.SpentVerification(ctx, serviceID, number)
			return err
		})
		return v, err
	}
	newV := func(ttl time.Duration) *simgate.Verification {
		return &simgate.Verification{To: number, CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(ttl)}
	}
	if _, err := find(simgate.DefaultServiceID, number); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("none yet: %v, want not found", err)
	}
	older, newer := newV(20*time.Minute), newV(10*time.Minute)
	spend(older, simgate.VerificationMaxAttemptsReached)
	clk.Advance(time.Second)
	spend(newer, simgate.VerificationMaxAttemptsReached)
	clk.Advance(time.Second)
	spend(newV(time.Hour), simgate.VerificationApproved) // newest, but not spent
	if got, err := find(simgate.DefaultServiceID, number); err != nil || got.ID != newer.ID || got.Status != simgate.VerificationMaxAttemptsReached {
		t.Fatalf("spent: %+v, %v; want %s", got, err, newer.ID)
	}
	for _, c := range [][2]string{{simgate.NewServiceID(), number}, {simgate.DefaultServiceID, "+4915123456780"}} {
		if _, err := find(c[0], c[1]); simgate.ErrorCode(err) != simgate.CodeNotFound {
			t.Fatalf("service %s, number %s: %v, want not found", c[0], c[1], err)
		}
	}
	// The newer expires first: the older one, still valid, is found; then none.
	clk.Advance(10 * time.Minute)
	if got, err := find(simgate.DefaultServiceID, number); err != nil || got.ID != older.ID {
		t.Fatalf("after the newer expired: %+v, %v; want %s", got, err, older.ID)
	}
	clk.Advance(10 * time.Minute)
	if _, err := find(simgate.DefaultServiceID, number); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("after both expired: %v, want not found", err)
	}
}

// VerificationConcurrentApproval checks that of many concurrent
// transactions that each approve a verification they find pending, exactly
// one approves.
func VerificationConcurrentApproval(t *testing.T, open Open) {
	ctx := testContext(t)
	db := as[VerificationStore](t, open(t, "approval", time.Now))
	v := &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 5, ExpiresAt: time.Now().Add(time.Hour)}
	StartVerification(t, db, v, bytes.Repeat([]byte{7}, 32))
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

// VerificationConcurrentStart checks that the reads a transaction decides
// on are still true when it writes, however many transactions run at once
// (on several hosts): concurrent starts for one number, each counting the
// number's sends and looking for its pending verification as
// verify.Service.Start does, create one verification and resend it for
// the others; concurrent wrong checks of it, each counting an attempt on
// what it read, lose none.
func VerificationConcurrentStart(t *testing.T, open Open) {
	ctx := testContext(t)
	db := as[VerificationStore](t, open(t, "start", time.Now))
	const n, number = 20, "+4915123456789"
	var created atomic.Int32
	var id atomic.Value
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
				if _, _, err := tx.CountSends(ctx, number, tx.Now().Add(-time.Hour)); err != nil {
					return err
				}
				hash := bytes.Repeat([]byte{byte(i)}, 32)
				cur, _, err := tx.PendingVerification(ctx, simgate.DefaultServiceID, number)
				switch {
				case simgate.ErrorCode(err) == simgate.CodeNotFound:
					pause()
					v := &simgate.Verification{ID: simgate.NewID("ver", tx.Now()), To: number, CodeHash: hash,
						CodeLength: 6, MaxAttempts: 100, ExpiresAt: tx.Now().Add(time.Hour), ServiceID: simgate.DefaultServiceID}
					if err := tx.CreateVerification(ctx, v); err != nil {
						return err
					}
					created.Add(1)
					id.Store(v.ID)
				case err != nil:
					return err
				default:
					cur.CodeHash = hash
					if err := tx.ResendVerification(ctx, cur); err != nil {
						return err
					}
				}
				return tx.AddSend(ctx, number)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if got := created.Load(); got != 1 {
		t.Fatalf("concurrent starts created %d verifications, want 1", got)
	}
	vid := id.Load().(string)

	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
				v, _, err := tx.FindVerification(ctx, vid)
				if err != nil {
					return err
				}
				if _, _, err := tx.CountFailures(ctx, v.To, tx.Now().Add(-time.Hour)); err != nil {
					return err
				}
				if err := tx.AddFailure(ctx, v.To); err != nil {
					return err
				}
				pause()
				v.Attempts++
				return tx.SetVerificationAttempts(ctx, v)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		v, _, err := tx.PendingVerification(ctx, simgate.DefaultServiceID, number)
		if err != nil || v.ID != vid || v.SendCount != n || v.Attempts != n {
			t.Fatalf("after %d starts and %d checks: %+v, %v; want %s with %d sends and %d attempts", n, n, v, err, vid, n, n)
		}
		if sends, _, err := tx.CountSends(ctx, number, time.Time{}); err != nil || sends != n {
			t.Fatalf("sends = %d, %v; want %d", sends, err, n)
		}
		if failures, _, err := tx.CountFailures(ctx, number, time.Time{}); err != nil || failures != n {
			t.Fatalf("failures = %d, %v; want %d", failures, err, n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Alerts checks that CreateAlertOnce records one alert of a kind and
// subject per period, also when called at once, alone or in a
// verification transaction, and that alerts are listed
// in order, after an id, a page at a time.
func Alerts(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[VerificationStore](t, open(t, "alerts", clk.Now))
	for i := range 3 {
		ok, err := db.CreateAlertOnce(ctx, "k", "s", "d", time.Hour)
		if err != nil {
			t.Fatal(err)
		} else if ok != (i == 0) {
			t.Fatalf("CreateAlertOnce #%d recorded = %v", i+1, ok)
		}
	}
	if err := db.CreateAlert(ctx, "k2", "s", "d"); err != nil {
		t.Fatal(err)
	}
	as, err := db.ListAlerts(ctx, 0, 0)
	if err != nil || len(as) != 2 || as[0].Kind != "k" || as[1].Kind != "k2" {
		t.Fatalf("alerts = %+v, %v", as, err)
	}
	if a := as[0]; a.Subject != "s" || a.Detail != "d" || !a.At.Equal(clk.Now()) || as[1].ID <= a.ID {
		t.Fatalf("first alert = %+v, then id %d", a, as[1].ID)
	}
	if got, err := db.ListAlerts(ctx, as[0].ID, 0); err != nil || len(got) != 1 || got[0].ID != as[1].ID {
		t.Fatalf("alerts after the first = %+v, %v", got, err)
	}
	if got, err := db.ListAlerts(ctx, 0, 1); err != nil || len(got) != 1 || got[0].ID != as[0].ID {
		t.Fatalf("a page of one = %+v, %v", got, err)
	}
	if got, err := db.ListAlerts(ctx, as[1].ID, 0); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("alerts after the last = %#v, %v; want an empty list", got, err)
	}

	// A period later, once more; at once, once in all.
	clk.Advance(time.Hour + time.Millisecond)
	var recorded atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ok bool
			var err error
			if i%2 == 0 {
				ok, err = db.CreateAlertOnce(ctx, "k", "s", "d", time.Hour)
			} else {
				// As the verification service does, in its transaction.
				err = db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
					var err error
					ok, err = tx.CreateAlertOnce(ctx, "k", "s", "d", time.Hour)
					pause()
					return err
				})
			}
			if err != nil {
				t.Error(err)
			} else if ok {
				recorded.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := recorded.Load(); got != 1 {
		t.Fatalf("concurrent CreateAlertOnce recorded %d alerts, want 1", got)
	}
}

// UpdateVerificationsWithMessage checks that the verification and its SMS
// are stored in one transaction; an error from the function stores
// neither; canceling the queued SMS of a verification erases their text.
func UpdateVerificationsWithMessage(t *testing.T, open Open) {
	ctx := testContext(t)
	st := open(t, "withmessage", time.Now)
	db, messages := as[VerificationStore](t, st), as[MessageStore](t, st)
	newV := func() *simgate.Verification {
		return &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 3, ExpiresAt: time.Now().Add(10 * time.Minute),
			ServiceID: simgate.DefaultServiceID}
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
	if first.ID == "" || !first.CreatedAt.Equal(v.CreatedAt) || len(first.Parts) != 1 || first.Parts[0].MessageID != first.ID ||
		len(first.Events) != 1 || first.Events[0].Status != simgate.StatusQueued {
		t.Fatalf("created message: %+v", first)
	}
	got, err := db.FindMessage(ctx, first.ID)
	if err != nil || got.VerificationID != v.ID || got.Status != simgate.StatusQueued || got.Text != "sealed" ||
		got.Priority != simgate.PriorityVerification || !got.ExpiresAt.Equal(v.ExpiresAt) || !got.CreatedAt.Equal(first.CreatedAt) ||
		len(got.Parts) != 1 || got.Parts[0].Status != simgate.StatusQueued || got.Parts[0].MR != -1 ||
		len(got.Events) != 1 || got.Events[0].Reason != "accepted" {
		t.Fatalf("message of the verification: %+v, %v", got, err)
	}
	if got, msg, err := db.GetVerification(ctx, v.ID); err != nil || got.MessageID != first.ID || msg != simgate.StatusQueued {
		t.Fatalf("verification's message: %+v, %q, %v", got, msg, err)
	}
	other := NewMessage(v.To, "not of the verification", 1)
	if err := CreateMessage(ctx, messages, other); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{v.ID: 1, "ver_nosuch": 0} {
		ms, _, err := messages.ListMessages(ctx, simgate.MessageFilter{VerificationID: id})
		if err != nil || len(ms) != want || want == 1 && ms[0].ID != first.ID {
			t.Fatalf("messages of verification %s: %d, %v; want %d (%s)", id, len(ms), err, want, first.ID)
		}
	}
	if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		return tx.CancelQueuedMessages(ctx, v.ID, "replaced")
	}); err != nil {
		t.Fatal(err)
	}
	m, err = db.FindMessage(ctx, first.ID)
	if err != nil || m.Status != simgate.StatusCanceled || m.Text != "" || m.Reason != "replaced" ||
		len(m.Parts) != 1 || m.Parts[0].Status != simgate.StatusCanceled ||
		len(m.Events) != 2 || m.Events[1].Status != simgate.StatusCanceled || m.Events[1].Reason != "replaced" {
		t.Fatalf("first SMS after the cancel: %+v, %v; want canceled with its text erased", m, err)
	}
	if _, err := db.FindMessage(ctx, "msg_nosuch"); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("find of no message: %v, want not found", err)
	}
}

// MissedCallVerifications checks what a store keeps of a verification by
// missed call: its channel, the number to call and its modem, on create, on
// a resend and when read; that it refuses one with a code or without the
// number to call (and an SMS one with a number to call); that a
// verification made without a channel is an SMS one; and that the pending
// missed-call verification of a caller on a modem is found, the newest of
// several, and no other (another modem, another number, an SMS
// verification, one that left pending).
func MissedCallVerifications(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[VerificationStore](t, open(t, "missed", clk.Now))
	const caller, callTo = "+4915123456789", "+4917011111111"
	update := func(fn func(tx simgate.VerificationTx) error) error {
		t.Helper()
		return db.UpdateVerifications(ctx, fn)
	}
	create := func(v *simgate.Verification) error {
		return update(func(tx simgate.VerificationTx) error {
			v.ID = simgate.NewID("ver", tx.Now())
			return tx.CreateVerification(ctx, v)
		})
	}
	call := func(to string) *simgate.Verification {
		return &simgate.Verification{To: to, Channel: simgate.ChannelMissedCall, CallTo: callTo, CallModem: "sim0",
			ServiceID: simgate.DefaultServiceID, CodeLength: 6, MaxAttempts: 5, ExpiresAt: clk.Now().Add(10 * time.Minute)}
	}

	for _, c := range []struct {
		name string
		edit func(v *simgate.Verification)
	}{
		{"with a code hash", func(v *simgate.Verification) { v.CodeHash = bytes.Repeat([]byte{1}, 32) }},
		{"without the number to call", func(v *simgate.Verification) { v.CallTo = "" }},
		{"with a number to call that is not E.164", func(v *simgate.Verification) { v.CallTo = "017011111111" }},
		{"without the modem", func(v *simgate.Verification) { v.CallModem = "" }},
		{"of an SMS verification with a number to call", func(v *simgate.Verification) {
			v.Channel, v.CodeHash = simgate.ChannelSMS, bytes.Repeat([]byte{1}, 32)
		}},
		{"of another channel", func(v *simgate.Verification) { v.Channel = "voice" }},
	} {
		v := call(caller)
		c.edit(v)
		if err := create(v); err == nil {
			t.Errorf("a verification %s was created", c.name)
		}
	}

	sms := &simgate.Verification{To: caller, ServiceID: simgate.DefaultServiceID, CodeLength: 6, MaxAttempts: 5, ExpiresAt: clk.Now().Add(10 * time.Minute),
		CodeHash: bytes.Repeat([]byte{2}, 32)}
	if err := create(sms); err != nil || sms.Channel != simgate.ChannelSMS {
		t.Fatalf("an SMS verification without a channel: %+v, %v", sms, err)
	}
	if got, _, err := db.GetVerification(ctx, sms.ID); err != nil || got.Channel != simgate.ChannelSMS || got.CallTo != "" || got.CallModem != "" {
		t.Fatalf("the SMS verification read back: %+v, %v", got, err)
	}
	notFound := func(number, modemID, why string) {
		t.Helper()
		if err := update(func(tx simgate.VerificationTx) error {
			if got, err := tx.PendingCallVerification(ctx, number, modemID); simgate.ErrorCode(err) != simgate.CodeNotFound {
				t.Errorf("%s: %+v, %v; want not found", why, got, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	notFound(caller, "", "an SMS verification")

	older := call(caller)
	if err := create(older); err != nil {
		t.Fatal(err)
	}
	if older.Channel != simgate.ChannelMissedCall || older.Status != simgate.VerificationPending || older.SendCount != 1 || older.CodeHash != nil {
		t.Fatalf("created: %+v", older)
	}
	clk.Advance(time.Second)
	newer := call(caller)
	if err := create(newer); err != nil {
		t.Fatal(err)
	}
	got, _, err := db.GetVerification(ctx, newer.ID)
	if err != nil || got.Channel != simgate.ChannelMissedCall || got.CallTo != callTo || got.CallModem != "sim0" || got.CodeHash != nil || got.To != caller {
		t.Fatalf("read back: %+v, %v", got, err)
	}
	pending := func(number, modemID string) *simgate.Verification {
		t.Helper()
		var v *simgate.Verification
		if err := update(func(tx simgate.VerificationTx) error {
			var err error
			v, err = tx.PendingCallVerification(ctx, number, modemID)
			return err
		}); err != nil {
			t.Fatalf("the pending missed-call verification of %s on %s: %v", number, modemID, err)
		}
		return v
	}
	if v := pending(caller, "sim0"); v.ID != newer.ID || v.CallTo != callTo || v.Channel != simgate.ChannelMissedCall {
		t.Fatalf("found %+v, want the newer %s", v, newer.ID)
	}
	notFound(caller, "sim1", "on another modem")
	notFound("+4915123456780", "sim0", "of another number")

	// A resend moves the call to another SIM.
	if err := update(func(tx simgate.VerificationTx) error {
		v, _, err := tx.FindVerification(ctx, newer.ID)
		if err != nil {
			return err
		}
		v.CallTo, v.CallModem, v.ExpiresAt = "+4917022222222", "sim1", clk.Now().Add(5*time.Minute)
		return tx.ResendVerification(ctx, v)
	}); err != nil {
		t.Fatal(err)
	}
	if v := pending(caller, "sim1"); v.ID != newer.ID || v.CallTo != "+4917022222222" || v.SendCount != 2 || v.Channel != simgate.ChannelMissedCall {
		t.Fatalf("after the resend: %+v", v)
	}
	if v := pending(caller, "sim0"); v.ID != older.ID {
		t.Fatalf("on the first SIM after the resend: %+v, want the older %s", v, older.ID)
	}

	// One that left pending is not found.
	if err := update(func(tx simgate.VerificationTx) error {
		v, err := tx.PendingCallVerification(ctx, caller, "sim0")
		if err != nil {
			return err
		}
		v.ApprovedAt = tx.Now()
		return tx.SetVerificationStatus(ctx, v, simgate.VerificationApproved)
	}); err != nil {
		t.Fatal(err)
	}
	notFound(caller, "sim0", "after its approval")
	if got, _, err := db.GetVerification(ctx, older.ID); err != nil || got.Status != simgate.VerificationApproved || got.Channel != simgate.ChannelMissedCall {
		t.Fatalf("approved: %+v, %v", got, err)
	}
}
