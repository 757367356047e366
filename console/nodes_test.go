package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// nodeList is the nodes as a cluster would list them.
type nodeList []simgate.NodeStatus

func (l nodeList) Nodes() []simgate.NodeStatus { return l }

// With several nodes, the modems page shows them: which is this one, which
// is gone, when each was last seen, the leases each holds and its modems.
// Alone, a node shows no such table.
func TestModemsPage_Nodes(t *testing.T) {
	seen := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	nodes := nodeList{
		{Node: simgate.Node{ID: "gw1", Version: "v1", LastSeen: seen, Leases: 2,
			Modems: []simgate.ModemStatus{{ID: "m0"}, {ID: "m1"}}}, Self: true},
		{Node: simgate.Node{ID: "gw2", Version: "v1", LastSeen: seen.Add(-time.Minute),
			Modems: []simgate.ModemStatus{{ID: "m2"}}}, Gone: true},
	}
	for _, c := range []struct {
		nodes nodeList
		want  []string
		not   []string
	}{
		{nodes, []string{`<tr id="node-gw1" data-state="up">`, `(this node)`, `<td class="num">2</td>`, `m0, m1`,
			`<tr id="node-gw2" data-state="gone">`, `>gone</span>`, `m2`}, nil},
		{nodes[:1], nil, []string{`id="nodes"`}},
	} {
		e := newEnvWith(t, c.nodes)
		key, _ := e.key(simgate.ScopeAdmin)
		b := e.browser()
		if res := e.login(b, key); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", res.StatusCode)
		}
		res, page := e.get(b, "/console/modems")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("modems page: %d", res.StatusCode)
		}
		for _, w := range c.want {
			if !strings.Contains(page, w) {
				t.Errorf("%d nodes: the page lacks %s", len(c.nodes), w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(page, w) {
				t.Errorf("%d nodes: the page has %s", len(c.nodes), w)
			}
		}
	}
}
