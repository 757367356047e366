package verify_test

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/verify"
)

// handsets is the real queue (not opened: nothing is sent) that also keeps
// the text of each verification SMS before it is sealed, as the owner of the
// number would read it.
type handsets struct {
	*queue.Dispatcher
	mu    sync.Mutex
	texts map[string][]string
}

func (h *handsets) Prepare(m *simgate.Message) error {
	h.mu.Lock()
	h.texts[m.To] = append(h.texts[m.To], m.Text)
	h.mu.Unlock()
	return h.Dispatcher.Prepare(m)
}

var codeIn = regexp.MustCompile(`code is ([0-9]+)`)

// code returns the code of the newest SMS to number.
func (h *handsets) code(t *testing.T, number string) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.texts[number]
	if len(ts) == 0 {
		t.Fatalf("no SMS to %s", number)
	}
	m := codeIn.FindStringSubmatch(ts[len(ts)-1])
	if m == nil {
		t.Fatalf("no code in %q", ts[len(ts)-1])
	}
	return m[1]
}

type rulesRig struct {
	db  *store.DB
	s   *verify.Service
	h   *handsets
	mu  sync.Mutex
	now time.Time
}

func (r *rulesRig) clock() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now }
func (r *rulesRig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// newRulesRig runs the service over the real store and queue, on a clock
// that moves only when told.
func newRulesRig(t *testing.T, o verify.Options) *rulesRig {
	r := &rulesRig{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var err error
	if r.db, err = store.Open(context.Background(), filepath.Join(t.TempDir(), "db"), store.Options{Now: r.clock}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.db.Close() })
	q, err := queue.New(queue.Options{Store: r.db, Sender: nopSender{}, Now: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.h = &handsets{Dispatcher: q, texts: map[string][]string{}}
	o.Secret, o.Now = []byte(strings.Repeat("k", 32)), r.clock
	if r.s, err = verify.New(r.db, r.h, o); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rulesRig) alerts(t *testing.T, kind string) int {
	t.Helper()
	as, err := r.db.ListAlerts(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range as {
		if a.Kind == kind {
			n++
		}
	}
	return n
}

// A verification's life under the service's rules: a resend takes over the
// pending verification with a new code, the send limit refuses with the
// time to wait (and one alert), the replaced code counts as a wrong one, the
// right code approves once, and expiry is seen before the sweep writes it.
func TestVerificationRules(t *testing.T) {
	ctx := context.Background()
	r := newRulesRig(t, verify.Options{MaxSends: 2, SendWindow: 10 * time.Minute, MaxChecks: 3})
	const number = "+4915123456789"

	v := &simgate.Verification{To: number, Reference: "first"}
	if _, err := r.s.Start(ctx, v, 0); err != nil || v.SendCount != 1 || v.Attempts != 0 || v.CodeHash != nil {
		t.Fatalf("start: %+v, %v", v, err)
	}
	code1 := r.h.code(t, number)
	v2 := &simgate.Verification{To: number}
	if _, err := r.s.Start(ctx, v2, 0); err != nil || v2.ID != v.ID || v2.SendCount != 2 || v2.Reference != "first" {
		t.Fatalf("resend: %+v, %v; want the first verification taken over", v2, err)
	}
	code2 := r.h.code(t, number)
	for range 2 {
		_, err := r.s.Start(ctx, &simgate.Verification{To: number}, 0)
		var rl *simgate.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter() != 10*time.Minute {
			t.Fatalf("third send: %v; want a rate limit for 10 minutes", err)
		}
	}
	if n := r.alerts(t, simgate.AlertSendLimit); n != 1 {
		t.Fatalf("send-limit alerts = %d, want 1 for two refusals in one window", n)
	}

	if code1 != code2 {
		got, err := r.s.Check(ctx, simgate.VerificationRef{ID: v.ID}, code1)
		if err != nil || got.Status != simgate.VerificationPending || got.Attempts != 1 || got.CodeHash != nil {
			t.Fatalf("the replaced code: %+v, %v; want pending with one attempt used", got, err)
		}
	}
	got, err := r.s.Check(ctx, simgate.VerificationRef{To: number}, code2)
	if err != nil || got.Status != simgate.VerificationApproved || got.ApprovedAt.IsZero() || got.CodeHash != nil {
		t.Fatalf("the new code, by number: %+v, %v", got, err)
	}
	if _, err := r.s.Check(ctx, simgate.VerificationRef{To: number}, code2); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("by number after approval: %v, want not found", err)
	}
	if _, err := r.s.Check(ctx, simgate.VerificationRef{ID: v.ID}, code2); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("by id after approval: %v, want conflict", err)
	}

	// Expiry: Get sees it before the sweep writes it; Cancel is refused.
	v3 := &simgate.Verification{To: "+4915123456780"}
	if _, err := r.s.Start(ctx, v3, time.Minute); err != nil {
		t.Fatal(err)
	}
	r.advance(time.Minute)
	if got, err := r.s.Get(ctx, simgate.VerificationRef{ID: v3.ID}); err != nil || got.Status != simgate.VerificationExpired {
		t.Fatalf("Get after expiry: %+v, %v", got, err)
	}
	if err := r.s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, err := r.db.GetVerification(ctx, v3.ID); err != nil || got.Status != simgate.VerificationExpired {
		t.Fatalf("stored after the sweep: %+v, %v", got, err)
	}
	if _, err := r.s.Cancel(ctx, simgate.VerificationRef{ID: v3.ID}); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("cancel of an expired verification: %v, want conflict", err)
	}
	// A new start after expiry makes a new verification.
	v4 := &simgate.Verification{To: "+4915123456780"}
	if _, err := r.s.Start(ctx, v4, 0); err != nil || v4.ID == v3.ID || v4.SendCount != 1 {
		t.Fatalf("start after expiry: %+v, %v", v4, err)
	}
}

// Wrong codes: the attempt that reaches MaxChecks ends the verification
// with an alert; failures of a number past FailureCap (one alert) refuse
// both checks and new codes for the rest of FailureWindow.
func TestVerificationFailureRules(t *testing.T) {
	ctx := context.Background()
	r := newRulesRig(t, verify.Options{MaxChecks: 2, FailureCap: 3})
	const number = "+4915123456789"
	wrong := func(id string) *simgate.Verification {
		t.Helper()
		code := r.h.code(t, number)
		bad := "000000"
		if code == bad {
			bad = "111111"
		}
		got, err := r.s.Check(ctx, simgate.VerificationRef{ID: id}, bad)
		if err != nil {
			t.Fatalf("a wrong code: %v", err)
		}
		return got
	}
	v := &simgate.Verification{To: number}
	if _, err := r.s.Start(ctx, v, 0); err != nil {
		t.Fatal(err)
	}
	if got := wrong(v.ID); got.Status != simgate.VerificationPending || got.Attempts != 1 {
		t.Fatalf("first wrong code: %+v", got)
	}
	if got := wrong(v.ID); got.Status != simgate.VerificationMaxAttemptsReached || got.Attempts != 2 {
		t.Fatalf("second wrong code: %+v; want max_attempts_reached", got)
	}
	if n := r.alerts(t, simgate.AlertMaxAttempts); n != 1 {
		t.Fatalf("max-attempts alerts = %d", n)
	}
	if _, err := r.s.Check(ctx, simgate.VerificationRef{ID: v.ID}, r.h.code(t, number)); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("the right code after max attempts: %v, want conflict", err)
	}
	// By number, the spent verification is found, not "none": its checks
	// are spent. Another service's is not.
	var vc *simgate.VerificationConflict
	if _, err := r.s.Check(ctx, simgate.VerificationRef{To: number}, r.h.code(t, number)); !errors.As(err, &vc) ||
		vc.ID != v.ID || vc.Status != simgate.VerificationMaxAttemptsReached {
		t.Fatalf("the right code by number after max attempts: %v; want the conflict of %s", err, v.ID)
	}
	if _, err := r.s.Check(ctx, simgate.VerificationRef{To: number, ServiceID: simgate.NewServiceID()}, r.h.code(t, number)); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("by number in another service: %v, want not found", err)
	}

	v2 := &simgate.Verification{To: number}
	if _, err := r.s.Start(ctx, v2, 0); err != nil {
		t.Fatal(err)
	}
	wrong(v2.ID) // the third failure of the number: the cap
	if n := r.alerts(t, simgate.AlertFailureCap); n != 1 {
		t.Fatalf("failure-cap alerts = %d", n)
	}
	r.advance(time.Minute)
	var rl *simgate.RateLimitError
	if _, err := r.s.Check(ctx, simgate.VerificationRef{ID: v2.ID}, r.h.code(t, number)); !errors.As(err, &rl) || rl.RetryAfter() != verify.FailureWindow-time.Minute {
		t.Fatalf("the right code at the cap: %v; want refused for the rest of the window", err)
	}
	if _, err := r.s.Start(ctx, &simgate.Verification{To: number}, 0); !errors.As(err, &rl) {
		t.Fatalf("a new code at the cap: %v; want refused", err)
	}
	r.advance(verify.FailureWindow)
	if _, err := r.s.Start(ctx, &simgate.Verification{To: number}, 0); err != nil {
		t.Fatalf("a new code after the window: %v", err)
	}
}

// Of many concurrent checks with the right code, exactly one approves; the
// others find the verification approved (conflict).
func TestVerificationConcurrentChecks(t *testing.T) {
	ctx := context.Background()
	r := newRulesRig(t, verify.Options{})
	v := &simgate.Verification{To: "+4915123456789"}
	if _, err := r.s.Start(ctx, v, 0); err != nil {
		t.Fatal(err)
	}
	code := r.h.code(t, v.To)
	var approved, conflicts atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := r.s.Check(ctx, simgate.VerificationRef{ID: v.ID}, code)
			switch {
			case err == nil && got.Status == simgate.VerificationApproved:
				approved.Add(1)
			case simgate.ErrorCode(err) == simgate.CodeConflict:
				conflicts.Add(1)
			default:
				t.Errorf("check: %+v, %v", got, err)
			}
		}()
	}
	wg.Wait()
	if approved.Load() != 1 || conflicts.Load() != 49 {
		t.Fatalf("approved %d, conflicts %d; want 1 and 49", approved.Load(), conflicts.Load())
	}
}
