package verify_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/verify"
)

// sims are the SIMs a missed call may go to, by modem, as the pool offers
// them: the preferred one while it is offered, else the first. It records
// the preference it was given.
type sims struct {
	mu      sync.Mutex
	numbers map[string]string // by modem
	order   []string
	prefers []string
}

func newSIMs(pairs ...string) *sims {
	s := &sims{numbers: map[string]string{}}
	for i := 0; i+1 < len(pairs); i += 2 {
		s.numbers[pairs[i]] = pairs[i+1]
		s.order = append(s.order, pairs[i])
	}
	return s
}

func (s *sims) PickCallee(to, prefer string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prefers = append(s.prefers, prefer)
	if n, ok := s.numbers[prefer]; ok {
		return prefer, n, nil
	}
	for _, m := range s.order {
		if n, ok := s.numbers[m]; ok {
			return m, n, nil
		}
	}
	return "", "", simgate.Errorf(simgate.CodeUnavailable, "no modem can take a missed call")
}

// remove stops offering modem.
func (s *sims) remove(modem string) {
	s.mu.Lock()
	delete(s.numbers, modem)
	s.mu.Unlock()
}

const (
	caller = "+4915123456789"
	sim0   = "+4917011111111"
	sim1   = "+4917022222222"
)

// call is an incoming call from number to modem, as the modem hands it on.
func call(number, modem string, at time.Time) *simgate.InboundCall {
	return &simgate.InboundCall{ModemID: modem, From: number, FromE164: number, At: at, Rejected: true}
}

func (r *rulesRig) sends(t *testing.T, number string) int {
	t.Helper()
	var n int
	if err := r.db.UpdateVerifications(context.Background(), func(tx simgate.VerificationTx) error {
		var err error
		n, _, err = tx.CountSends(context.Background(), number, time.Time{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func (r *rulesRig) status(t *testing.T, id string) simgate.VerificationStatus {
	t.Helper()
	v, _, err := r.db.GetVerification(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v.Status
}

// A missed-call start picks a SIM and sends nothing; it needs SIMs, takes
// no code length, and counts as a send against the same limit as code SMS.
// A resend keeps the verification and its SIM while that is offered.
func TestMissedCallStart(t *testing.T) {
	ctx := context.Background()
	pool := newSIMs("sim0", sim0, "sim1", sim1)
	r := newRulesRig(t, verify.Options{Callees: pool, MaxSends: 3})

	v := &simgate.Verification{To: caller, Channel: simgate.ChannelMissedCall, Reference: "signup"}
	m, err := r.s.Start(ctx, v, 0)
	if err != nil || m != nil {
		t.Fatalf("start: SMS %+v, %v", m, err)
	}
	if v.ID == "" || v.CallTo != sim0 || v.CallModem != "sim0" || v.CodeHash != nil || v.SendCount != 1 ||
		v.Status != simgate.VerificationPending || v.MessageID != "" {
		t.Fatalf("started: %+v", v)
	}
	if len(r.h.texts[caller]) != 0 {
		t.Fatalf("SMS to the caller: %q", r.h.texts[caller])
	}
	got, err := r.s.Get(ctx, simgate.VerificationRef{ID: v.ID})
	if err != nil || got.Channel != simgate.ChannelMissedCall || got.CallTo != sim0 || got.Status != simgate.VerificationPending {
		t.Fatalf("get: %+v, %v", got, err)
	}

	// A resend: the same verification, on the same SIM.
	again := &simgate.Verification{To: caller, Channel: simgate.ChannelMissedCall}
	if _, err := r.s.Start(ctx, again, 0); err != nil || again.ID != v.ID || again.CallModem != "sim0" || again.SendCount != 2 ||
		again.Reference != "signup" {
		t.Fatalf("resend: %+v, %v", again, err)
	}
	if last := pool.prefers[len(pool.prefers)-1]; last != "sim0" {
		t.Fatalf("the resend preferred %q, want its SIM sim0", last)
	}
	// Its SIM gone, the next resend moves to another.
	pool.remove("sim0")
	moved := &simgate.Verification{To: caller, Channel: simgate.ChannelMissedCall}
	if _, err := r.s.Start(ctx, moved, 0); err != nil || moved.ID != v.ID || moved.CallModem != "sim1" || moved.CallTo != sim1 {
		t.Fatalf("resend without its SIM: %+v, %v", moved, err)
	}
	// Three sends in the window: the fourth, missed call or SMS, is refused.
	var rl *simgate.RateLimitError
	for _, ch := range []simgate.VerificationChannel{simgate.ChannelMissedCall, simgate.ChannelSMS} {
		if _, err := r.s.Start(ctx, &simgate.Verification{To: caller, Channel: ch}, 0); !errors.As(err, &rl) {
			t.Fatalf("a %s start after three sends: %v, want a rate limit", ch, err)
		}
	}
	if n := r.sends(t, caller); n != 3 {
		t.Fatalf("%d sends counted, want 3", n)
	}

	for _, c := range []struct {
		name string
		v    *simgate.Verification
		code simgate.Code
	}{
		{"a code length", &simgate.Verification{To: "+4915123456780", Channel: simgate.ChannelMissedCall, CodeLength: 6}, simgate.CodeInvalid},
		{"another channel", &simgate.Verification{To: "+4915123456780", Channel: "voice"}, simgate.CodeInvalid},
		{"a number to call of its own", &simgate.Verification{To: "+4915123456780", Channel: simgate.ChannelSMS, CallTo: sim0}, ""},
	} {
		_, err := r.s.Start(ctx, c.v, 0)
		if simgate.ErrorCode(err) != c.code && !(c.code == "" && err == nil) {
			t.Errorf("%s: %v, want %q", c.name, err, c.code)
		}
		if c.code == "" && c.v.CallTo != "" {
			t.Errorf("%s: the request chose the number to call %q", c.name, c.v.CallTo)
		}
	}

	// No SIM to call: unavailable, and no send counted.
	pool.remove("sim1")
	if _, err := r.s.Start(ctx, &simgate.Verification{To: "+4915123456781", Channel: simgate.ChannelMissedCall}, 0); simgate.ErrorCode(err) != simgate.CodeUnavailable {
		t.Fatalf("without SIMs: %v, want unavailable", err)
	}
	if n := r.sends(t, "+4915123456781"); n != 0 {
		t.Fatalf("%d sends counted for a start refused for want of SIMs", n)
	}
	noCalls := newRulesRig(t, verify.Options{})
	if _, err := noCalls.s.Start(ctx, &simgate.Verification{To: caller, Channel: simgate.ChannelMissedCall}, 0); simgate.ErrorCode(err) != simgate.CodeUnavailable {
		t.Fatalf("without Callees: %v, want unavailable", err)
	}
}

// Only a call from the verification's number to its SIM, before it
// expires, approves it; any other call changes nothing, and a code check
// is refused without counting anything.
func TestMissedCallRule(t *testing.T) {
	ctx := context.Background()
	r := newRulesRig(t, verify.Options{Callees: newSIMs("sim0", sim0, "sim1", sim1)})
	start := func(number string, ttl time.Duration) *simgate.Verification {
		t.Helper()
		v := &simgate.Verification{To: number, Channel: simgate.ChannelMissedCall}
		if _, err := r.s.Start(ctx, v, ttl); err != nil {
			t.Fatal(err)
		}
		return v
	}
	handle := func(c *simgate.InboundCall) bool {
		t.Helper()
		ok, err := r.s.HandleCall(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	v := start(caller, 0)

	if _, err := r.s.Check(ctx, simgate.VerificationRef{ID: v.ID}, "123456"); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("a code check of a missed-call verification: %v, want conflict", err)
	}
	if _, err := r.s.Check(ctx, simgate.VerificationRef{To: caller}, "123456"); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("a code check by number: %v, want conflict", err)
	}
	if got, _, err := r.db.GetVerification(ctx, v.ID); err != nil || got.Attempts != 0 || got.Status != simgate.VerificationPending {
		t.Fatalf("after the checks: %+v, %v; want pending, no attempt counted", got, err)
	}

	for _, c := range []struct {
		name string
		call *simgate.InboundCall
	}{
		{"another number", call("+4915123456780", "sim0", r.clock())},
		{"the number, to another SIM", call(caller, "sim1", r.clock())},
		{"a withheld number", &simgate.InboundCall{ModemID: "sim0", At: r.clock()}},
		{"a number that could not be read", &simgate.InboundCall{ModemID: "sim0", From: "015123456789", At: r.clock()}},
		{"no modem", call(caller, "", r.clock())},
	} {
		if handle(c.call) {
			t.Errorf("a call from %s approved", c.name)
		}
		if st := r.status(t, v.ID); st != simgate.VerificationPending {
			t.Fatalf("after a call from %s: %s, want pending", c.name, st)
		}
	}
	if !handle(call(caller, "sim0", r.clock())) {
		t.Fatal("the call from the number to its SIM did not approve")
	}
	got, err := r.s.Get(ctx, simgate.VerificationRef{ID: v.ID})
	if err != nil || got.Status != simgate.VerificationApproved || !got.ApprovedAt.Equal(r.clock()) {
		t.Fatalf("approved: %+v, %v", got, err)
	}
	if handle(call(caller, "sim0", r.clock())) {
		t.Fatal("a second call approved again")
	}
	if _, err := r.s.Check(ctx, simgate.VerificationRef{ID: v.ID}, "123456"); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("a code check after approval: %v, want conflict", err)
	}

	// Expiry: a call after it approves nothing and writes the expiry down;
	// one that rang before it approves, however late it is handled.
	late := start("+4915123456782", time.Minute)
	r.advance(time.Minute)
	if handle(call(late.To, "sim0", r.clock())) {
		t.Fatal("a call after the expiry approved")
	}
	if st := r.status(t, late.ID); st != simgate.VerificationExpired {
		t.Fatalf("after a late call: %s, want expired", st)
	}
	ringing := start("+4915123456783", time.Minute)
	rang := r.clock().Add(59 * time.Second)
	r.advance(2 * time.Minute)
	if !handle(call(ringing.To, "sim0", rang)) {
		t.Fatal("a call that rang before the expiry did not approve")
	}

	// A code verification of the number is never approved by a call.
	sms := &simgate.Verification{To: "+4915123456784"}
	if _, err := r.s.Start(ctx, sms, 0); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"sim0", "sim1", ""} {
		if handle(call(sms.To, m, r.clock())) {
			t.Fatalf("a call to %q approved an SMS verification", m)
		}
	}
	if st := r.status(t, sms.ID); st != simgate.VerificationPending {
		t.Fatalf("the SMS verification after calls: %s", st)
	}
}

// A start of the other channel cancels a pending verification of the
// number instead of taking it over: the old code, or a call, approves
// nothing after it, and the queued SMS with the old code is canceled.
func TestMissedCallChannelSwitch(t *testing.T) {
	ctx := context.Background()
	r := newRulesRig(t, verify.Options{Callees: newSIMs("sim0", sim0)})

	sms := &simgate.Verification{To: caller}
	m, err := r.s.Start(ctx, sms, 0)
	if err != nil {
		t.Fatal(err)
	}
	code := r.h.code(t, caller)
	missed := &simgate.Verification{To: caller, Channel: simgate.ChannelMissedCall}
	if _, err := r.s.Start(ctx, missed, 0); err != nil || missed.ID == sms.ID || missed.SendCount != 1 {
		t.Fatalf("a missed call after an SMS: %+v, %v; want a new verification", missed, err)
	}
	if st := r.status(t, sms.ID); st != simgate.VerificationCanceled {
		t.Fatalf("the SMS verification: %s, want canceled", st)
	}
	if got, err := r.db.FindMessage(ctx, m.ID); err != nil || got.Status != simgate.StatusCanceled {
		t.Fatalf("its queued SMS: %+v, %v; want canceled", got, err)
	}
	if _, err := r.s.Check(ctx, simgate.VerificationRef{ID: sms.ID}, code); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("the SMS code after the switch: %v, want conflict", err)
	}

	back := &simgate.Verification{To: caller}
	if _, err := r.s.Start(ctx, back, 0); err != nil || back.ID == missed.ID || back.Channel != simgate.ChannelSMS {
		t.Fatalf("an SMS after a missed call: %+v, %v", back, err)
	}
	if st := r.status(t, missed.ID); st != simgate.VerificationCanceled {
		t.Fatalf("the missed-call verification: %s, want canceled", st)
	}
	if ok, err := r.s.HandleCall(ctx, call(caller, "sim0", r.clock())); err != nil || ok {
		t.Fatalf("a call after the switch: %v, %v; want nothing approved", ok, err)
	}
	if got, err := r.s.Check(ctx, simgate.VerificationRef{ID: back.ID}, r.h.code(t, caller)); err != nil || got.Status != simgate.VerificationApproved {
		t.Fatalf("the new code: %+v, %v", got, err)
	}
}

// Of several pending missed-call verifications of one number on one SIM
// (the service starts one per number, but a store may hold more), a call
// approves the newest, and the next call the one before it.
func TestMissedCallNewestFirst(t *testing.T) {
	ctx := context.Background()
	r := newRulesRig(t, verify.Options{Callees: newSIMs("sim0", sim0)})
	var ids []string
	for range 2 {
		if err := r.db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
			v := &simgate.Verification{ID: simgate.NewID("ver", tx.Now()), To: caller, Channel: simgate.ChannelMissedCall,
				CallTo: sim0, CallModem: "sim0", ServiceID: simgate.DefaultServiceID, CodeLength: 6, MaxAttempts: 5, ExpiresAt: tx.Now().Add(10 * time.Minute)}
			ids = append(ids, v.ID)
			return tx.CreateVerification(ctx, v)
		}); err != nil {
			t.Fatal(err)
		}
		r.advance(time.Second)
	}
	for i, want := range []string{ids[1], ids[0]} {
		if ok, err := r.s.HandleCall(ctx, call(caller, "sim0", r.clock())); err != nil || !ok {
			t.Fatalf("call %d: %v, %v", i+1, ok, err)
		}
		if st := r.status(t, want); st != simgate.VerificationApproved {
			t.Fatalf("after call %d, %s is %s; want approved", i+1, want, st)
		}
		if i == 0 {
			if st := r.status(t, ids[0]); st != simgate.VerificationPending {
				t.Fatalf("one call approved the older too: %s", st)
			}
		}
	}
}

// A number has a pending missed-call verification per service, as it has a
// code's: a start in one service leaves another's alone, and so does a
// start of the other channel, which cancels only its own service's. A call
// is for no service: it approves the newest pending verification of its
// number on its SIM, whatever the service. A missed call takes no custom
// code, as it has no code.
func TestMissedCallServices(t *testing.T) {
	ctx := context.Background()
	r := newRulesRig(t, verify.Options{Callees: newSIMs("sim0", sim0)})
	svc := &simgate.Service{FriendlyName: "Shop", CustomCodeAllowed: true}
	if err := r.s.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s.StartCustom(ctx, &simgate.Verification{To: caller, Channel: simgate.ChannelMissedCall, ServiceID: svc.ID},
		0, "123456"); simgate.ErrorCode(err) != simgate.CodeInvalid || !strings.Contains(err.Error(), "custom_code") {
		t.Fatalf("a missed call with a custom code: %v; want invalid, naming custom_code", err)
	}
	def := &simgate.Verification{To: caller, Channel: simgate.ChannelMissedCall}
	if _, err := r.s.Start(ctx, def, 0); err != nil || def.ServiceID != simgate.DefaultServiceID {
		t.Fatalf("start in the default service: %+v, %v", def, err)
	}
	r.advance(time.Second)
	shop := &simgate.Verification{To: caller, Channel: simgate.ChannelMissedCall, ServiceID: svc.ID}
	if _, err := r.s.Start(ctx, shop, 0); err != nil || shop.ID == def.ID || shop.CallModem != "sim0" {
		t.Fatalf("start in %s: %+v, %v; want a verification of its own on sim0", svc.ID, shop, err)
	}
	if st := r.status(t, def.ID); st != simgate.VerificationPending {
		t.Fatalf("a start in another service made the default one's %s", st)
	}
	r.advance(time.Second)
	if _, err := r.s.Start(ctx, &simgate.Verification{To: caller, ServiceID: svc.ID}, 0); err != nil {
		t.Fatal(err)
	}
	if st := r.status(t, shop.ID); st != simgate.VerificationCanceled {
		t.Fatalf("an SMS start in %s left its missed call %s; want canceled", svc.ID, st)
	}
	if st := r.status(t, def.ID); st != simgate.VerificationPending {
		t.Fatalf("an SMS start in another service made the default one's missed call %s", st)
	}
	if ok, err := r.s.HandleCall(ctx, call(caller, "sim0", r.clock())); err != nil || !ok {
		t.Fatalf("the call: %v, %v", ok, err)
	}
	if st := r.status(t, def.ID); st != simgate.VerificationApproved {
		t.Fatalf("after the call the default service's missed call is %s; want approved", st)
	}
}
