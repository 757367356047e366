package queue_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
)

// A dispatcher's sweep renews the leases of its submits in flight, so that
// another node's sweep leaves a long submit alone past the first lease; once
// the holder stops renewing, the other node's sweep finds the lease run out
// and makes the message unknown.
func TestLeaseRenewedWhileSending(t *testing.T) {
	e := newDBEnv(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s := &fakeSender{fn: func(simgate.SendRequest) (simgate.Receipt, error) {
		started <- struct{}{}
		<-release
		return simgate.Receipt{ModemID: "m0", MRs: []int{7}, SentAt: time.Now()}, nil
	}}
	const lease = 30 * time.Second
	a := e.openQueue(queue.Options{Sender: s, Workers: 1, Lease: lease, NodeID: "a"})
	// Node b shares the store; only its sweep runs.
	b, err := queue.New(queue.Options{Store: e.db, Sender: s, Now: e.clk.Now, Lease: lease, NodeID: "b", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	m := e.enqueue(&simgate.Message{To: alice, Text: "a long submit"})
	select {
	case <-started:
	case <-e.ctx.Done():
		t.Fatal("no submit")
	}
	defer close(release)

	sweep := func(d *queue.Dispatcher) {
		t.Helper()
		if err := d.RunOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	status := func() simgate.MessageStatus {
		t.Helper()
		got, err := a.Message(e.ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	e.clk.Advance(20 * time.Second)
	sweep(a) // renews to +50 s
	e.clk.Advance(20 * time.Second)
	sweep(b) // +40 s: past the first lease, within the renewed one
	if got := status(); got != simgate.StatusSending {
		t.Fatalf("after the first lease, with renewal: %s; want sending", got)
	}
	e.clk.Advance(11 * time.Second)
	sweep(b) // +51 s: a did not renew again
	if got := status(); got != simgate.StatusUnknown {
		t.Fatalf("after the renewed lease ran out: %s; want unknown", got)
	}
}

// With Ready set, a worker claims nothing while Ready says no modem can
// take a message, and claims once ModemReady says one can.
func TestReadyGatesClaims(t *testing.T) {
	e := newDBEnv(t)
	var ready atomic.Bool
	s := &fakeSender{fn: func(simgate.SendRequest) (simgate.Receipt, error) {
		return simgate.Receipt{ModemID: "m0", MRs: []int{1}, SentAt: time.Now()}, nil
	}}
	q := e.openQueue(queue.Options{Sender: s, Workers: 2, Ready: ready.Load})
	m := e.enqueue(&simgate.Message{To: alice, Text: "wait for a modem"})
	if err := q.RunOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := s.count(); n != 0 {
		t.Fatalf("%d sends while no modem was ready", n)
	}
	if got, _ := q.Message(e.ctx, m.ID); got.Status != simgate.StatusQueued || got.Attempts != 0 {
		t.Fatalf("message %s after %d attempts; want queued, never claimed", got.Status, got.Attempts)
	}
	ready.Store(true)
	if err := q.ModemReady(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(m.ID, simgate.StatusSent)
}

// On a shared database (Ready set), a send that finds no modem here pauses
// only this node: the message is given back due at once, for the other
// nodes' modems, and this node claims nothing until the pause passes or
// ModemReady.
func TestNoModemPausesOnlyThisNode(t *testing.T) {
	e := newDBEnv(t)
	s := &fakeSender{fn: noModem}
	q := e.openQueue(queue.Options{Sender: s, Workers: 1, Ready: func() bool { return true },
		NoModemBackoff: time.Hour, NoModemMaxBackoff: time.Hour})
	m := e.enqueue(&simgate.Message{To: alice, Text: "no modem here"})
	waitFor(t, "the send that finds no modem", func() bool { return s.count() == 1 }, func() string { return "" })
	waitFor(t, "the message given back", func() bool {
		got, err := q.Message(e.ctx, m.ID)
		return err == nil && got.Status == simgate.StatusQueued
	}, func() string { return "" })
	n, err := e.db.CountDue(e.ctx)
	if err != nil || n != 1 {
		t.Fatalf("due messages: %d, %v; want 1: the others may take it at once", n, err)
	}
	if err := q.RunOnce(e.ctx); err != nil { // wakes the worker: still paused
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if c := s.count(); c != 1 {
		t.Fatalf("%d sends during the pause; want 1", c)
	}
	s.set(func(simgate.SendRequest) (simgate.Receipt, error) {
		return simgate.Receipt{ModemID: "m0", MRs: []int{3}, SentAt: time.Now()}, nil
	})
	if err := q.ModemReady(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(m.ID, simgate.StatusSent)
}

// A node paused after a send that found no modem claims again when the
// pause ends, without a sweep or ModemReady to wake it.
func TestNoModemPauseEnds(t *testing.T) {
	e := newDBEnv(t)
	s := &fakeSender{fn: noModem}
	e.openQueue(queue.Options{Sender: s, Workers: 1, Ready: func() bool { return true },
		NoModemBackoff: 200 * time.Millisecond, NoModemMaxBackoff: 200 * time.Millisecond})
	m := e.enqueue(&simgate.Message{To: alice, Text: "no modem yet"})
	waitFor(t, "the send that finds no modem", func() bool { return s.count() >= 1 }, func() string { return "" })
	s.set(func(simgate.SendRequest) (simgate.Receipt, error) {
		return simgate.Receipt{ModemID: "m0", MRs: []int{4}, SentAt: time.Now()}, nil
	})
	got := e.waitStatus(m.ID, simgate.StatusSent)
	if got.Attempts != 1 {
		t.Fatalf("attempts %d; want 1 (the send without a modem was no attempt)", got.Attempts)
	}
}
