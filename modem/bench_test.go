package modem

import (
	"github.com/simgate/simgate"

	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/sim"
)

// BenchmarkPool64 sends b.N messages through a pool of 64 virtual modems with
// a fixed 20 ms submit latency, from 128 concurrent senders, and reports the
// achieved rate against the ceiling N/latency, and the idle gap a modem
// spends between two submits (from the virtual network's own timestamps:
// interval between consecutive submits of one modem minus the latency).
//
//	go test -run '^$' -bench Pool -benchtime 20000x ./modem/
//
// Pool1 and Pool16 are the same with 1 and 16 modems, for comparison.
func BenchmarkPool64(b *testing.B) { benchmarkPool(b, 64) }

// BenchmarkPool16 is BenchmarkPool64 with 16 modems.
func BenchmarkPool16(b *testing.B) { benchmarkPool(b, 16) }

// BenchmarkPool1 is BenchmarkPool64 with 1 modem.
func BenchmarkPool1(b *testing.B) { benchmarkPool(b, 1) }

func benchmarkPool(b *testing.B, modems int) {
	const latency = 20 * time.Millisecond
	senders := 2 * modems
	cfgs := make([]sim.Config, modems)
	for i := range cfgs {
		cfgs[i].SubmitLatency = latency
	}
	n, mods, dir := startSims(b, cfgs...)
	opts := testOptions(b, dir, SubscriberFunc(func(ctx context.Context, ev Event) error { return nil }))
	p := startPool(b, mods, dir, PoolOptions{Options: opts}, nil)
	ctx := testCtx(b)

	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := p.Send(ctx, simgate.SendRequest{To: "+15557654321", Text: "Your code is 123456"}); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d sends failed", f)
	}
	rate := float64(b.N) / elapsed.Seconds()
	ceiling := float64(modems) / latency.Seconds()
	b.ReportMetric(rate, "msg/s")
	b.ReportMetric(100*rate/ceiling, "%ceiling")

	byModem := map[string][]time.Time{}
	for _, s := range n.Submissions() {
		byModem[s.Modem] = append(byModem[s.Modem], s.At)
	}
	var gaps []time.Duration
	for _, ts := range byModem {
		for i := 1; i < len(ts); i++ {
			gaps = append(gaps, ts[i].Sub(ts[i-1])-latency)
		}
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		q := func(f float64) time.Duration { return gaps[int(f*float64(len(gaps)-1))] }
		b.ReportMetric(float64(q(0.5).Microseconds())/1000, "gap-p50-ms")
		b.ReportMetric(float64(q(0.99).Microseconds())/1000, "gap-p99-ms")
		if testing.Verbose() {
			fmt.Printf("modems=%d latency=%s senders=%d sent=%d in %s: %.0f msg/s of %.0f ceiling (%.1f%%); idle gap p50=%s p99=%s max=%s\n",
				modems, latency, senders, b.N, elapsed.Round(time.Millisecond), rate, ceiling, 100*rate/ceiling, q(0.5), q(0.99), gaps[len(gaps)-1])
		}
	}
}
