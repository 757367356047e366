package queue_test

import (
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/sim"
	"github.com/simgate/simgate/queue"
)

const (
	alice = "+15557650001"
	bob   = "+15557650002"
	carol = "+15557650003"
)

// An accepted message reaches AT+CMGS without any sweep (SweepInterval 0),
// and its status report makes it delivered.
func TestDispatch_EventDriven(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	e.openQueue(queue.Options{})
	m := e.enqueue(&simgate.Message{To: alice, Text: "hello"})
	if _, err := e.net.WaitSubmissions(e.ctx, 1); err != nil {
		t.Fatal(err)
	}
	got := e.waitStatus(m.ID, simgate.StatusDelivered)
	if got, want := len(got.Parts), 1; got != want {
		t.Fatalf("%d parts, want %d", got, want)
	}
	p := got.Parts[0]
	if p.Status != simgate.StatusDelivered || p.ModemID != "m0" || p.MR < 0 || p.ReportStatus != 0 || p.SubmittedAt.IsZero() {
		t.Fatalf("part = %+v", p)
	}
	var statuses []simgate.MessageStatus
	for _, ev := range got.Events {
		statuses = append(statuses, ev.Status)
	}
	if got, want := statuses, []simgate.MessageStatus{"queued", "sending", "sent", "delivered"}; strings.Join(toStrings(got), ",") != strings.Join(toStrings(want), ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	if got, want := e.net.Inbox(alice)[0].Text, "hello"; got != want {
		t.Fatalf("handset got %q, want %q", got, want)
	}
}

func toStrings(ss []simgate.MessageStatus) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// With a backlog, a verification code goes before normal traffic that was
// queued earlier.
func TestDispatch_Priority(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	q := e.newQueue(queue.Options{})
	for i := 0; i < 5; i++ {
		e.enqueue(&simgate.Message{To: alice, Text: "newsletter"})
	}
	e.insertVerification("ver_1", bob, simgate.VerificationPending, e.clk.Now().Add(10*time.Minute))
	v := e.enqueue(&simgate.Message{To: bob, Text: "Your code is 123456", VerificationID: "ver_1"})
	if got, want := v.Priority, simgate.PriorityVerification; got != want {
		t.Fatalf("priority %v, want %v", got, want)
	}
	if err := q.Open(e.ctx); err != nil {
		t.Fatal(err)
	}
	subs, err := e.net.WaitSubmissions(e.ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := subs[0].To, bob; strings.TrimPrefix(got, "+") != strings.TrimPrefix(want, "+") {
		t.Fatalf("first submit to %s, want %s (the verification)", got, want)
	}
}

// A message whose expiry passed, or whose verification ended, is never
// submitted; the next one is.
func TestDispatch_ExpiryBeforeSend(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	q := e.newQueue(queue.Options{})
	now := e.clk.Now()
	expiring := e.enqueue(&simgate.Message{To: alice, Text: "too late", ExpiresAt: now.Add(time.Minute)})
	e.insertVerification("ver_exp", bob, simgate.VerificationPending, now.Add(2*time.Minute))
	vexp := e.enqueue(&simgate.Message{To: bob, Text: "code 1", VerificationID: "ver_exp"})
	e.insertVerification("ver_ok", carol, simgate.VerificationPending, now.Add(time.Hour))
	vok := e.enqueue(&simgate.Message{To: carol, Text: "code 2", VerificationID: "ver_ok"})
	e.execSQL(`UPDATE verifications SET status = 'approved', code_hash = NULL WHERE id = 'ver_ok'`)

	e.clk.Advance(5 * time.Minute)
	if err := q.Open(e.ctx); err != nil {
		t.Fatal(err)
	}
	barrier := e.enqueue(&simgate.Message{To: alice, Text: "in time"})
	e.waitStatus(barrier.ID, simgate.StatusDelivered)

	for _, c := range []struct {
		id     string
		want   simgate.MessageStatus
		reason string
	}{
		{expiring.ID, simgate.StatusExpired, "expired before"},
		{vexp.ID, simgate.StatusExpired, "verification expired"},
		{vok.ID, simgate.StatusCanceled, "verification is approved"},
	} {
		m, err := q.Message(e.ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != c.want || !strings.Contains(m.Reason, c.reason) {
			t.Errorf("message %s: %s %q, want %s %q", c.id, m.Status, m.Reason, c.want, c.reason)
		}
		if hasEvent(m, simgate.StatusSending, "") {
			t.Errorf("message %s was claimed for sending", c.id)
		}
	}
	subs := e.net.Submissions()
	if got, want := len(subs), 1; got != want {
		t.Fatalf("%d submissions, want %d: %+v", got, want, subs)
	}
	if got, want := subs[0].Text, "in time"; got != want {
		t.Fatalf("submitted %q, want %q", got, want)
	}
}

// A message claimed in time that then waits for a busy modem past its own
// expiry, or past its verification's, is not submitted late: the modem looks
// at the time just before AT+CMGS, the message ends expired, and the modem is
// not blamed for it.
func TestDispatch_ExpiryWhileWaitingForModem(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1, sim: func(i int, c *sim.Config) { c.SubmitLatency = 3 * time.Second }})
	e.openQueue(queue.Options{Workers: 3})
	first := e.enqueue(&simgate.Message{To: alice, Text: "first"})
	e.waitStatus(first.ID, simgate.StatusSending)
	time.Sleep(200 * time.Millisecond) // its AT+CMGS is under way: the one modem is busy
	// Both are claimed at once, long before their time runs out, and then
	// wait for the modem until well after it.
	late := e.enqueue(&simgate.Message{To: bob, Text: "late", ExpiresAt: e.clk.Now().Add(time.Second)})
	e.insertVerification("ver_late", carol, simgate.VerificationPending, e.clk.Now().Add(time.Second))
	code := e.enqueue(&simgate.Message{To: carol, Text: "code 1", VerificationID: "ver_late"})

	for _, id := range []string{late.ID, code.ID} {
		m := e.waitStatus(id, simgate.StatusExpired)
		if !strings.Contains(m.Reason, "expired before it could be sent") {
			t.Errorf("message %s: reason %q", id, m.Reason)
		}
		if !hasEvent(m, simgate.StatusSending, "") {
			t.Errorf("message %s was not claimed before it expired, so this tested the claim, not the wait: %+v", id, m.Events)
		}
		if m.ModemID != "" {
			t.Errorf("message %s names modem %s, which sent nothing", id, m.ModemID)
		}
	}
	e.waitStatus(first.ID, simgate.StatusDelivered)
	subs := e.net.Submissions()
	if len(subs) != 1 || subs[0].Text != "first" {
		t.Fatalf("submissions %+v, want only the first message", subs)
	}
	for _, st := range e.pool.Status() {
		if st.State != simgate.ModemReady || st.Counters.Failed != 0 {
			t.Errorf("modem %s: %s, %d failed submits; an expiry is not the modem's failure", st.ID, st.State, st.Counters.Failed)
		}
	}
}

// A modem that fails a destination with a transient error (+CMS ERROR: 38):
// the pool fails over within one attempt, and with the pool's failover off
// the queue retries after its backoff until another modem takes it.
func TestDispatch_RetryOnAnotherModem(t *testing.T) {
	t.Run("pool failover", func(t *testing.T) {
		e := newEnv(t, envConfig{modems: 2})
		e.mods[0].SetFaults(sim.Faults{CMSErrorFor: map[string]int{alice: 38}})
		e.openQueue(queue.Options{})
		var ids []string
		for i := 0; i < 4; i++ {
			ids = append(ids, e.enqueue(&simgate.Message{To: alice, Text: "retry me"}).ID)
		}
		for _, id := range ids {
			m := e.waitStatus(id, simgate.StatusDelivered)
			if got, want := m.ModemID, "m1"; got != want {
				t.Errorf("sent by %s, want %s", got, want)
			}
		}
		for _, s := range e.net.Submissions() {
			if s.Modem != "modem1" {
				t.Errorf("submission left %s", s.Modem)
			}
		}
	})
	t.Run("queue retry", func(t *testing.T) {
		e := newEnv(t, envConfig{modems: 2, pool: func(o *modem.PoolOptions) { o.MaxAttempts = 1 }})
		e.mods[0].SetFaults(sim.Faults{CMSErrorFor: map[string]int{alice: 38}})
		q := e.openQueue(queue.Options{RetryBackoff: time.Second, MaxAttempts: 10})
		// With m1 out of rotation the first attempt goes to m0.
		if err := e.pool.Disable("m1"); err != nil {
			t.Fatal(err)
		}
		m := e.enqueue(&simgate.Message{To: alice, Text: "retry me"})
		waitFor(t, "a retry to be scheduled", func() bool {
			m, _ = q.Message(e.ctx, m.ID)
			return hasEvent(m, simgate.StatusQueued, "retry in")
		}, nil)
		if !strings.Contains(m.Reason, "+CMS ERROR") && !strings.Contains(m.Reason, "38") {
			t.Errorf("reason %q does not name the error", m.Reason)
		}
		// Not due yet: a sweep leaves it alone.
		if err := q.RunOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := q.Message(e.ctx, m.ID); got.Attempts != 1 {
			t.Fatalf("attempts %d before the backoff passed, want 1", got.Attempts)
		}
		if err := e.pool.Enable("m1"); err != nil {
			t.Fatal(err)
		}
		// Each retry alternates modems; step time until one leaves m1.
		waitFor(t, "delivery through m1", func() bool {
			got, _ := q.Message(e.ctx, m.ID)
			if got.Status == simgate.StatusQueued {
				e.clk.Advance(time.Minute)
				if err := q.RunOnce(e.ctx); err != nil {
					t.Fatal(err)
				}
			}
			return got.Status == simgate.StatusDelivered
		}, nil)
		got, _ := q.Message(e.ctx, m.ID)
		if got.ModemID != "m1" || got.Attempts < 2 {
			t.Fatalf("modem %s attempts %d, want m1 and >= 2", got.ModemID, got.Attempts)
		}
	})
}

// A permanent error (+CMS ERROR: 21) fails that message at once, with the
// reason, fails its verification, and holds up nothing behind it.
func TestDispatch_PermanentFailure(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	e.mods[0].SetFaults(sim.Faults{CMSErrorFor: map[string]int{alice: 21}})
	q := e.newQueue(queue.Options{})
	e.insertVerification("ver_bad", alice, simgate.VerificationPending, e.clk.Now().Add(time.Hour))
	bad := e.enqueue(&simgate.Message{To: alice, Text: "code 1", VerificationID: "ver_bad"})
	good := e.enqueue(&simgate.Message{To: bob, Text: "fine"})
	if err := q.Open(e.ctx); err != nil {
		t.Fatal(err)
	}
	b := e.waitStatus(bad.ID, simgate.StatusFailed)
	e.waitStatus(good.ID, simgate.StatusDelivered)
	if b.Attempts != 1 || !strings.Contains(b.Reason, "21") || !strings.Contains(b.Reason, "permanent-recipient") {
		t.Fatalf("failed message: attempts %d reason %q", b.Attempts, b.Reason)
	}
	if got, want := e.verificationStatus("ver_bad"), simgate.VerificationFailed; got != want {
		t.Fatalf("verification %s, want %s", got, want)
	}
}

// A three-part message: each part's report is matched by its own MR, and the
// message is delivered when the last one is.
func TestReports_Multipart(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	q := e.openQueue(queue.Options{})
	text := strings.Repeat("0123456789", 40) // 400 GSM-7 characters: 3 parts
	m := e.enqueue(&simgate.Message{To: alice, Text: text})
	if got, want := len(m.Parts), 3; got != want {
		t.Fatalf("planned %d parts, want %d", got, want)
	}
	got := e.waitStatus(m.ID, simgate.StatusDelivered)
	mrs := map[int]bool{}
	for _, p := range got.Parts {
		if p.Status != simgate.StatusDelivered || p.ReportStatus != 0 {
			t.Fatalf("part %+v", p)
		}
		mrs[p.MR] = true
	}
	if len(mrs) != 3 {
		t.Fatalf("parts share MRs: %+v", got.Parts)
	}
	st, err := q.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reports != 3 || st.MatchedReports != 3 || st.MatchRatio() != 1 {
		t.Fatalf("stats %+v", st)
	}
	if st.ReportLatencyP50 <= 0 {
		t.Fatalf("no report latency: %+v", st)
	}
}

// A temporary TP-ST does not finish the part; the final report does.
func TestReports_TemporaryThenFinal(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	e.mods[0].SetFaults(sim.Faults{Report: sim.ReportTempThenDelivered})
	q := e.openQueue(queue.Options{})
	m := e.enqueue(&simgate.Message{To: alice, Text: "patience"})
	got := e.waitStatus(m.ID, simgate.StatusDelivered)
	if !hasEvent(got, simgate.StatusSent, "SMSC still trying") {
		t.Fatalf("no temporary report in the history: %+v", got.Events)
	}
	st, _ := q.Stats(e.ctx)
	if st.Reports != 2 || st.MatchedReports != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// A permanent report fails the message.
func TestReports_PermanentFailure(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	e.mods[0].SetFaults(sim.Faults{Report: sim.ReportPermanent})
	e.openQueue(queue.Options{})
	m := e.enqueue(&simgate.Message{To: alice, Text: "into the void"})
	got := e.waitStatus(m.ID, simgate.StatusFailed)
	if !strings.Contains(got.Reason, "not delivered") {
		t.Fatalf("reason %q", got.Reason)
	}
}

// One modem, one recipient, 257 sends: the MR wraps, so the first and the
// last message carry the same MR. With no report for the first 256, the
// last one's report could match either; the newest submit wins, and the
// first message keeps waiting.
func TestReports_MRWrap(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1, sim: func(i int, c *sim.Config) { c.SubmitLatency = time.Millisecond }})
	e.mods[0].SetFaults(sim.Faults{Report: sim.ReportNone})
	q := e.openQueue(queue.Options{})
	var ids []string
	for i := 0; i < 256; i++ {
		ids = append(ids, e.enqueue(&simgate.Message{To: alice, Text: "wrap"}).ID)
	}
	for _, id := range ids {
		e.waitStatus(id, simgate.StatusSent)
	}
	e.mods[0].SetFaults(sim.Faults{})
	last := e.enqueue(&simgate.Message{To: alice, Text: "wrap"})
	gl := e.waitStatus(last.ID, simgate.StatusDelivered)
	first, _ := q.Message(e.ctx, ids[0])
	if first.Parts[0].MR != gl.Parts[0].MR {
		t.Fatalf("MRs %d and %d: the test did not wrap", first.Parts[0].MR, gl.Parts[0].MR)
	}
	if first.Status != simgate.StatusSent {
		t.Fatalf("first message %s, want sent (its report never came)", first.Status)
	}
	st, _ := q.Stats(e.ctx)
	if st.Reports != 1 || st.MatchedReports != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A report that matches nothing is kept and counted.
func TestReports_Unmatched(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	q := e.openQueue(queue.Options{})
	m := e.enqueue(&simgate.Message{To: alice, Text: "x"})
	got := e.waitStatus(m.ID, simgate.StatusDelivered)
	for _, r := range []*simgate.StatusReport{
		{ModemID: "m0", MR: (got.Parts[0].MR + 1) % 256, Recipient: alice, TPST: 0},                                   // unused MR
		{ModemID: "m0", MR: got.Parts[0].MR, Recipient: bob, TPST: 0},                                                 // other recipient
		{ModemID: "m9", MR: got.Parts[0].MR, Recipient: alice, TPST: 0},                                               // other modem
		{ModemID: "m0", MR: got.Parts[0].MR, Recipient: alice, TPST: 0, ReceivedAt: e.clk.Now().Add(100 * time.Hour)}, // outside the window
	} {
		if err := q.HandleReport(e.ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.MessageID != "" || r.ID == 0 {
			t.Fatalf("report %+v matched", r)
		}
	}
	st, _ := q.Stats(e.ctx)
	if st.Reports != 4 || st.MatchedReports != 1 { // the one outside the window is in the future of Since too
		t.Logf("stats %+v", st)
	}
	if st.Reports-st.MatchedReports < 3 {
		t.Fatalf("unmatched not counted: %+v", st)
	}
}
