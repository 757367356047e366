package storetest

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// RollupStore is the contract of the console's history: the hourly rollups
// and the SIMs' balance readings (console.History, console.SampleStore).
type RollupStore interface {
	RecordSample(ctx context.Context, s simgate.Sample) error
	ModemHours(ctx context.Context, since time.Time) ([]simgate.ModemHour, error)
	QueueHours(ctx context.Context, since time.Time) ([]simgate.QueueHour, error)
	RecordBalance(ctx context.Context, modemID string, at time.Time, amount *float64, raw string) error
	Balances(ctx context.Context, since time.Time) ([]simgate.BalanceReading, error)
}

// RollupSamples checks that samples go into the current hour: the signal
// as an average per modem, the queue as its peaks.
func RollupSamples(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock() // 12:00 UTC
	db := as[RollupStore](t, open(t, "rollups", clk.Now))
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

// RollupPrune checks that a sample prunes the rollups and balances of
// hours that began more than 30 days before the current one.
func RollupPrune(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock() // 2026-03-01 12:00 UTC
	db := as[RollupStore](t, open(t, "prune", clk.Now))
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
	clk.Advance(simgate.RollupRetention - time.Minute)
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

// Balances checks that balance readings keep the text, the amount when it
// was parsed, and say which.
func Balances(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[RollupStore](t, open(t, "balances", clk.Now))
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
