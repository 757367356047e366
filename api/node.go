package api

import (
	"net/http"
	"time"

	"github.com/simgate/simgate"
)

type nodeJSON struct {
	ID        string      `json:"id"`
	Version   string      `json:"version"`
	Self      bool        `json:"self"`
	State     string      `json:"state"` // "up" or "gone"
	StartedAt time.Time   `json:"started_at"`
	LastSeen  time.Time   `json:"last_seen"`
	Leases    int         `json:"leases"`
	Modems    []modemJSON `json:"modems"`
}

// listNodes answers GET /v1/nodes: the nodes sharing the database, this
// one first, with their modems and the leases they hold. A gone node's
// modems are down (simgate.Node.GoneModems).
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Nodes == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "nodes are not available")
	}
	out := struct {
		Nodes []nodeJSON `json:"nodes"`
	}{Nodes: []nodeJSON{}}
	for _, n := range s.opts.Nodes.Nodes() {
		j := nodeJSON{ID: n.ID, Version: n.Version, Self: n.Self, State: "up", StartedAt: n.StartedAt.UTC(),
			LastSeen: n.LastSeen.UTC(), Leases: n.Leases, Modems: []modemJSON{}}
		modems := n.Modems
		if n.Gone {
			j.State, modems = "gone", n.GoneModems()
		}
		for _, m := range modems {
			j.Modems = append(j.Modems, toModemJSON(m))
		}
		out.Nodes = append(out.Nodes, j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
