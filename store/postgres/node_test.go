package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/storetest"
)

// openTwo opens the same database twice, as two nodes would.
func openTwo(t *testing.T, clk *storetest.Clock) (*DB, *DB) {
	t.Helper()
	dsn := newDatabase(t)
	var dbs [2]*DB
	for i := range dbs {
		db, err := Open(context.Background(), dsn, Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs[0], dbs[1]
}

// A node's report reads back on another node, with the time it was made
// and the leases the node holds; a later report replaces it.
func TestHeartbeatAndNodes(t *testing.T) {
	ctx := context.Background()
	clk := storetest.NewClock()
	a, b := openTwo(t, clk)
	start := clk.Now().Add(-time.Minute)
	modems := []simgate.ModemStatus{{ID: "m0", Node: "a", State: simgate.ModemReady, SignalBars: 3,
		Identity: simgate.ModemIdentity{IMEI: "356938035643809"}}}
	if err := a.Heartbeat(ctx, simgate.Node{ID: "a", Version: "v1", StartedAt: start, Modems: modems}); err != nil {
		t.Fatal(err)
	}
	if err := b.Heartbeat(ctx, simgate.Node{ID: "b", Version: "v1", StartedAt: start}); err != nil {
		t.Fatal(err)
	}
	m := storetest.NewMessage("+15550000001", "hello", 1)
	if err := storetest.CreateMessage(ctx, a, m); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		return tx.StartAttempt(ctx, m.ID, "attempt 1", "a", tx.Now().Add(time.Minute))
	}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	if err := a.Heartbeat(ctx, simgate.Node{ID: "a", Version: "v2", StartedAt: start, Modems: modems}); err != nil {
		t.Fatal(err)
	}
	nodes, err := b.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 {
		t.Fatalf("nodes %+v; want a and b", nodes)
	}
	na, nb := nodes[0], nodes[1]
	if na.ID != "a" || na.Version != "v2" || !na.StartedAt.Equal(start.Truncate(time.Millisecond)) ||
		!na.LastSeen.Equal(clk.Now().UTC().Truncate(time.Millisecond)) || na.Leases != 1 ||
		len(na.Modems) != 1 || na.Modems[0].ID != "m0" || na.Modems[0].Identity.IMEI != "356938035643809" ||
		na.Modems[0].State != simgate.ModemReady {
		t.Fatalf("node a %+v", na)
	}
	if nb.ID != "b" || nb.Leases != 0 || len(nb.Modems) != 0 || !nb.LastSeen.Equal(na.LastSeen.Add(-2*time.Second)) {
		t.Fatalf("node b %+v", nb)
	}
	if !nb.Gone(clk.Now(), time.Second) || na.Gone(clk.Now(), time.Second) {
		t.Fatalf("b should be gone after 1 s without a report, a not")
	}
}

// A message queued on one node wakes the listener of another, after the
// transaction commits; one rolled back wakes no one.
func TestListenQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clk := storetest.NewClock()
	a, b := openTwo(t, clk)
	wakes := make(chan struct{}, 16)
	lctx, lcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.ListenQueue(lctx, func() { wakes <- struct{}{} })
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-wakes:
		case <-ctx.Done():
			t.Fatalf("no wake-up %s", what)
		}
	}
	wait("when the listener connects")

	errRollback := errors.New("rolled back")
	if err := a.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		m := storetest.NewMessage("+15550000001", "rolled back", 1)
		m.Status, m.Parts[0].Status = simgate.StatusQueued, simgate.StatusQueued
		if err := tx.InsertMessage(ctx, m, nil); err != nil {
			return err
		}
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	if err := storetest.CreateMessage(ctx, a, storetest.NewMessage("+15550000002", "queued", 1)); err != nil {
		t.Fatal(err)
	}
	wait("for the queued message")
	select {
	case <-wakes:
		t.Fatal("two wake-ups for one message: the rolled back one woke the listener")
	case <-time.After(200 * time.Millisecond):
	}
	lcancel()
	if err := <-done; err != nil {
		t.Fatalf("ListenQueue returned %v after its context ended; want nil", err)
	}
}

// While one node runs a duty, another node's RunExclusive of the same duty
// does not run it; a different duty runs; after the first ends, it runs.
func TestRunExclusive(t *testing.T) {
	ctx := context.Background()
	clk := storetest.NewClock()
	a, b := openTwo(t, clk)
	ran, err := a.RunExclusive(ctx, "queue sweep", func(ctx context.Context) error {
		if ran, err := b.RunExclusive(ctx, "queue sweep", func(context.Context) error {
			t.Error("b ran the duty that a holds")
			return nil
		}); err != nil || ran {
			t.Errorf("b: ran %v, %v; want false", ran, err)
		}
		if ran, err := b.RunExclusive(ctx, "verification sweep", func(context.Context) error { return nil }); err != nil || !ran {
			t.Errorf("b, another duty: ran %v, %v; want true", ran, err)
		}
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("a: ran %v, %v", ran, err)
	}
	errDuty := errors.New("duty failed")
	if ran, err := b.RunExclusive(ctx, "queue sweep", func(context.Context) error { return errDuty }); !ran || !errors.Is(err, errDuty) {
		t.Fatalf("b after a: ran %v, %v; want true and the duty's error", ran, err)
	}
	// The failed duty let go of the lock too.
	if ran, err := a.RunExclusive(ctx, "queue sweep", func(context.Context) error { return nil }); !ran || err != nil {
		t.Fatalf("a after b's failure: ran %v, %v", ran, err)
	}
}
