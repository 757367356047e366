// Package cluster is what one simgate serve process knows of the others
// that share its database (PostgreSQL): it reports this node every
// Interval (the heartbeat), reads the others' reports to show their modems
// beside its own, down once their node is gone, and wakes this node's
// dispatcher when any node queues a message.
//
// Each node drives only its own modems. The queue, the verifications, the
// keys and the limits are shared through the database, not through this
// package. Alone (SQLite), a node still has a Cluster of one: it writes
// nothing, and lists itself.
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/simgate/simgate"
)

// Defaults of Options fields left zero.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = 10 * time.Second
)

// Store is the database the nodes share. *postgres.DB satisfies it.
type Store interface {
	// Heartbeat records n as the report of node n.ID, made now.
	Heartbeat(ctx context.Context, n simgate.Node) error
	// Nodes returns the last report of every node, with its leases.
	Nodes(ctx context.Context) ([]simgate.Node, error)
	// ListenQueue calls wake each time any node queues a message, until
	// ctx is done.
	ListenQueue(ctx context.Context, wake func()) error
}

// Modems are this node's modems. *modem.Pool satisfies it.
type Modems interface {
	Status() []simgate.ModemStatus
	Ready() int
	Enable(name string) error
	Disable(name string) error
	Drain(ctx context.Context, name string) error
	Reset(ctx context.Context, name string) error
	USSD(ctx context.Context, name, code, session string, cancel bool) (simgate.USSDResult, error)
}

// Options configure a Cluster. NodeID and Modems are required.
type Options struct {
	// Store is the shared database; nil when this node is alone.
	Store   Store
	NodeID  string
	Version string
	Modems  Modems
	// Wake is called when any node queues a message (the dispatcher's
	// Wake); nil: nobody is told.
	Wake func()
	// Interval is how often this node reports (default DefaultInterval);
	// Timeout is how long after its last report a node is gone (default
	// DefaultTimeout). Give every node the same Timeout.
	Interval, Timeout time.Duration
	Now               simgate.Clock
	Logger            *slog.Logger
}

// Cluster is this node's view of the nodes. Its methods are safe for
// concurrent use.
type Cluster struct {
	opts    Options
	log     *slog.Logger
	started time.Time

	mu     sync.Mutex
	others []simgate.Node // as last read, without this node, by id
	leases int            // this node's, as last read
	warned map[string]bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Cluster; Open starts it.
func New(opts Options) (*Cluster, error) {
	if opts.NodeID == "" || opts.Modems == nil {
		return nil, fmt.Errorf("cannot create cluster view: a node id and its modems are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Cluster{opts: opts, log: opts.Logger, started: opts.Now(), warned: map[string]bool{}}, nil
}

// Open reports this node and reads the others once, then keeps doing so
// every Interval and listens for queued messages, in goroutines that Close
// stops. It refuses to start when another node that is not gone reports a
// modem of the name of one of this node's: names key the modems' usage and
// caps in the shared database. (Two hosts with one node.id are found by
// the heartbeat, which logs it: a node restarted within Timeout finds its
// own report not gone yet, and must start.)
func (c *Cluster) Open(ctx context.Context) error {
	if c.opts.Store == nil {
		return nil
	}
	nodes, err := c.opts.Store.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("cannot join the cluster: %w", err)
	}
	now := c.opts.Now()
	mine := map[string]bool{}
	for _, m := range c.opts.Modems.Status() {
		mine[m.ID] = true
	}
	for _, n := range nodes {
		if n.Gone(now, c.opts.Timeout) {
			continue
		}
		if n.ID == c.opts.NodeID {
			continue
		}
		for _, m := range n.Modems {
			if mine[m.ID] {
				return fmt.Errorf("cannot join the cluster: node %s drives a modem named %q too; "+
					"modem names must differ across the hosts sharing a database", n.ID, m.ID)
			}
		}
	}
	if err := c.beat(ctx); err != nil {
		return fmt.Errorf("cannot join the cluster: %w", err)
	}
	ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.heartbeats(ctx)
	if c.opts.Wake != nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := c.opts.Store.ListenQueue(ctx, c.opts.Wake); err != nil {
				c.log.Error("cannot listen for queued messages; other nodes' messages wait for the sweep", "error", err)
			}
		}()
	}
	return nil
}

// Close stops reporting and listening. The node's last report stays: the
// other nodes see it gone after Timeout, and its leases run out.
func (c *Cluster) Close() error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	return nil
}

// heartbeats reports this node every Interval until ctx is done.
func (c *Cluster) heartbeats(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		if err := c.beat(bctx); err != nil && ctx.Err() == nil {
			c.log.Warn("cannot report this node to the others", "error", err)
		}
		cancel()
	}
}

// beat writes this node's report and reads the others'.
func (c *Cluster) beat(ctx context.Context) error {
	if err := c.opts.Store.Heartbeat(ctx, simgate.Node{ID: c.opts.NodeID, Version: c.opts.Version,
		StartedAt: c.started, Modems: c.local()}); err != nil {
		return err
	}
	nodes, err := c.opts.Store.Nodes(ctx)
	if err != nil {
		return err
	}
	others, leases := nodes[:0], 0
	for _, n := range nodes {
		if n.ID != c.opts.NodeID {
			others = append(others, n)
			continue
		}
		leases = n.Leases
		if !n.StartedAt.Equal(c.started.Truncate(time.Millisecond)) {
			// Another process wrote this node's report since: it shares the
			// node.id and takes this node's leases.
			c.log.Error("another process reports this node's id; give each host its own node.id",
				"node", n.ID, "its_start", n.StartedAt, "this_start", c.started)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	for _, n := range others {
		gone := n.Gone(now, c.opts.Timeout)
		if key := "gone " + n.ID; gone != c.warned[key] {
			c.warned[key] = gone
			if gone {
				c.log.Warn("node gone: its leases run out and its modems show down", "peer", n.ID, "last_seen", n.LastSeen)
			} else if !n.LastSeen.Before(c.started) {
				c.log.Info("node joined", "peer", n.ID)
			}
		}
	}
	c.others, c.leases = others, leases
	return nil
}

// local is this node's modems, named with this node.
func (c *Cluster) local() []simgate.ModemStatus {
	ms := c.opts.Modems.Status()
	for i := range ms {
		ms[i].Node = c.opts.NodeID
	}
	return ms
}

// Nodes returns every node, this one first and the others by id (the
// order the store reads them in), as last read, at most Interval ago; this
// node's modems are as they are now, its leases as last read (none alone).
func (c *Cluster) Nodes() []simgate.NodeStatus {
	now := c.opts.Now()
	modems := c.local()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []simgate.NodeStatus{{Node: simgate.Node{ID: c.opts.NodeID, Version: c.opts.Version,
		StartedAt: c.started, LastSeen: now, Modems: modems, Leases: c.leases}, Self: true}}
	for _, n := range c.others {
		out = append(out, simgate.NodeStatus{Node: n, Gone: n.Gone(now, c.opts.Timeout)})
	}
	return out
}

// Status returns this node's modems, then the other nodes' as they last
// reported them, or down when their node is gone (simgate.Node.GoneModems).
func (c *Cluster) Status() []simgate.ModemStatus {
	ms := c.local()
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.others {
		if n.Gone(now, c.opts.Timeout) {
			ms = append(ms, n.GoneModems()...)
		} else {
			ms = append(ms, n.Modems...)
		}
	}
	return ms
}

// Elsewhere returns the names of the other nodes' modems that can send
// (ready or degraded, their node not gone), as last read: a resend whose
// first code went out through one of them is left to its node
// (queue.Options.Elsewhere).
func (c *Cluster) Elsewhere() []string {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, n := range c.others {
		if n.Gone(now, c.opts.Timeout) {
			continue
		}
		for _, m := range n.Modems {
			if m.State == simgate.ModemReady || m.State == simgate.ModemDegraded {
				names = append(names, m.ID)
			}
		}
	}
	return names
}

// Ready returns how many of this node's modems take sends now.
func (c *Cluster) Ready() int { return c.opts.Modems.Ready() }

// Enable, Disable, Drain, Reset and USSD act on a modem of this node. A
// modem of another node is a conflict: only its node drives it.
func (c *Cluster) Enable(name string) error {
	if err := c.remote(name); err != nil {
		return err
	}
	return c.opts.Modems.Enable(name)
}

func (c *Cluster) Disable(name string) error {
	if err := c.remote(name); err != nil {
		return err
	}
	return c.opts.Modems.Disable(name)
}

func (c *Cluster) Drain(ctx context.Context, name string) error {
	if err := c.remote(name); err != nil {
		return err
	}
	return c.opts.Modems.Drain(ctx, name)
}

func (c *Cluster) Reset(ctx context.Context, name string) error {
	if err := c.remote(name); err != nil {
		return err
	}
	return c.opts.Modems.Reset(ctx, name)
}

func (c *Cluster) USSD(ctx context.Context, name, code, session string, cancel bool) (simgate.USSDResult, error) {
	if err := c.remote(name); err != nil {
		return simgate.USSDResult{}, err
	}
	return c.opts.Modems.USSD(ctx, name, code, session, cancel)
}

// remote returns a CodeConflict error when name is a modem of another node
// and not of this one.
func (c *Cluster) remote(name string) error {
	for _, m := range c.opts.Modems.Status() {
		if m.ID == name {
			return nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.others {
		for _, m := range n.Modems {
			if m.ID == name {
				return simgate.Errorf(simgate.CodeConflict,
					"modem %q is driven by node %s: act on it through that node's API", name, n.ID)
			}
		}
	}
	return nil
}
