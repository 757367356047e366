package queue_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
)

var (
	_ queue.Sender   = (*fakeSender)(nil)
	_ queue.Observer = (*fakeObserver)(nil)
)

// waitQueued waits until message id is queued again after a send, and
// returns it: its outcome was recorded.
func (e *env) waitQueued(id string) *simgate.Message {
	e.t.Helper()
	var m *simgate.Message
	waitFor(e.t, "message "+id+" to be recorded as queued after a send", func() bool {
		var err error
		if m, err = e.db.FindMessage(e.ctx, id); err != nil {
			e.t.Fatal(err)
		}
		if m.Status.Final() {
			e.t.Fatalf("message %s ended %s: %q", id, m.Status, m.Reason)
		}
		return m.Status == simgate.StatusQueued && len(m.Events) > 1
	}, func() string { return fmt.Sprintf("last: %s %q events %+v", m.Status, m.Reason, m.Events) })
	return m
}

// A send that finds no modem to ask is no attempt: with every modem out for
// longer than MaxAttempts retries take, messages wait (one event each, no
// event per retry, nothing due between retries, so no spinning), and
// ModemReady sends them at once.
func TestNoModem_WaitsWithoutAttempts(t *testing.T) {
	e := newDBEnv(t)
	s := &fakeSender{fn: noModem}
	q := e.openQueue(queue.Options{Sender: s, MaxAttempts: 2, Workers: 2})
	ids := []string{
		e.enqueue(&simgate.Message{To: alice, Text: "one"}).ID,
		e.enqueue(&simgate.Message{To: bob, Text: "two"}).ID,
	}
	for _, id := range ids {
		if m := e.waitQueued(id); !strings.Contains(m.Reason, "waiting for a modem: ") {
			t.Fatalf("message %s: reason %q, want it waiting for a modem", id, m.Reason)
		}
	}

	// Ten retries, five times MaxAttempts.
	for i := range 10 {
		before := s.count()
		e.clk.Advance(queue.DefaultNoModemMaxBackoff + time.Second)
		if err := q.RunOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("retry %d to be recorded", i), func() bool {
			n, err := e.db.CountDue(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			return s.count() > before && n == 0 && !e.anySending(ids)
		}, nil)
	}

	now := e.clk.Now()
	for _, id := range ids {
		m, err := q.Message(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != simgate.StatusQueued || m.Attempts != 0 || m.Parts[0].Status != simgate.StatusQueued {
			t.Errorf("message %s: %s, %d attempts, part %s; want queued, 0 attempts, part queued (%q)",
				id, m.Status, m.Attempts, m.Parts[0].Status, m.Reason)
		}
		if got, want := countEvents(m, simgate.StatusQueued, "waiting for a modem: "), 1; got != want {
			t.Errorf("message %s: %d waiting events, want %d: %+v", id, got, want, m.Events)
		}
		if got, want := len(m.Events), 2; got != want { // accepted, waiting
			t.Errorf("message %s: %d events, want %d (no event per retry): %+v", id, got, want, m.Events)
		}
		// Not due until the capped backoff passed: the workers sleep.
		if wait := m.NextAttemptAt.Sub(now); wait <= 0 || wait > queue.DefaultNoModemMaxBackoff {
			t.Errorf("message %s: next attempt in %v, want within (0, %v]", id, wait, queue.DefaultNoModemMaxBackoff)
		}
	}
	if n := s.count(); n < 10 {
		t.Fatalf("%d sends tried, want at least 10", n)
	}

	// A modem comes back: no clock move, no sweep, ModemReady alone.
	s.set(func(req simgate.SendRequest) (simgate.Receipt, error) {
		return simgate.Receipt{ModemID: "m0", MRs: []int{len(req.To) % 256}, SentAt: e.clk.Now()}, nil
	})
	if err := q.ModemReady(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		m := e.waitStatus(id, simgate.StatusSent)
		if m.Attempts != 1 {
			t.Errorf("message %s: %d attempts, want 1", id, m.Attempts)
		}
		var statuses []string
		for _, ev := range m.Events {
			statuses = append(statuses, string(ev.Status))
		}
		if got, want := strings.Join(statuses, ","), "queued,queued,sending,sent"; got != want {
			t.Errorf("message %s: events %s, want %s", id, got, want)
		}
	}
}

func (e *env) anySending(ids []string) bool {
	for _, id := range ids {
		m, err := e.db.FindMessage(e.ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if m.Status == simgate.StatusSending {
			return true
		}
	}
	return false
}

// A message that waits for a modem waits until it expires, or its
// verification does, and its expiry says that no modem was available. One
// without an expiry keeps waiting.
func TestNoModem_ExpiresWaiting(t *testing.T) {
	e := newDBEnv(t)
	s := &fakeSender{fn: noModem}
	q := e.openQueue(queue.Options{Sender: s, MaxAttempts: 1})
	now := e.clk.Now()
	e.insertVerification("ver_1", bob, simgate.VerificationPending, now.Add(20*time.Second))
	own := e.enqueue(&simgate.Message{To: alice, Text: "soon stale", ExpiresAt: now.Add(20 * time.Second)})
	code := e.enqueue(&simgate.Message{To: bob, Text: "code 123456", VerificationID: "ver_1"})
	forever := e.enqueue(&simgate.Message{To: carol, Text: "no expiry"})
	for _, m := range []*simgate.Message{own, code, forever} {
		e.waitQueued(m.ID)
	}

	e.clk.Advance(25 * time.Second)
	if err := q.RunOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id     string
		reason string
	}{
		{own.ID, "expired before it could be sent (waiting for a modem: "},
		{code.ID, "its verification expired before it could be sent (waiting for a modem: "},
	} {
		m, err := q.Message(e.ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != simgate.StatusExpired || !strings.Contains(m.Reason, c.reason) || !strings.Contains(m.Reason, "no modem") {
			t.Errorf("message %s: %s %q, want expired with %q... no modem", c.id, m.Status, m.Reason, c.reason)
		}
		if m.Attempts != 0 {
			t.Errorf("message %s: %d attempts, want 0", c.id, m.Attempts)
		}
	}
	m := e.waitQueued(forever.ID)
	if !strings.Contains(m.Reason, "waiting for a modem: ") {
		t.Fatalf("message without expiry: %s %q, want it still waiting", m.Status, m.Reason)
	}
}

// A submit that timed out leaves its message unknown; the modem's late
// +CMGS answer gives the part its MR, the status report that follows
// matches, and the message is delivered. One whose report came before the
// late answer is matched then; one whose late answer came before the
// timeout was recorded (the modem hands on the timeout, then waits for the
// answer) is matched when it is. Answers that match no part are kept and
// counted, and are no error.
func TestLateSubmit_ReportMatches(t *testing.T) {
	e := newDBEnv(t)
	timeout := func(simgate.SendRequest) (simgate.Receipt, error) {
		return simgate.Receipt{ModemID: "m0"}, &classError{class: simgate.ClassAmbiguous, err: errTimeout}
	}
	s := &fakeSender{fn: timeout}
	q := e.openQueue(queue.Options{Sender: s, Workers: 1})
	m := e.enqueue(&simgate.Message{To: alice, Text: "did it go?"})
	got := e.waitStatus(m.ID, simgate.StatusUnknown)
	if p := got.Parts[0]; p.Status != simgate.StatusUnknown || p.MR != -1 {
		t.Fatalf("part %+v, want unknown without MR", p)
	}

	e.clk.Advance(10 * time.Second)
	for _, l := range []*simgate.LateSubmit{
		{ModemID: "m9", To: alice, Part: 0, MR: 42},                                       // another modem
		{ModemID: "m0", To: bob, Part: 0, MR: 42},                                         // another recipient
		{ModemID: "m0", To: alice, Part: 1, MR: 42},                                       // another part
		{ModemID: "m0", To: alice, Part: 0, MR: 42, At: e.clk.Now().Add(100 * time.Hour)}, // out of the window
	} {
		if err := q.HandleLateSubmit(e.ctx, l); err != nil {
			t.Fatalf("HandleLateSubmit(%+v): %v", l, err)
		}
	}
	if got, _ := q.Message(e.ctx, m.ID); got.Status != simgate.StatusUnknown {
		t.Fatalf("message %s after unmatched late submits, want unknown", got.Status)
	}

	late := &simgate.LateSubmit{ModemID: "m0", To: alice, Part: 0, MR: 42, At: e.clk.Now()}
	if err := q.HandleLateSubmit(e.ctx, late); err != nil {
		t.Fatal(err)
	}
	got, _ = q.Message(e.ctx, m.ID)
	if got.Status != simgate.StatusSent || !hasEvent(got, simgate.StatusSent, "late +CMGS answer: MR 42") {
		t.Fatalf("message %s %q events %+v, want sent with a late +CMGS event", got.Status, got.Reason, got.Events)
	}
	if p := got.Parts[0]; p.Status != simgate.StatusSent || p.MR != 42 || !p.SubmittedAt.Equal(late.At.UTC().Truncate(time.Millisecond)) {
		t.Fatalf("part %+v, want sent with MR 42, submitted at %v", p, late.At)
	}
	// A second answer for the same part matches nothing.
	if err := q.HandleLateSubmit(e.ctx, &simgate.LateSubmit{ModemID: "m0", To: alice, Part: 0, MR: 42}); err != nil {
		t.Fatal(err)
	}

	e.clk.Advance(30 * time.Second)
	r := &simgate.StatusReport{ModemID: "m0", MR: 42, Recipient: strings.TrimPrefix(alice, "+"), TPST: 0}
	if err := q.HandleReport(e.ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.MessageID != m.ID {
		t.Fatalf("report matched %q, want %s", r.MessageID, m.ID)
	}
	if got, _ := q.Message(e.ctx, m.ID); got.Status != simgate.StatusDelivered {
		t.Fatalf("message %s %q, want delivered", got.Status, got.Reason)
	}

	// The report comes first: kept unmatched, matched by the late answer.
	m2 := e.enqueue(&simgate.Message{To: bob, Text: "and this one?"})
	e.waitStatus(m2.ID, simgate.StatusUnknown)
	e.clk.Advance(time.Second)
	r2 := &simgate.StatusReport{ModemID: "m0", MR: 43, Recipient: bob, TPST: 0}
	if err := q.HandleReport(e.ctx, r2); err != nil {
		t.Fatal(err)
	}
	if r2.MessageID != "" {
		t.Fatalf("report matched %s before the late answer", r2.MessageID)
	}
	if err := q.HandleLateSubmit(e.ctx, &simgate.LateSubmit{ModemID: "m0", To: bob, Part: 0, MR: 43, At: e.clk.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Message(e.ctx, m2.ID); got.Status != simgate.StatusDelivered {
		t.Fatalf("message %s %q events %+v, want delivered", got.Status, got.Reason, got.Events)
	}

	// The late answer comes before the timeout is recorded.
	s.set(func(req simgate.SendRequest) (simgate.Receipt, error) {
		if err := q.HandleLateSubmit(e.ctx, &simgate.LateSubmit{ModemID: "m0", To: req.To, Part: 0, MR: 44}); err != nil {
			t.Error(err)
		}
		return timeout(req)
	})
	m3 := e.enqueue(&simgate.Message{To: carol, Text: "overtaken"})
	got = e.waitStatus(m3.ID, simgate.StatusSent)
	if p := got.Parts[0]; p.MR != 44 || !hasEvent(got, simgate.StatusUnknown, "may have been sent") {
		t.Fatalf("part %+v events %+v, want MR 44 after an unknown outcome", p, got.Events)
	}

	st, err := q.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.LateSubmits != 8 || st.MatchedLateSubmits != 3 {
		t.Fatalf("%d late submits, %d matched; want 8 and 3", st.LateSubmits, st.MatchedLateSubmits)
	}
}

var errTimeout = fmt.Errorf("modem did not answer in time")

// A sent message whose report never came is closed by the sweep once the
// report window passed: still sent, with a reason, an event and a count,
// once; it leaves the queue depth. Newer and delivered messages are not
// touched.
func TestReports_MissingClosed(t *testing.T) {
	e := newDBEnv(t)
	mr := 0
	s := &fakeSender{fn: func(simgate.SendRequest) (simgate.Receipt, error) {
		mr++ // one worker
		return simgate.Receipt{ModemID: "m0", MRs: []int{mr}, SentAt: e.clk.Now()}, nil
	}}
	obs := &fakeObserver{}
	q := e.openQueue(queue.Options{Sender: s, Workers: 1})
	q.Observe(obs)
	old := e.enqueue(&simgate.Message{To: alice, Text: "no report will come"})
	e.waitStatus(old.ID, simgate.StatusSent)
	done := e.enqueue(&simgate.Message{To: carol, Text: "reported"})
	d := e.waitStatus(done.ID, simgate.StatusSent)
	if err := q.HandleReport(e.ctx, &simgate.StatusReport{ModemID: "m0", MR: d.Parts[0].MR, Recipient: carol}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(48 * time.Hour)
	fresh := e.enqueue(&simgate.Message{To: bob, Text: "its report may still come"})
	e.waitStatus(fresh.ID, simgate.StatusSent)

	e.clk.Advance(25 * time.Hour) // old: 73 h, fresh: 25 h
	for range 2 {
		if err := q.RunOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	reason := "no report within 72h0m0s"
	m, _ := q.Message(e.ctx, old.ID)
	if m.Status != simgate.StatusSent || m.Reason != reason {
		t.Fatalf("old message: %s %q, want sent %q", m.Status, m.Reason, reason)
	}
	if got, want := countEvents(m, simgate.StatusSent, reason), 1; got != want {
		t.Fatalf("old message: %d closing events, want %d: %+v", got, want, m.Events)
	}
	if got, want := obs.missing.Load(), int64(1); got != want {
		t.Fatalf("%d missing reports counted, want %d", got, want)
	}
	if m, _ := q.Message(e.ctx, fresh.ID); m.Reason == reason {
		t.Fatalf("fresh message closed: %q", m.Reason)
	}
	if m, _ := q.Message(e.ctx, done.ID); m.Status != simgate.StatusDelivered || m.Reason == reason {
		t.Fatalf("delivered message: %s %q", m.Status, m.Reason)
	}
	st, err := q.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Depth[simgate.StatusSent][simgate.PriorityNormal], 1; got != want {
		t.Fatalf("%d sent messages in the depth, want %d (the fresh one)", got, want)
	}

	e.clk.Advance(48 * time.Hour)
	if err := q.RunOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	if m, _ := q.Message(e.ctx, fresh.ID); m.Reason != reason {
		t.Fatalf("fresh message after its window: %q, want %q", m.Reason, reason)
	}
	if got, want := obs.missing.Load(), int64(2); got != want {
		t.Fatalf("%d missing reports counted, want %d", got, want)
	}
}
