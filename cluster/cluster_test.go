package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/cluster"
	"github.com/simgate/simgate/store/postgres"
	"github.com/simgate/simgate/store/postgres/pgtest"
	"github.com/simgate/simgate/store/storetest"
)

// modems is a node's modems as the cluster reads them: a list, and the
// names acted on. (The pool's own behaviour is tested in package modem;
// here only what the cluster passes on matters.)
type modems struct {
	list  []simgate.ModemStatus
	acted []string
}

func (m *modems) Status() []simgate.ModemStatus { return append([]simgate.ModemStatus(nil), m.list...) }
func (m *modems) Ready() int                    { return len(m.list) }
func (m *modems) Enable(name string) error      { m.acted = append(m.acted, "enable "+name); return nil }
func (m *modems) Disable(name string) error     { m.acted = append(m.acted, "disable "+name); return nil }
func (m *modems) Drain(_ context.Context, name string) error {
	m.acted = append(m.acted, "drain "+name)
	return nil
}
func (m *modems) Reset(_ context.Context, name string) error {
	m.acted = append(m.acted, "reset "+name)
	return nil
}
func (m *modems) USSD(_ context.Context, name, _, _ string, _ bool) (simgate.USSDResult, error) {
	m.acted = append(m.acted, "ussd "+name)
	return simgate.USSDResult{}, nil
}

func node(t *testing.T, dsn, id string, clk *storetest.Clock, names ...string) (*cluster.Cluster, *modems, error) {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn, postgres.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ms := &modems{}
	for _, n := range names {
		ms.list = append(ms.list, simgate.ModemStatus{ID: n, State: simgate.ModemReady, SignalBars: 4})
	}
	c, err := cluster.New(cluster.Options{Store: db, NodeID: id, Version: "test", Modems: ms,
		Interval: time.Hour, Timeout: 10 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(context.Background()); err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, ms, nil
}

// Each node lists its own modems first, then the others' as reported; a
// node that stops reporting for the timeout is gone and its modems are
// down; only a modem's own node acts on it; a modem name another live node
// uses is refused at start.
func TestNodesSeeEachOther(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	clk := storetest.NewClock()
	a, ma, err := node(t, dsn, "a", clk, "a0", "a1")
	if err != nil {
		t.Fatal(err)
	}
	b, mb, err := node(t, dsn, "b", clk, "b0")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := node(t, dsn, "c", clk, "c0", "a1"); err == nil || !strings.Contains(err.Error(), `node a drives a modem named "a1"`) {
		t.Fatalf("a second a1: %v; want a refusal naming node a", err)
	}
	// b joined after a's last read: a sees b once it reports again.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a, ma, err = node(t, dsn, "a", clk, "a0", "a1")
	if err != nil {
		t.Fatal(err)
	}

	ids := func(ms []simgate.ModemStatus) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Node+"/"+m.ID+"/"+string(m.State))
		}
		return strings.Join(s, " ")
	}
	if got, want := ids(a.Status()), "a/a0/ready a/a1/ready b/b0/ready"; got != want {
		t.Fatalf("a sees %s; want %s", got, want)
	}
	nodes := b.Nodes()
	if len(nodes) != 2 || nodes[0].ID != "b" || !nodes[0].Self || nodes[1].ID != "a" || nodes[1].Gone || len(nodes[1].Modems) != 2 {
		t.Fatalf("b's nodes %+v", nodes)
	}

	if err := b.Enable("a0"); simgate.ErrorCode(err) != simgate.CodeConflict || !strings.Contains(err.Error(), "node a") {
		t.Fatalf("b enabling a's modem: %v; want a conflict naming node a", err)
	}
	if err := b.Disable("b0"); err != nil {
		t.Fatal(err)
	}
	if err := b.Reset(context.Background(), "nosuch"); err != nil {
		t.Fatal(err) // the pool says what is wrong with a name nobody has
	}
	if got, want := strings.Join(mb.acted, ","), "disable b0,reset nosuch"; got != want {
		t.Fatalf("b's pool was asked %s; want %s", got, want)
	}
	if len(ma.acted) != 0 {
		t.Fatalf("a's pool was asked %v", ma.acted)
	}

	// a stops reporting; after the timeout b shows it gone, its modems down.
	// Meanwhile b holds a message in sending: its own leases show too.
	a.Close()
	clk.Advance(11 * time.Second)
	db, err := postgres.Open(context.Background(), dsn, postgres.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := storetest.NewMessage("+15550000001", "held by b", 1)
	if err := storetest.CreateMessage(context.Background(), db, m); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateMessages(context.Background(), func(tx simgate.MessageTx) error {
		return tx.StartAttempt(context.Background(), m.ID, "attempt 1", "b", tx.Now().Add(time.Minute))
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, _, err = node(t, dsn, "b", clk, "b0")
	if err != nil {
		t.Fatal(err)
	}
	nodes = b.Nodes()
	if len(nodes) != 2 || !nodes[1].Gone || nodes[0].Leases != 1 {
		t.Fatalf("b's nodes after a stopped %+v; want a gone, b holding one lease", nodes)
	}
	st := b.Status()
	if got, want := ids(st), "b/b0/ready a/a0/down a/a1/down"; got != want {
		t.Fatalf("b sees %s; want %s", got, want)
	}
	if !strings.HasPrefix(st[1].Reason, "node gone (a last seen ") {
		t.Fatalf("reason %q", st[1].Reason)
	}
	// A node whose modem names a gone node used may start.
	if _, _, err := node(t, dsn, "c", clk, "c0", "a1"); err != nil {
		t.Fatalf("c with a gone node's modem name: %v", err)
	}
}

// Alone, a node lists itself and writes nothing.
func TestAlone(t *testing.T) {
	ms := &modems{list: []simgate.ModemStatus{{ID: "m0", State: simgate.ModemReady}}}
	c, err := cluster.New(cluster.Options{NodeID: "solo", Modems: ms})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nodes := c.Nodes()
	if len(nodes) != 1 || nodes[0].ID != "solo" || !nodes[0].Self || len(nodes[0].Modems) != 1 || nodes[0].Modems[0].Node != "solo" {
		t.Fatalf("nodes %+v", nodes)
	}
	if st := c.Status(); len(st) != 1 || st[0].Node != "solo" {
		t.Fatalf("status %+v", st)
	}
}
