package queue_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
	"github.com/simgate/simgate/queue"
)

// BenchmarkQueueIdle measures the path from Enqueue to the PDU reaching an
// idle virtual modem: one message at a time through 4 idle modems, from the
// call to Enqueue to the modem having the whole PDU (Submission.Received).
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
		lat = append(lat, subs[i].Received.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)*99/100, len(lat)-1)]), "p99-ms")
}

// BenchmarkQueueBacklog32 queues b.N messages, then opens a dispatcher with
// one worker per modem on 32 virtual modems with a submit latency, and
// measures the idle gap of each modem between two submits (from the network
// taking one, Submission.At, to the modem having the next PDU,
// Submission.Received) and the utilisation: the time the modems spent
// submitting against 32 times the span. The gap's 99th percentile is also
// split into its parts (reportGapParts): answer, dispatcher, submit.
//
//	go test -run '^$' -bench QueueBacklog32 -benchtime 3200x ./queue/
//
// With a fixed latency (jitter=0) workers that a commit released together
// finish together, queue together for the next commit, and stay in step for
// the whole run: the worst case. Real submits take 2-15 s and vary; jitter=20%
// adds up to a fifth of the latency to each submit, at random.
func BenchmarkQueueBacklog32(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		for _, latency := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond} {
			for _, jitter := range []int{0, 20} {
				b.Run(fmt.Sprintf("sync=%s/latency=%v/jitter=%d%%", sync, latency, jitter), func(b *testing.B) {
					benchmarkBacklog(b, 32, latency, latency*time.Duration(jitter)/100, sync)
				})
			}
		}
	}
}

func benchmarkBacklog(b *testing.B, modems int, latency, jitter time.Duration, sync string) {
	e := newEnv(b, envConfig{modems: modems, sync: sync, sim: func(i int, c *sim.Config) { c.SubmitLatency = latency }})
	for _, m := range e.mods {
		m.SetFaults(sim.Faults{SubmitJitter: jitter})
	}
	ts := &timedSender{Sender: e.pool}
	q := e.newQueue(queue.Options{Workers: modems, Sender: ts})
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
	reportGapParts(b, e, subs, ts.calls())

	byModem := map[string][]sim.Submission{}
	first, last := subs[0].Received, subs[0].At
	var busy time.Duration
	for _, s := range subs {
		byModem[s.Modem] = append(byModem[s.Modem], s)
		busy += s.At.Sub(s.Received)
		if s.Received.Before(first) {
			first = s.Received
		}
		if s.At.After(last) {
			last = s.At
		}
	}
	var gaps, steady []time.Duration
	for _, ss := range byModem {
		for i := 1; i < len(ss); i++ {
			gaps = append(gaps, ss[i].Received.Sub(ss[i-1].At))
			if i > 1 {
				steady = append(steady, ss[i].Received.Sub(ss[i-1].At))
			}
		}
	}
	if len(steady) == 0 {
		return // b.N too small to see a gap
	}
	slices.Sort(gaps)
	slices.Sort(steady)
	span := last.Sub(first)
	b.ReportMetric(100*float64(busy)/(float64(modems)*float64(span)), "%util")
	b.ReportMetric(float64(len(subs))/span.Seconds(), "msg/s")
	b.ReportMetric(ms(gaps[len(gaps)/2]), "gap-p50-ms")
	b.ReportMetric(ms(gaps[min(len(gaps)*99/100, len(gaps)-1)]), "gap-p99-ms")
	// Without each modem's first gap: the one after the first submit, which
	// all 32 workers started at once.
	b.ReportMetric(ms(steady[min(len(steady)*99/100, len(steady)-1)]), "later-gap-p99-ms")
	b.ReportMetric(float64(len(byModem)), "modems-used")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// timedSender records when each Send was called and returned, and on which
// modem.
type timedSender struct {
	queue.Sender
	mu  sync.Mutex
	log []sendCall
}

type sendCall struct {
	modem      string // the pool's name
	start, end time.Time
}

func (s *timedSender) Send(ctx context.Context, req simgate.SendRequest) (simgate.Receipt, error) {
	start := time.Now()
	rc, err := s.Sender.Send(ctx, req)
	end := time.Now()
	s.mu.Lock()
	s.log = append(s.log, sendCall{rc.ModemID, start, end})
	s.mu.Unlock()
	return rc, err
}

func (s *timedSender) calls() []sendCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// reportGapParts splits each idle gap of a modem (from the network taking
// one PDU to the modem having the next) into three parts and reports their
// 99th percentiles: the answer (the modem's +CMGS answer reaching the
// dispatcher: At to Send returning), the dispatcher (recording the outcome
// and claiming the next message, one commit: Send returning to the next Send
// on that modem) and the next submit (that Send to the modem having the PDU:
// AT+CMGS, its prompt, the PDU).
func reportGapParts(b *testing.B, e *env, subs []sim.Submission, calls []sendCall) {
	name := map[string]string{} // the sim's modem name to the pool's
	for i, m := range e.mods {
		name[m.Config().Name] = fmt.Sprintf("m%d", i)
	}
	byModem := map[string][]sendCall{}
	for _, c := range calls {
		byModem[c.modem] = append(byModem[c.modem], c)
	}
	subsBy := map[string][]sim.Submission{}
	for _, s := range subs {
		subsBy[name[s.Modem]] = append(subsBy[name[s.Modem]], s)
	}
	var answer, dispatcher, submit []time.Duration
	for m, ss := range subsBy {
		cs := byModem[m]
		slices.SortFunc(cs, func(a, b sendCall) int { return a.start.Compare(b.start) })
		// The call that made each submission: it started before the PDU
		// arrived and returned after the network took it.
		made := make([]*sendCall, len(ss))
		j := 0
		for i, s := range ss {
			for j < len(cs) && cs[j].end.Before(s.At) {
				j++
			}
			if j < len(cs) && !cs[j].start.After(s.Received) {
				made[i] = &cs[j]
			}
		}
		for i := 1; i < len(ss); i++ {
			p, n := made[i-1], made[i]
			if p == nil || n == nil {
				continue
			}
			answer = append(answer, p.end.Sub(ss[i-1].At))
			dispatcher = append(dispatcher, n.start.Sub(p.end))
			submit = append(submit, ss[i].Received.Sub(n.start))
		}
	}
	if len(answer) == 0 {
		return
	}
	for _, part := range []struct {
		name string
		d    []time.Duration
	}{{"answer", answer}, {"dispatcher", dispatcher}, {"submit", submit}} {
		slices.Sort(part.d)
		b.ReportMetric(ms(part.d[min(len(part.d)*99/100, len(part.d)-1)]), part.name+"-p99-ms")
	}
}
