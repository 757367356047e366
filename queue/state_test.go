package queue_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/postgres"
	"github.com/simgate/simgate/store/postgres/pgtest"
)

// stateDB runs the queue's rules (Create, Claim, Finish, ...) on a real
// store, each in a transaction of its own: the state machine without a
// Dispatcher. newStateDB opens the store in a temporary directory with a
// clock that moves only when told; env.state uses an env's.
type stateDB struct {
	t   testing.TB
	ctx context.Context
	db  stateStore
	clk *testClock // newStateDB's: from 2026-03-01 12:00 UTC
}

// stateStore is what the state tests run the rules on and read back: the
// dispatcher's store with the modems' daily usage, of either backend.
type stateStore interface {
	queue.Store
	modem.UsageStore
}

// state is the stateDB of e's database.
func (e *env) state() *stateDB { return &stateDB{t: e.t, ctx: e.ctx, db: e.db} }

func newStateDB(t testing.TB) *stateDB {
	t.Helper()
	return openStateDB(t, func(ctx context.Context, now simgate.Clock) (stateStore, error) {
		return store.Open(ctx, filepath.Join(t.TempDir(), "simgate.db"), store.Options{Now: now})
	})
}

// newPostgresStateDB is newStateDB on a new PostgreSQL database; the test
// is skipped without a server (pgtest.NewDatabase).
func newPostgresStateDB(t testing.TB) *stateDB {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	return openStateDB(t, func(ctx context.Context, now simgate.Clock) (stateStore, error) {
		return postgres.Open(ctx, dsn, postgres.Options{Now: now})
	})
}

// openStateDB is a stateDB on the store open opens, closed when the test
// ends.
func openStateDB(t testing.TB, open func(context.Context, simgate.Clock) (stateStore, error)) *stateDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	clk := &testClock{base: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	db, err := open(ctx, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.(interface{ Close() error }).Close() })
	return &stateDB{t: t, ctx: ctx, db: db, clk: clk}
}

// onStores runs test on a new stateDB of each store backend: SQLite, and
// PostgreSQL when SIMGATE_TEST_POSTGRES names a server.
func onStores(t *testing.T, test func(t *testing.T, s *stateDB)) {
	t.Run("sqlite", func(t *testing.T) { test(t, newStateDB(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, newPostgresStateDB(t)) })
}

// update runs fn in one transaction.
func (s *stateDB) update(fn func(tx simgate.MessageTx) error) error {
	return s.db.UpdateMessages(s.ctx, fn)
}

// count runs fn, which counts, in one transaction.
func (s *stateDB) count(fn func(ctx context.Context, tx simgate.MessageTx) (int, error)) (int, error) {
	var n int
	err := s.update(func(tx simgate.MessageTx) error {
		var err error
		n, err = fn(s.ctx, tx)
		return err
	})
	return n, err
}

func (s *stateDB) create(m *simgate.Message) (bool, error) {
	var created bool
	err := s.update(func(tx simgate.MessageTx) error {
		var err error
		created, err = queue.Create(s.ctx, tx, m, nil)
		return err
	})
	return created, err
}

func (s *stateDB) claim(owner string, lease time.Duration) (*simgate.Message, error) {
	var m *simgate.Message
	err := s.update(func(tx simgate.MessageTx) error {
		var err error
		m, err = queue.Claim(s.ctx, tx, owner, lease, nil)
		return err
	})
	return m, err
}

func (s *stateDB) finish(id string, o simgate.SendOutcome) error {
	return s.update(func(tx simgate.MessageTx) error { return queue.Finish(s.ctx, tx, id, o) })
}

func (s *stateDB) report(r *simgate.StatusReport, window time.Duration) error {
	return s.update(func(tx simgate.MessageTx) error { return queue.RecordReport(s.ctx, tx, r, window) })
}

func (s *stateDB) lateSubmit(l *simgate.LateSubmit, window time.Duration) (string, error) {
	var id string
	err := s.update(func(tx simgate.MessageTx) error {
		var err error
		id, err = queue.RecordLateSubmit(s.ctx, tx, l, window)
		return err
	})
	return id, err
}

func (s *stateDB) release() (int, error) { return s.count(queue.ReleaseScheduled) }

func (s *stateDB) expire() (int, error) { return s.count(queue.Expire) }

func (s *stateDB) cancel(id, reason string) error {
	return s.update(func(tx simgate.MessageTx) error { return queue.CancelMessage(s.ctx, tx, id, reason) })
}

func newMessage(to, text string, parts int) *simgate.Message {
	return &simgate.Message{To: to, Text: text, Parts: make([]simgate.Part, parts)}
}

// Claims go by priority, then due time, then age; a retry is not claimed
// before it is due; a claim commits sending with a lease.
func TestMessages_ClaimOrder(t *testing.T) { onStores(t, testMessagesClaimOrder) }

func testMessagesClaimOrder(t *testing.T, s *stateDB) {
	ctx, db, clk := s.ctx, s.db, s.clk
	low := newMessage("+15550000001", "low", 1)
	low.Priority = simgate.PriorityLow
	normal := newMessage("+15550000002", "normal", 1)
	high := newMessage("+15550000003", "high", 1)
	high.Priority = simgate.PriorityHigh
	for _, m := range []*simgate.Message{low, normal, high} {
		if _, err := s.create(m); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Millisecond)
	}
	m, err := s.claim("n1", time.Minute)
	if err != nil || m == nil || m.ID != high.ID || m.Status != simgate.StatusSending || m.Attempts != 1 {
		t.Fatalf("first claim %+v, %v; want %s", m, err, high.ID)
	}
	if err := s.finish(m.ID, simgate.SendOutcome{Status: simgate.StatusQueued, RetryAt: clk.Now().Add(time.Minute), Reason: "retry"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{normal.ID, low.ID, ""} {
		m, err := s.claim("n1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if m != nil {
			got = m.ID
		}
		if got != want {
			t.Fatalf("claimed %q, want %q", got, want)
		}
	}
	clk.Advance(time.Minute)
	if n, err := db.CountDue(ctx); err != nil || n != 1 {
		t.Fatalf("CountDue = %d, %v; want 1", n, err)
	}
	m, err = s.claim("n1", time.Minute)
	if err != nil || m == nil || m.ID != high.ID || m.Attempts != 2 {
		t.Fatalf("retry claim %+v, %v", m, err)
	}
}

// A multipart outcome: parts with MRs are sent, an ambiguous one unknown,
// the rest failed; the message stays sent until its reports came, then
// folds.
func TestMessages_AmbiguousMultipart(t *testing.T) { onStores(t, testMessagesAmbiguousMultipart) }

func testMessagesAmbiguousMultipart(t *testing.T, s *stateDB) {
	ctx, db, clk := s.ctx, s.db, s.clk
	m := newMessage("+15550000001", strings.Repeat("x", 400), 3)
	if _, err := s.create(m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.claim("n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.finish(m.ID, simgate.SendOutcome{Status: simgate.StatusFailed, Ambiguous: true, ModemID: "m0",
		MRs: []int{7}, SentAt: clk.Now(), Reason: "timeout"}); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ps []string
	for _, p := range got.Parts {
		ps = append(ps, string(p.Status))
	}
	if got.Status != simgate.StatusSent || strings.Join(ps, ",") != "sent,unknown,failed" || got.Parts[0].MR != 7 {
		t.Fatalf("message %s parts %v %+v", got.Status, ps, got.Parts)
	}
	clk.Advance(time.Second)
	r := &simgate.StatusReport{ModemID: "m0", MR: 7, Recipient: "15550000001", TPST: 0}
	if err := s.report(r, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r.MessageID != m.ID || r.PartSeq != 1 {
		t.Fatalf("report matched %s/%d", r.MessageID, r.PartSeq)
	}
	got, _ = db.FindMessage(ctx, m.ID)
	if got.Status != simgate.StatusUnknown {
		t.Fatalf("after the report: %s, want unknown", got.Status)
	}
}

// Reports match by modem, MR, recipient and window: with a wrapped MR the
// part still waiting wins, then the newest; a report outside the window
// stays unmatched; a report that came before the submit was recorded is
// matched when it is.
func TestReports_Matching(t *testing.T) { onStores(t, testReportsMatching) }

func testReportsMatching(t *testing.T, s *stateDB) {
	ctx, db, clk := s.ctx, s.db, s.clk
	send := func(to string, mr int) *simgate.Message {
		m := newMessage(to, "x", 1)
		if _, err := s.create(m); err != nil {
			t.Fatal(err)
		}
		if c, err := s.claim("n1", time.Minute); err != nil || c.ID != m.ID {
			t.Fatalf("claim %v %v", c, err)
		}
		if err := s.finish(m.ID, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m0", MRs: []int{mr}, SentAt: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	old := send("+15550000001", 5)
	clk.Advance(10 * time.Minute)
	recent := send("+15550000001", 5)
	clk.Advance(time.Second)

	r := &simgate.StatusReport{ModemID: "m0", MR: 5, Recipient: "+15550000001", TPST: 0x21}
	if err := s.report(r, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r.MessageID != recent.ID {
		t.Fatalf("temporary report matched %q, want the newest %q", r.MessageID, recent.ID)
	}
	r = &simgate.StatusReport{ModemID: "m0", MR: 5, Recipient: "+15550000001", TPST: 0}
	if err := s.report(r, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.FindMessage(ctx, recent.ID); got.Status != simgate.StatusDelivered {
		t.Fatalf("recent %s", got.Status)
	}
	// The old part still waits; the window is 5 min, it was sent 10 min ago.
	r = &simgate.StatusReport{ModemID: "m0", MR: 5, Recipient: "+15550000001", TPST: 0}
	if err := s.report(r, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if r.MessageID == old.ID {
		t.Fatal("report matched a part outside the window")
	}
	if got, _ := db.FindMessage(ctx, old.ID); got.Status != simgate.StatusSent {
		t.Fatalf("old %s, want sent", got.Status)
	}
	// Within the window it is the old part's: the recent one is final.
	if err := s.report(&simgate.StatusReport{ModemID: "m0", MR: 5, Recipient: "+15550000001", TPST: 0x41}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.FindMessage(ctx, old.ID); got.Status != simgate.StatusFailed {
		t.Fatalf("old %s, want failed", got.Status)
	}

	// Early: the report is recorded before the submit.
	early := &simgate.StatusReport{ModemID: "m1", MR: 9, Recipient: "+15550000002", TPST: 0}
	if err := s.report(early, time.Hour); err != nil || early.MessageID != "" {
		t.Fatalf("early report: %v, matched %q", err, early.MessageID)
	}
	m := newMessage("+15550000002", "fast", 1)
	if _, err := s.create(m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.claim("n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.finish(m.ID, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m1", MRs: []int{9}, SentAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.FindMessage(ctx, m.ID); got.Status != simgate.StatusDelivered {
		t.Fatalf("message with an early report: %s, want delivered", got.Status)
	}

	st, err := db.QueueStats(ctx, clk.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Reports != 5 || st.MatchedReports != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// A late +CMGS answer for the ambiguous part of a long message gives that
// part its MR, submitted when the answer came; the message refolds by the
// usual rules: sent while reports are awaited, and unknown at the end, since
// the part after the ambiguous one never went out. Its report matches within
// the window counted from the late submit, not from the first parts'.
func TestMessages_LateSubmitMultipart(t *testing.T) { onStores(t, testMessagesLateSubmitMultipart) }

func testMessagesLateSubmitMultipart(t *testing.T, s *stateDB) {
	ctx, db, clk := s.ctx, s.db, s.clk
	const to = "+15550000001"
	m := newMessage(to, strings.Repeat("x", 400), 3)
	if _, err := s.create(m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.claim("n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.finish(m.ID, simgate.SendOutcome{Status: simgate.StatusUnknown, Ambiguous: true, ModemID: "m0",
		MRs: []int{7}, SentAt: clk.Now(), Reason: "timeout"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Minute)
	at := clk.Now()
	id, err := s.lateSubmit(&simgate.LateSubmit{ModemID: "m0", To: to, Part: 1, MR: 8, At: at}, time.Hour)
	if err != nil || id != m.ID {
		t.Fatalf("RecordLateSubmit = %q, %v; want %s", id, err, m.ID)
	}
	got, _ := db.FindMessage(ctx, m.ID)
	var ps []string
	for _, p := range got.Parts {
		ps = append(ps, fmt.Sprintf("%s/%d", p.Status, p.MR))
	}
	if got.Status != simgate.StatusSent || strings.Join(ps, ",") != "sent/7,sent/8,unknown/-1" || !got.Parts[1].SubmittedAt.Equal(at) {
		t.Fatalf("message %s parts %v %+v", got.Status, ps, got.Parts)
	}

	// 20 minutes on, part 1's submit is 70 minutes old, part 2's 20: with a
	// one-hour window only part 2's report matches.
	clk.Advance(20 * time.Minute)
	for _, c := range []struct {
		mr   int
		want string
	}{{7, ""}, {8, m.ID}} {
		r := &simgate.StatusReport{ModemID: "m0", MR: c.mr, Recipient: to, TPST: 0}
		if err := s.report(r, time.Hour); err != nil {
			t.Fatal(err)
		}
		if r.MessageID != c.want {
			t.Fatalf("report for MR %d matched %q, want %q", c.mr, r.MessageID, c.want)
		}
	}
	got, _ = db.FindMessage(ctx, m.ID)
	if got.Status != simgate.StatusSent || got.Parts[1].Status != simgate.StatusDelivered {
		t.Fatalf("message %s parts %+v, want sent with part 2 delivered", got.Status, got.Parts)
	}
}

// A message with a SendAt ahead is stored scheduled (its parts queued), is
// not claimed, is the next scheduled, and becomes queued, with its event,
// once ReleaseScheduled runs at or after its SendAt, never before.
func TestMessages_Scheduled(t *testing.T) { onStores(t, testMessagesScheduled) }

func testMessagesScheduled(t *testing.T, s *stateDB) {
	ctx, db, clk := s.ctx, s.db, s.clk

	at := clk.Now().Add(time.Hour + 1500*time.Microsecond) // rounded up to the millisecond
	m := newMessage("+15550000001", "later", 2)
	m.SendAt = at
	if _, err := s.create(m); err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(time.Hour + 2*time.Millisecond)
	if got := m.SendAt; !got.Equal(want) {
		t.Fatalf("SendAt %v, want %v (rounded up)", got, want)
	}
	if got, want := m.Status, simgate.StatusScheduled; got != want {
		t.Fatalf("status %s, want %s", got, want)
	}
	now := newMessage("+15550000002", "now", 1)
	now.SendAt = clk.Now().Add(-30 * time.Second) // the past means now
	if _, err := s.create(now); err != nil {
		t.Fatal(err)
	}
	if got, want := now.Status, simgate.StatusQueued; got != want {
		t.Fatalf("status of a message due already %s, want %s", got, want)
	}

	got, err := db.FindMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != simgate.StatusScheduled || !got.SendAt.Equal(want) || len(got.Events) != 1 ||
		got.Events[0].Status != simgate.StatusScheduled || got.Parts[0].Status != simgate.StatusQueued {
		t.Fatalf("stored %+v", got)
	}
	if c, err := s.claim("n", time.Minute); err != nil || c == nil || c.ID != now.ID {
		t.Fatalf("claim = %+v, %v; want only the message due now", c, err)
	}
	if c, err := s.claim("n", time.Minute); err != nil || c != nil {
		t.Fatalf("claim of a scheduled message = %+v, %v", c, err)
	}
	if next, err := db.NextScheduled(ctx); err != nil || !next.Equal(want) {
		t.Fatalf("NextScheduled = %v, %v; want %v", next, err, want)
	}
	ms, _, err := db.ListMessages(ctx, simgate.MessageFilter{Status: simgate.StatusScheduled})
	if err != nil || len(ms) != 1 || ms[0].ID != m.ID || !ms[0].SendAt.Equal(want) {
		t.Fatalf("list of scheduled = %+v, %v", ms, err)
	}
	st, err := db.QueueStats(ctx, clk.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Depth[simgate.StatusScheduled][simgate.PriorityNormal], 1; got != want {
		t.Fatalf("depth of scheduled %d, want %d", got, want)
	}

	clk.Advance(time.Hour + time.Millisecond) // 1 ms early
	if n, err := s.release(); err != nil || n != 0 {
		t.Fatalf("ReleaseScheduled 1 ms early = %d, %v", n, err)
	}
	clk.Advance(time.Millisecond)
	if n, err := s.release(); err != nil || n != 1 {
		t.Fatalf("ReleaseScheduled = %d, %v; want 1", n, err)
	}
	if next, err := db.NextScheduled(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextScheduled = %v, %v; want none", next, err)
	}
	got, err = db.FindMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := got.Events[len(got.Events)-1]; got.Status != simgate.StatusQueued ||
		last.Status != simgate.StatusQueued || last.Reason != queue.ReasonScheduledTimeReached {
		t.Fatalf("released %s, events %+v", got.Status, got.Events)
	}
	if c, err := s.claim("n", time.Minute); err != nil || c == nil || c.ID != m.ID {
		t.Fatalf("claim after release = %+v, %v", c, err)
	}
}

// A scheduled message can be canceled; one whose expiry passed ends
// expired, whether the sweep (ExpireMessages) or the release finds it.
func TestMessages_ScheduledCancelExpire(t *testing.T) { onStores(t, testMessagesScheduledCancelExpire) }

func testMessagesScheduledCancelExpire(t *testing.T, s *stateDB) {
	ctx, db, clk := s.ctx, s.db, s.clk
	schedule := func(text string, sendIn, expireIn time.Duration) *simgate.Message {
		m := newMessage("+15550000001", text, 1)
		m.SendAt, m.ExpiresAt = clk.Now().Add(sendIn), clk.Now().Add(expireIn)
		if _, err := s.create(m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	canceled := schedule("canceled", time.Hour, 2*time.Hour)
	swept := schedule("swept", time.Hour, 2*time.Hour)
	released := schedule("released", 3*time.Hour, 4*time.Hour)

	if err := s.cancel(canceled.ID, "by test"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if n, err := s.expire(); err != nil || n != 1 {
		t.Fatalf("ExpireMessages = %d, %v; want 1", n, err)
	}
	clk.Advance(2 * time.Hour)
	if n, err := s.release(); err != nil || n != 0 {
		t.Fatalf("ReleaseScheduled = %d, %v; want 0 (it expired)", n, err)
	}
	for _, c := range []struct {
		m    *simgate.Message
		want simgate.MessageStatus
	}{{canceled, simgate.StatusCanceled}, {swept, simgate.StatusExpired}, {released, simgate.StatusExpired}} {
		got, err := db.FindMessage(ctx, c.m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != c.want || got.Parts[0].Status != c.want {
			t.Errorf("%s: %s %q part %s, want %s", got.Text, got.Status, got.Reason, got.Parts[0].Status, c.want)
		}
	}
	if next, err := db.NextScheduled(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextScheduled = %v, %v; want none", next, err)
	}
}

// counts returns the sent/delivered/failed counts of the rollups since
// since, as "modem@HH": "sent/delivered/failed".
func counts(t *testing.T, db interface {
	ModemHours(ctx context.Context, since time.Time) ([]simgate.ModemHour, error)
}, since time.Time) map[string]string {
	t.Helper()
	hs, err := db.ModemHours(context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, h := range hs {
		if h.Sent+h.Delivered+h.Failed > 0 {
			out[fmt.Sprintf("%s@%02d", h.ModemID, h.Hour.Hour())] = fmt.Sprintf("%d/%d/%d", h.Sent, h.Delivered, h.Failed)
		}
	}
	return out
}

// The per-hour counts follow the parts as the dispatcher and the status
// reports move them, in the hour each thing happened, for the modem it
// happened on (the rules of migration 0006).
func TestRollups_Counts(t *testing.T) { onStores(t, testRollupsCounts) }

func testRollupsCounts(t *testing.T, s *stateDB) {
	db := s.db.(interface {
		ModemHours(ctx context.Context, since time.Time) ([]simgate.ModemHour, error)
	})
	clk := s.clk // 12:00 UTC
	start := clk.Now()
	const to = "+15550000001"
	claim := func(parts int) *simgate.Message {
		t.Helper()
		m := newMessage(to, strings.Repeat("x", 10*parts), parts)
		if _, err := s.create(m); err != nil {
			t.Fatal(err)
		}
		c, err := s.claim("n1", time.Minute)
		if err != nil || c == nil || c.ID != m.ID {
			t.Fatalf("claim %+v, %v; want %s", c, err, m.ID)
		}
		return m
	}
	finish := func(m *simgate.Message, o simgate.SendOutcome) {
		t.Helper()
		if err := s.finish(m.ID, o); err != nil {
			t.Fatal(err)
		}
	}
	report := func(modem string, mr, tpst int) {
		t.Helper()
		// The network's discharge time is in the hour before: the report
		// counts when it came.
		r := &simgate.StatusReport{ModemID: modem, MR: mr, Recipient: to, TPST: tpst, DischargeTime: clk.Now().Add(-15 * time.Minute)}
		if err := s.report(r, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		if r.MessageID == "" {
			t.Fatalf("report %s/%d matched nothing", modem, mr)
		}
	}

	// 12:00: a single part sent by m0; a two-part message of which m0 sent
	// part 1 and refused part 2; a message m1 refused outright.
	a := claim(1)
	finish(a, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m0", MRs: []int{1}, SentAt: clk.Now()})
	b := claim(2)
	finish(b, simgate.SendOutcome{Status: simgate.StatusFailed, ModemID: "m0", MRs: []int{2}, SentAt: clk.Now(), Reason: "CMS 500"})
	c := claim(1)
	finish(c, simgate.SendOutcome{Status: simgate.StatusFailed, ModemID: "m1", Reason: "CMS 8"})
	// An outcome that names no modem is recorded, and counted for none.
	finish(claim(1), simgate.SendOutcome{Status: simgate.StatusSent, MRs: []int{3}, SentAt: clk.Now()})
	finish(claim(1), simgate.SendOutcome{Status: simgate.StatusFailed, Reason: "cannot open the sealed text"})
	if got, want := counts(t, db, start), map[string]string{"m0@12": "2/0/0", "m1@12": "0/0/1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("at 12:00: %v, want %v", got, want)
	}

	// 13:10: a's report says delivered, b's part 1 failed: b is failed
	// now, and its refused part 2 counts for m0 with it. A duplicate report
	// counts nothing.
	clk.Advance(70 * time.Minute)
	report("m0", 1, 0x00)
	report("m0", 1, 0x00)
	report("m0", 2, 0x41)
	if got, want := counts(t, db, start), map[string]string{"m0@12": "2/0/0", "m0@13": "0/1/2", "m1@12": "0/0/1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("at 13:10: %v, want %v", got, want)
	}

	// 14:00: m1 times out (unknown), its late answer comes at 14:30 and
	// counts as a send then; a retry on m0 then a refusal by m1 counts
	// only for m1.
	clk.Advance(50 * time.Minute)
	d := claim(1)
	finish(d, simgate.SendOutcome{Status: simgate.StatusUnknown, Ambiguous: true, ModemID: "m1", Reason: "timeout"})
	e := claim(1)
	finish(e, simgate.SendOutcome{Status: simgate.StatusQueued, ModemID: "m0", RetryAt: clk.Now(), Reason: "CMS 42"})
	clk.Advance(30 * time.Minute)
	if _, err := s.lateSubmit(&simgate.LateSubmit{ModemID: "m1", To: to, MR: 9, At: clk.Now()}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if c, err := s.claim("n1", time.Minute); err != nil || c == nil || c.ID != e.ID {
		t.Fatalf("retry claim %+v, %v", c, err)
	}
	finish(e, simgate.SendOutcome{Status: simgate.StatusFailed, ModemID: "m1", Reason: "CMS 8"})
	want := map[string]string{"m0@12": "2/0/0", "m0@13": "0/1/2", "m1@12": "0/0/1", "m1@14": "1/0/1"}
	if got := counts(t, db, start); !reflect.DeepEqual(got, want) {
		t.Fatalf("at 14:30: %v, want %v", got, want)
	}
	// A read from a later hour leaves the earlier ones out.
	if got := counts(t, db, start.Add(2*time.Hour)); !reflect.DeepEqual(got, map[string]string{"m1@14": "1/0/1"}) {
		t.Fatalf("since 14:00: %v", got)
	}
}

// Daily usage counts, per modem and UTC day, the parts Finish records as
// sent or maybe sent, creating the modem row (the IMEI's move is
// store.TestUpsertModem's).
func TestUsage(t *testing.T) { onStores(t, testUsage) }

func testUsage(t *testing.T, s *stateDB) {
	ctx, db, clk := s.ctx, s.db, s.clk
	day := clk.Now().UTC().Format("2006-01-02")
	if n, err := db.LoadUsage(ctx, "m0", day); err != nil || n != 0 {
		t.Fatalf("LoadUsage = %d, %v", n, err)
	}
	for _, o := range []simgate.SendOutcome{
		{Status: simgate.StatusSent, ModemID: "m0", MRs: []int{1, 2}},                    // 2
		{Status: simgate.StatusUnknown, ModemID: "m0", MRs: []int{3}, Ambiguous: true},   // 2: one sent, one maybe
		{Status: simgate.StatusFailed, ModemID: "m0"},                                    // 0: refused
		{Status: simgate.StatusQueued, RetryAt: clk.Now().Add(time.Minute)},              // 0: no modem
		{Status: simgate.StatusSent, ModemID: "m1", MRs: []int{4, 5}, SentAt: clk.Now()}, // another modem
	} {
		m := newMessage("+15550000001", "two parts", 2)
		if _, err := s.create(m); err != nil {
			t.Fatal(err)
		}
		if _, err := s.claim("n", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.finish(m.ID, o); err != nil {
			t.Fatal(err)
		}
	}
	for modem, want := range map[string]int{"m0": 4, "m1": 2} {
		if n, err := db.LoadUsage(ctx, modem, day); err != nil || n != want {
			t.Fatalf("LoadUsage(%s) = %d, %v; want %d", modem, n, err, want)
		}
	}
	clk.Advance(24 * time.Hour)
	if n, _ := db.LoadUsage(ctx, "m0", clk.Now().UTC().Format("2006-01-02")); n != 0 {
		t.Fatalf("next day %d", n)
	}
}

// An opt-out refuses the messages to its number (Create); that it is
// idempotent both ways is store.TestOptOuts', that a verification's SMS goes
// out all the same is TestOptOut's.
func TestCreate_OptOut(t *testing.T) { onStores(t, testCreateOptOut) }

func testCreateOptOut(t *testing.T, s *stateDB) {
	ctx, db := s.ctx, s.db
	if err := db.SetOptOut(ctx, "+15550000001", "STOP", true); err != nil {
		t.Fatal(err)
	}
	_, err := s.create(newMessage("+15550000001", "promo", 1))
	if simgate.ErrorCode(err) != simgate.CodeForbidden {
		t.Fatalf("CreateMessage to opted-out: %v", err)
	}
}
