package console_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/console"
	"github.com/simgate/simgate/store"
)

type fakeModems []simgate.ModemStatus

func (f fakeModems) Status() []simgate.ModemStatus { return f }

type fakeQueue simgate.QueueStats

func (f fakeQueue) Stats(context.Context) (simgate.QueueStats, error) {
	return simgate.QueueStats(f), nil
}

// A sample holds the signal of the modems that know it and are up, and the
// messages waiting to be sent; the loop samples at once and stops on Close.
func TestSampler(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "simgate.db"), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	modems := fakeModems{
		{ID: "m0", State: simgate.ModemReady, SignalDBm: -75},
		{ID: "m1", State: simgate.ModemDown, SignalDBm: -99},
		{ID: "m2", State: simgate.ModemStarting},
	}
	queue := fakeQueue{OldestQueuedAge: 90 * time.Second, Depth: map[simgate.MessageStatus]map[simgate.Priority]int{
		simgate.StatusAccepted: {simgate.PriorityNormal: 1},
		simgate.StatusQueued:   {simgate.PriorityNormal: 2, simgate.PriorityVerification: 3},
		simgate.StatusSending:  {simgate.PriorityHigh: 1},
		simgate.StatusSent:     {simgate.PriorityNormal: 40},
	}}
	s, err := console.NewSampler(console.SamplerOptions{Modems: modems, Queue: queue, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	hour := now.Truncate(time.Hour)
	hs, err := db.ModemHours(ctx, hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := []simgate.ModemHour{{ModemID: "m0", Hour: hour, SignalSamples: 1, SignalDBm: -75}}; !reflect.DeepEqual(hs, want) {
		t.Fatalf("modem hours %+v, want %+v", hs, want)
	}
	qs, err := db.QueueHours(ctx, hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := []simgate.QueueHour{{Hour: hour, Samples: 1, MaxDepth: 7, MaxOldestAge: 90 * time.Second}}; !reflect.DeepEqual(qs, want) {
		t.Fatalf("queue hours %+v, want %+v", qs, want)
	}

	loop, err := console.NewSampler(console.SamplerOptions{Modems: modems, Queue: queue, Store: db, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := loop.Open(); err != nil {
		t.Fatal(err)
	}
	for qs[0].Samples < 2 {
		if ctx.Err() != nil {
			t.Fatal("the loop took no sample at start")
		}
		time.Sleep(5 * time.Millisecond)
		if qs, err = db.QueueHours(ctx, hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := loop.Close(); err != nil {
		t.Fatal(err)
	}
}
