package store_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

// counts returns the sent/delivered/failed counts of the rollups since
// since, as "modem@HH": "sent/delivered/failed".
func counts(t *testing.T, db *store.DB, since time.Time) map[string]string {
	t.Helper()
	hs, err := db.ModemHours(testContext(t, time.Minute), since)
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
func TestRollups_Counts(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t) // 12:00 UTC
	start := clk.Now()
	const to = "+15550000001"
	claim := func(parts int) *simgate.Message {
		t.Helper()
		m := newMessage(to, strings.Repeat("x", 10*parts), parts)
		if _, err := db.CreateMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		c, err := db.ClaimMessage(ctx, "n1", time.Minute)
		if err != nil || c == nil || c.ID != m.ID {
			t.Fatalf("claim %+v, %v; want %s", c, err, m.ID)
		}
		return m
	}
	finish := func(m *simgate.Message, o simgate.SendOutcome) {
		t.Helper()
		if err := db.FinishSend(ctx, m.ID, o); err != nil {
			t.Fatal(err)
		}
	}
	report := func(modem string, mr, tpst int) {
		t.Helper()
		// The network's discharge time is in the hour before: the report
		// counts when it came.
		r := &simgate.StatusReport{ModemID: modem, MR: mr, Recipient: to, TPST: tpst, DischargeTime: clk.Now().Add(-15 * time.Minute)}
		if err := db.RecordReport(ctx, r, 2*time.Hour); err != nil {
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
	if _, err := db.RecordLateSubmit(ctx, &simgate.LateSubmit{ModemID: "m1", To: to, MR: 9, At: clk.Now()}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if c, err := db.ClaimMessage(ctx, "n1", time.Minute); err != nil || c == nil || c.ID != e.ID {
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

// Samples go into the current hour: the signal as an average per modem, the
// queue as its peaks.
func TestRollups_Samples(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t) // 12:00 UTC
	start := clk.Now()
	for _, s := range []simgate.Sample{
		{Signal: map[string]int{"m0": -80, "m1": -101}, QueueDepth: 3, OldestQueuedAge: 2 * time.Second},
		{Signal: map[string]int{"m0": -71}, QueueDepth: 9, OldestQueuedAge: time.Second},
		{Signal: map[string]int{"m0": -72}},
	} {
		if err := db.RecordSample(ctx, s); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	clk.Advance(time.Hour)
	if err := db.RecordSample(ctx, simgate.Sample{Signal: map[string]int{"m0": -90}, QueueDepth: 1}); err != nil {
		t.Fatal(err)
	}

	hs, err := db.ModemHours(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	h12, h13 := start, start.Add(time.Hour)
	wantModems := []simgate.ModemHour{
		{ModemID: "m0", Hour: h12, SignalSamples: 3, SignalDBm: -74.33333333333333},
		{ModemID: "m1", Hour: h12, SignalSamples: 1, SignalDBm: -101},
		{ModemID: "m0", Hour: h13, SignalSamples: 1, SignalDBm: -90},
	}
	if !reflect.DeepEqual(hs, wantModems) {
		t.Fatalf("modem hours\n got %+v\nwant %+v", hs, wantModems)
	}
	qs, err := db.QueueHours(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	wantQueue := []simgate.QueueHour{
		{Hour: h12, Samples: 3, MaxDepth: 9, MaxOldestAge: 2 * time.Second},
		{Hour: h13, Samples: 1, MaxDepth: 1},
	}
	if !reflect.DeepEqual(qs, wantQueue) {
		t.Fatalf("queue hours\n got %+v\nwant %+v", qs, wantQueue)
	}
}

// A sample prunes the rollups and balances of hours that began more than
// 30 days before the current one.
func TestRollups_Prune(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t) // 2026-03-01 12:00 UTC
	start := clk.Now().Add(-time.Hour)
	amount := 5.0
	sample := func() {
		t.Helper()
		if err := db.RecordSample(ctx, simgate.Sample{Signal: map[string]int{"m0": -80}, QueueDepth: 1}); err != nil {
			t.Fatal(err)
		}
	}
	sample() // 12:00
	if err := db.RecordBalance(ctx, "m0", time.Time{}, &amount, "5.00 EUR"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	sample() // 13:00

	hours := func() (modem, queue, balances int) {
		t.Helper()
		hs, err := db.ModemHours(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		qs, err := db.QueueHours(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := db.Balances(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		return len(hs), len(qs), len(bs)
	}
	// 30 days after 12:00, to the minute before 13:00: 12:00 began exactly
	// RollupRetention before the current hour and is kept.
	clk.Advance(store.RollupRetention - time.Minute)
	sample()
	if m, q, b := hours(); m != 3 || q != 3 || b != 1 {
		t.Fatalf("after 30 days: %d modem hours, %d queue hours, %d balances; want 3, 3, 1", m, q, b)
	}
	// In the next hour 12:00 goes, balance and all, and 13:00 stays.
	clk.Advance(time.Minute)
	sample()
	if m, q, b := hours(); m != 3 || q != 3 || b != 0 {
		t.Fatalf("after 30 days and 1 h: %d modem hours, %d queue hours, %d balances; want 3, 3, 0", m, q, b)
	}
	hs, _ := db.ModemHours(ctx, start)
	if got, want := hs[0].Hour, start.Add(2*time.Hour); !got.Equal(want) {
		t.Fatalf("oldest hour kept %s, want %s", got, want)
	}
}

// Balances keep the text, the amount when it was parsed, and say which.
func TestBalances(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	start := clk.Now()
	amount := 12.5
	long := strings.Repeat("é", 300) // 600 bytes
	for _, c := range []struct {
		modem  string
		amount *float64
		raw    string
	}{
		{"m0", &amount, "Your balance is 12.50 EUR"},
		{"m0", nil, "Service unavailable"},
		{"m1", nil, long},
	} {
		if err := db.RecordBalance(ctx, c.modem, time.Time{}, c.amount, c.raw); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	if err := db.RecordBalance(ctx, "m0", start.Add(-time.Hour), &amount, "old"); err != nil {
		t.Fatal(err)
	}
	bs, err := db.Balances(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(bs), 3; got != want {
		t.Fatalf("%d balances, want %d: %+v", got, want, bs)
	}
	if b := bs[0]; b.ModemID != "m0" || !b.At.Equal(start) || b.Amount == nil || *b.Amount != 12.5 || b.Raw != "Your balance is 12.50 EUR" || b.Currency != "" {
		t.Fatalf("first reading %+v", b)
	}
	if b := bs[1]; b.Amount != nil || b.Raw != "Service unavailable" {
		t.Fatalf("unparsed reading %+v", b)
	}
	if got, want := bs[2].Raw, strings.Repeat("é", 256); got != want {
		t.Fatalf("long text kept as %d bytes, want 512 of whole characters", len(got))
	}

	for _, c := range []struct {
		modem  string
		amount float64
	}{{"", 1}, {"m0", math.NaN()}} {
		err := db.RecordBalance(ctx, c.modem, time.Time{}, &c.amount, "x")
		if simgate.ErrorCode(err) != simgate.CodeInvalid {
			t.Fatalf("RecordBalance(%q, %v) = %v, want CodeInvalid", c.modem, c.amount, err)
		}
	}
	if err := db.RecordBalance(ctx, "m0", time.Time{}, nil, ""); err != nil {
		t.Fatalf("an empty unparsed reading: %v", err)
	}
}
