package simgate

import (
	"fmt"
	"time"
)

// Node is one simgate serve process, as the others see it on a database
// they share (PostgreSQL): each node drives only its own modems, takes API
// requests for the whole cluster and claims messages from the one queue.
// A node reports itself every few seconds (a heartbeat); one whose report
// is older than the node timeout is gone (Gone).
type Node struct {
	ID        string
	Version   string
	StartedAt time.Time
	LastSeen  time.Time
	// Modems are its modems as it last reported them.
	Modems []ModemStatus
	// Leases counts the messages in sending that it holds: submits in
	// flight on its modems.
	Leases int
}

// Gone reports whether n stopped reporting: its last report is more than
// timeout before now. A gone node's leases run out (its messages in sending
// become unknown, never resent blindly) and its modems show as down.
func (n Node) Gone(now time.Time, timeout time.Duration) bool {
	return now.Sub(n.LastSeen) > timeout
}

// GoneModems returns n's modems as they are while n is gone: down, with a
// reason that says why; their identities and counters as n last reported.
func (n Node) GoneModems() []ModemStatus {
	ms := make([]ModemStatus, len(n.Modems))
	for i, m := range n.Modems {
		m.State = ModemDown
		m.Reason = fmt.Sprintf("node gone (%s last seen %s)", n.ID, n.LastSeen.UTC().Format(time.RFC3339))
		m.SignalBars, m.SignalDBm = 0, 0
		ms[i] = m
	}
	return ms
}

// NodeStatus is a node as one node sees it: the last report, whether the
// node is gone, and whether it is the node that answers (Self).
type NodeStatus struct {
	Node
	Gone bool
	Self bool
}
