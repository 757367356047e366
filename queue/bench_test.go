package queue_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
	"github.com/simgate/simgate/queue"
)

// BenchmarkQueueIdle measures the path from Enqueue to the PDU reaching an
// idle virtual modem: one message at a time through 4 idle modems, from the
// call to Enqueue to the network's submit timestamp (Submission.At, taken
// when the modem's submit latency has passed, which is subtracted).
//
//	go test -run '^$' -bench QueueIdle -benchtime 500x ./queue/
//
// The store runs with synchronous=FULL (the default: every commit is
// fsynced) and, for comparison, NORMAL.
func BenchmarkQueueIdle(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("sync="+sync, func(b *testing.B) { benchmarkIdle(b, sync) })
	}
}

func benchmarkIdle(b *testing.B, sync string) {
	const latency = 5 * time.Millisecond
	e := newEnv(b, envConfig{modems: 4, sync: sync, sim: func(i int, c *sim.Config) { c.SubmitLatency = latency }})
	e.openQueue(queue.Options{})
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		e.enqueue(&simgate.Message{To: alice, Text: "Your code is 123456"})
		subs, err := e.net.WaitSubmissions(e.ctx, i+1)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, subs[i].At.Sub(start)-latency)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)*99/100, len(lat)-1)]), "p99-ms")
}

// BenchmarkQueueBacklog32 queues b.N messages, then opens a dispatcher with
// one worker per modem on 32 virtual modems with a fixed submit latency, and
// measures the idle gap of each modem between two submits (interval between
// its consecutive Submission.At minus the latency) and the utilisation: the
// submits made against what 32 modems could make in the same span.
//
//	go test -run '^$' -bench QueueBacklog32 -benchtime 3200x ./queue/
func BenchmarkQueueBacklog32(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		for _, latency := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond} {
			b.Run(fmt.Sprintf("sync=%s/latency=%v", sync, latency), func(b *testing.B) { benchmarkBacklog(b, 32, latency, sync) })
		}
	}
}

func benchmarkBacklog(b *testing.B, modems int, latency time.Duration, sync string) {
	e := newEnv(b, envConfig{modems: modems, sync: sync, sim: func(i int, c *sim.Config) { c.SubmitLatency = latency }})
	q := e.newQueue(queue.Options{Workers: modems})
	for i := 0; i < b.N; i++ {
		e.enqueue(&simgate.Message{To: alice, Text: "Your code is 123456"})
	}
	b.ResetTimer()
	if err := q.Open(e.ctx); err != nil {
		b.Fatal(err)
	}
	subs, err := e.net.WaitSubmissions(e.ctx, b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()

	byModem := map[string][]time.Time{}
	first, last := subs[0].At, subs[0].At
	for _, s := range subs {
		byModem[s.Modem] = append(byModem[s.Modem], s.At)
		if s.At.Before(first) {
			first = s.At
		}
		if s.At.After(last) {
			last = s.At
		}
	}
	var gaps []time.Duration
	for _, ts := range byModem {
		for i := 1; i < len(ts); i++ {
			gaps = append(gaps, ts[i].Sub(ts[i-1])-latency)
		}
	}
	if len(gaps) == 0 {
		return // b.N too small to see a gap
	}
	slices.Sort(gaps)
	// The span starts when the first submit began, one latency before its
	// timestamp.
	span := last.Sub(first) + latency
	util := float64(len(subs)) * float64(latency) / (float64(modems) * float64(span))
	b.ReportMetric(100*util, "%util")
	b.ReportMetric(float64(len(subs))/span.Seconds(), "msg/s")
	b.ReportMetric(ms(gaps[len(gaps)/2]), "gap-p50-ms")
	b.ReportMetric(ms(gaps[min(len(gaps)*99/100, len(gaps)-1)]), "gap-p99-ms")
	b.ReportMetric(float64(len(byModem)), "modems-used")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
