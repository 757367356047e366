package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
)

// nodeList is the nodes as a cluster lists them, the answering one first.
type nodeList []simgate.NodeStatus

func (l nodeList) Nodes() []simgate.NodeStatus { return l }

// GET /v1/nodes lists the nodes, this one first, a gone one with its
// modems down; /readyz speaks of this node's modems only.
func TestNodes(t *testing.T) {
	seen := time.Date(2026, 11, 23, 11, 59, 0, 0, time.UTC)
	nodes := nodeList{
		{Node: simgate.Node{ID: "gw1", Version: "v1", StartedAt: seen, LastSeen: seen.Add(time.Minute), Leases: 1,
			Modems: []simgate.ModemStatus{{ID: "modem1", Node: "gw1", State: simgate.ModemDown, Reason: "no SIM"}}}, Self: true},
		{Node: simgate.Node{ID: "gw2", Version: "v1", StartedAt: seen, LastSeen: seen,
			Modems: []simgate.ModemStatus{{ID: "r0", Node: "gw2", State: simgate.ModemReady, SignalBars: 3}}}, Gone: true},
	}
	e := newEnv(t, envOpts{api: func(o *api.Options) { o.Nodes = nodes; o.MinReadyModems = 2 }})
	key := e.key(simgate.ScopeRead)
	r := e.do("GET", "/v1/nodes", key, nil)
	wantStatus(t, r, http.StatusOK)
	var body struct {
		Nodes []struct {
			ID, State string
			Self      bool
			Leases    int
			Modems    []struct{ ID, Node, State, Reason string }
		}
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(body.Nodes), "[{gw1 up true 1 [{modem1 gw1 down no SIM}]} "+
		"{gw2 gone false 0 [{r0 gw2 down node gone (gw2 last seen 2026-11-23T11:59:00Z)}]}]"; got != want {
		t.Fatalf("nodes\n%s, want\n%s", got, want)
	}

	r = e.do("GET", "/readyz", "", nil)
	wantStatus(t, r, http.StatusServiceUnavailable, "unavailable")
	var ready struct{ Modems []struct{ ID string } }
	json.Unmarshal(r.body, &ready)
	if got, want := fmt.Sprint(ready.Modems), "[{modem1}]"; got != want {
		t.Fatalf("readyz lists %s; want this node's modems only, %s", got, want)
	}
}
