package store_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

// clock is a settable clock for the store.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openWithClock(t *testing.T) (*store.DB, *clock, string) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "simgate.db")
	return MustOpenDBAt(t, path, store.Options{Now: c.Now}), c, path
}

func newMessage(to, text string, parts int) *simgate.Message {
	return &simgate.Message{To: to, Text: text, Parts: make([]simgate.Part, parts)}
}

// Claims go by priority, then due time, then age; a retry is not claimed
// before it is due; a claim commits sending with a lease.
func TestMessages_ClaimOrder(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	low := newMessage("+15550000001", "low", 1)
	low.Priority = simgate.PriorityLow
	normal := newMessage("+15550000002", "normal", 1)
	high := newMessage("+15550000003", "high", 1)
	high.Priority = simgate.PriorityHigh
	for _, m := range []*simgate.Message{low, normal, high} {
		if _, err := db.CreateMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Millisecond)
	}
	m, err := db.ClaimMessage(ctx, "n1", time.Minute)
	if err != nil || m == nil || m.ID != high.ID || m.Status != simgate.StatusSending || m.Attempts != 1 {
		t.Fatalf("first claim %+v, %v; want %s", m, err, high.ID)
	}
	if err := db.FinishSend(ctx, m.ID, simgate.SendOutcome{Status: simgate.StatusQueued, RetryAt: clk.Now().Add(time.Minute), Reason: "retry"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{normal.ID, low.ID, ""} {
		m, err := db.ClaimMessage(ctx, "n1", time.Minute)
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
	m, err = db.ClaimMessage(ctx, "n1", time.Minute)
	if err != nil || m == nil || m.ID != high.ID || m.Attempts != 2 {
		t.Fatalf("retry claim %+v, %v", m, err)
	}
}

// A multipart outcome: parts with MRs are sent, an ambiguous one unknown,
// the rest failed; the message stays sent until its reports came, then
// folds.
func TestMessages_AmbiguousMultipart(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	m := newMessage("+15550000001", strings.Repeat("x", 400), 3)
	if _, err := db.CreateMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimMessage(ctx, "n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishSend(ctx, m.ID, simgate.SendOutcome{Status: simgate.StatusFailed, Ambiguous: true, ModemID: "m0",
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
	if err := db.RecordReport(ctx, r, time.Hour); err != nil {
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
func TestReports_Matching(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	send := func(to string, mr int) *simgate.Message {
		m := newMessage(to, "x", 1)
		if _, err := db.CreateMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		if c, err := db.ClaimMessage(ctx, "n1", time.Minute); err != nil || c.ID != m.ID {
			t.Fatalf("claim %v %v", c, err)
		}
		if err := db.FinishSend(ctx, m.ID, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m0", MRs: []int{mr}, SentAt: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	old := send("+15550000001", 5)
	clk.Advance(10 * time.Minute)
	recent := send("+15550000001", 5)
	clk.Advance(time.Second)

	r := &simgate.StatusReport{ModemID: "m0", MR: 5, Recipient: "+15550000001", TPST: 0x21}
	if err := db.RecordReport(ctx, r, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r.MessageID != recent.ID {
		t.Fatalf("temporary report matched %q, want the newest %q", r.MessageID, recent.ID)
	}
	r = &simgate.StatusReport{ModemID: "m0", MR: 5, Recipient: "+15550000001", TPST: 0}
	if err := db.RecordReport(ctx, r, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.FindMessage(ctx, recent.ID); got.Status != simgate.StatusDelivered {
		t.Fatalf("recent %s", got.Status)
	}
	// The old part still waits; the window is 5 min, it was sent 10 min ago.
	r = &simgate.StatusReport{ModemID: "m0", MR: 5, Recipient: "+15550000001", TPST: 0}
	if err := db.RecordReport(ctx, r, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if r.MessageID == old.ID {
		t.Fatal("report matched a part outside the window")
	}
	if got, _ := db.FindMessage(ctx, old.ID); got.Status != simgate.StatusSent {
		t.Fatalf("old %s, want sent", got.Status)
	}
	// Within the window it is the old part's: the recent one is final.
	if err := db.RecordReport(ctx, &simgate.StatusReport{ModemID: "m0", MR: 5, Recipient: "+15550000001", TPST: 0x41}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.FindMessage(ctx, old.ID); got.Status != simgate.StatusFailed {
		t.Fatalf("old %s, want failed", got.Status)
	}

	// Early: the report is recorded before the submit.
	early := &simgate.StatusReport{ModemID: "m1", MR: 9, Recipient: "+15550000002", TPST: 0}
	if err := db.RecordReport(ctx, early, time.Hour); err != nil || early.MessageID != "" {
		t.Fatalf("early report: %v, matched %q", err, early.MessageID)
	}
	m := newMessage("+15550000002", "fast", 1)
	if _, err := db.CreateMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimMessage(ctx, "n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishSend(ctx, m.ID, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m1", MRs: []int{9}, SentAt: clk.Now()}); err != nil {
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

// Pages are newest first and the cursor continues where the last page ended.
func TestMessages_List(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	var ids []string
	for i := 0; i < 5; i++ {
		to := "+15550000001"
		if i%2 == 1 {
			to = "+15550000002"
		}
		m := newMessage(to, "x", 1)
		if _, err := db.CreateMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		if i < 3 {
			clk.Advance(time.Second) // the last two share a millisecond
		}
	}
	var got []string
	cursor := ""
	for {
		ms, next, err := db.ListMessages(ctx, simgate.MessageFilter{Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			got = append(got, m.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 5 || got[4] != ids[0] {
		t.Fatalf("paged %v, want all 5 newest first (oldest %s)", got, ids[0])
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
	}
	ms, _, err := db.ListMessages(ctx, simgate.MessageFilter{To: "+15550000002"})
	if err != nil || len(ms) != 2 {
		t.Fatalf("by recipient: %d, %v", len(ms), err)
	}
	if _, _, err := db.ListMessages(ctx, simgate.MessageFilter{Cursor: "nope!"}); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("bad cursor: %v", err)
	}
}

// Daily usage counts, per modem and UTC day, the parts FinishSend records as
// sent or maybe sent, creating the modem row; UpsertModem moves an IMEI to a
// new name.
func TestUsage(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
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
		if _, err := db.CreateMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ClaimMessage(ctx, "n", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishSend(ctx, m.ID, o); err != nil {
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
	id := simgate.ModemIdentity{IMEI: "350000000000006", ICCID: "8901"}
	if err := db.UpsertModem(ctx, "m0", id); err != nil {
		t.Fatal(err)
	}
	if err := db.UpsertModem(ctx, "renamed", id); err != nil {
		t.Fatalf("same IMEI under a new name: %v", err)
	}
}

// Opt-outs are idempotent both ways, and block all but verification
// messages.
func TestOptOuts(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, _, _ := openWithClock(t)
	for i := 0; i < 2; i++ {
		if err := db.SetOptOut(ctx, "+15550000001", "STOP", true); err != nil {
			t.Fatal(err)
		}
	}
	if k, ok, err := db.OptedOut(ctx, "+15550000001"); err != nil || !ok || k != "STOP" {
		t.Fatalf("OptedOut = %q %v %v", k, ok, err)
	}
	_, err := db.CreateMessage(ctx, newMessage("+15550000001", "promo", 1), nil)
	if simgate.ErrorCode(err) != simgate.CodeForbidden {
		t.Fatalf("CreateMessage to opted-out: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := db.SetOptOut(ctx, "+15550000001", "START", false); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := db.OptedOut(ctx, "+15550000001"); ok {
		t.Fatal("still opted out")
	}
}

// A late +CMGS answer for the ambiguous part of a long message gives that
// part its MR, submitted when the answer came; the message refolds by the
// usual rules: sent while reports are awaited, and unknown at the end, since
// the part after the ambiguous one never went out. Its report matches within
// the window counted from the late submit, not from the first parts'.
func TestMessages_LateSubmitMultipart(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	const to = "+15550000001"
	m := newMessage(to, strings.Repeat("x", 400), 3)
	if _, err := db.CreateMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimMessage(ctx, "n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishSend(ctx, m.ID, simgate.SendOutcome{Status: simgate.StatusUnknown, Ambiguous: true, ModemID: "m0",
		MRs: []int{7}, SentAt: clk.Now(), Reason: "timeout"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Minute)
	at := clk.Now()
	id, err := db.RecordLateSubmit(ctx, &simgate.LateSubmit{ModemID: "m0", To: to, Part: 1, MR: 8, At: at}, time.Hour)
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
		if err := db.RecordReport(ctx, r, time.Hour); err != nil {
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
