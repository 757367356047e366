package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/modem/sim"
	"github.com/simgate/simgate/store/postgres"
	"github.com/simgate/simgate/store/postgres/pgtest"
)

// clusterLease is the nodes' queue.lease in the cluster test: how long a
// killed node's messages in sending stay its own, and how long until it
// shows as gone.
const clusterLease = 3 * time.Second

// clusterNode is one simgate serve of the cluster test: its configuration
// and its virtual modems' names.
type clusterNode struct {
	id     string
	config string
	modems []string
	proc   *serveProc
}

// Three simgate serve processes on one PostgreSQL database, each with two
// virtual modems of its own on one virtual network: clients send through
// all three APIs, then one node is killed with SIGKILL. Afterwards every
// accepted message is final (or sent: the network took it), none was
// submitted twice (the network's log is the ground truth), at most one per
// modem of the killed node is unknown, and the rest went out through the
// survivors within the lease and 2 s; the survivors show the dead node
// gone and its modems down. A verification created on one node is checked
// on another, and a key revoked through one node's configuration is
// refused by another at once. The killed node, started again, takes its
// modems back and sends.
func TestClusterNodeKilled(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, k, err := api.NewAPIKey("cluster", []simgate.Scope{simgate.ScopeSend, simgate.ScopeRead, simgate.ScopeVerify})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	db.Close()

	dir := t.TempDir()
	net := sim.NewNetwork()
	t.Cleanup(func() { net.Close() })
	dev := filepath.Join(dir, "dev")
	if err := os.Mkdir(dev, 0o700); err != nil {
		t.Fatal(err)
	}
	nodes := make([]*clusterNode, 3)
	for i, id := range []string{"a", "b", "c"} {
		ms, err := net.Start(dev, sim.Config{SubmitLatency: 20 * time.Millisecond, ReportDelay: 50 * time.Millisecond},
			sim.Config{SubmitLatency: 20 * time.Millisecond, ReportDelay: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		n := &clusterNode{id: id, config: filepath.Join(dir, id+".yaml")}
		var b strings.Builder
		fmt.Fprintf(&b, "node:\n  id: %s\ndatabase:\n  driver: postgres\n  dsn: %q\n", id, dsn)
		fmt.Fprintf(&b, "http:\n  listen: 127.0.0.1:0\nlog:\n  level: info\n  format: json\n")
		fmt.Fprintf(&b, "verify:\n  secret: %s\n  allowed_countries: [DE]\n  prefix_velocity_per_hour: 1000000\n",
			strings.Repeat("s", 32))
		fmt.Fprintf(&b, "queue:\n  sweep_interval: 200ms\n  retry_backoff: 200ms\n  lease: %s\n", clusterLease)
		fmt.Fprintf(&b, "limits:\n  per_api_key: {rate: 100000, burst: 100000}\n  per_ip: {rate: 100000, burst: 100000}\n")
		fmt.Fprintf(&b, "  per_number: {rate: 100, burst: 100}\n  global_sms_per_hour: 1000000\n  global_sms_per_day: 1000000\n")
		fmt.Fprintf(&b, "pool:\n  min_ready_modems: 2\n  command_timeout: 2s\nmodems:\n")
		for _, m := range ms {
			n.modems = append(n.modems, m.Config().Name)
			fmt.Fprintf(&b, "  - {name: %s, device: %s, per_minute: 0, per_hour: 0, per_day: 0, submit_timeout: 10s}\n", m.Config().Name, m.Path())
		}
		if err := os.WriteFile(n.config, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	for _, n := range nodes {
		n.proc = serveConfig(t, n.config)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n.proc != nil {
				n.proc.stop(t, syscall.SIGKILL)
			}
		}
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	r := &rig{t: t, net: net, key: key}

	// Every node sees the three, with their modems.
	want := map[string]string{"a": "a:up b:up c:up", "b": "b:up a:up c:up", "c": "c:up a:up b:up"}
	waitFor(t, 10*time.Second, "every node to list the three nodes", func() bool {
		for _, n := range nodes {
			if got := nodeStates(t, r, n); got != want[n.id] {
				t.Logf("node %s lists %s", n.id, got)
				return false
			}
		}
		return true
	})

	// Load through the three APIs; kill c while it runs.
	var seq counter
	lctx, stopLoad := context.WithCancel(ctx)
	results := make(chan map[string]string, 3)
	for _, n := range nodes {
		go func() { results <- r.load(lctx, n.proc.base, 2, 50*time.Millisecond, &seq, nil) }()
	}
	time.Sleep(2 * time.Second)
	c.proc.stop(t, syscall.SIGKILL)
	killed := time.Now()
	c.proc = nil
	stopLoad()
	accepted := map[string]string{}
	for range nodes {
		for id, text := range <-results {
			accepted[id] = text
		}
	}
	if len(accepted) < 10 {
		t.Fatalf("only %d messages accepted under load", len(accepted))
	}

	st := r.settle(a.proc)
	takeover := time.Since(killed)
	t.Logf("%d messages accepted through three nodes; the survivors settled the queue %v after the kill (lease %v)",
		len(accepted), takeover.Round(10*time.Millisecond), clusterLease)
	if takeover > clusterLease+2*time.Second {
		t.Errorf("the queue settled %v after the kill; want within the lease (%v) and 2 s", takeover, clusterLease)
	}
	unknown := 0
	for id := range accepted {
		switch got := simgate.MessageStatus(st[id]); {
		case got == "":
			t.Errorf("accepted message %s is not in the database", id)
		case !got.Final() && got != simgate.StatusSent:
			t.Errorf("accepted message %s is %q, want a final state or sent", id, got)
		}
	}
	var unknownIDs []string
	for id, s := range st {
		if s == string(simgate.StatusUnknown) {
			unknown++
			unknownIDs = append(unknownIDs, id)
		}
	}
	if unknown > len(c.modems) {
		t.Errorf("%d unknown messages; at most %d (one per modem of the killed node)", unknown, len(c.modems))
		for _, id := range unknownIDs {
			_, body := apiDo(t, r, "GET", a.proc.base+"/v1/messages/"+id, key, nil)
			t.Logf("unknown message %s: %s", id, body)
		}
	}
	if dups := r.submittedTwice(); len(dups) > 0 {
		t.Errorf("%d messages submitted twice, e.g. %q", len(dups), dups[0])
	}
	bySender := map[string]int{}
	for _, s := range net.Submissions() {
		bySender[s.Modem]++
	}
	for _, n := range nodes {
		for _, m := range n.modems {
			if bySender[m] == 0 {
				t.Errorf("modem %s of node %s sent nothing: the load did not spread", m, n.id)
			}
		}
	}
	t.Logf("submissions per modem: %v; unknown: %d", bySender, unknown)

	// The survivors show c gone, its modems down, after the lease.
	waitFor(t, clusterLease+5*time.Second, "the survivors to show c gone", func() bool {
		return nodeStates(t, r, a) == "a:up b:up c:gone" && nodeStates(t, r, b) == "b:up a:up c:gone"
	})
	var modems struct {
		Modems []struct{ ID, Node, State, Reason string }
	}
	getJSON(t, r, b.proc.base+"/v1/modems", &modems)
	down := 0
	for _, m := range modems.Modems {
		if m.Node == "c" {
			if m.State != "down" || !strings.HasPrefix(m.Reason, "node gone") {
				t.Errorf("c's modem %s on b: %s %q; want down (node gone)", m.ID, m.State, m.Reason)
			}
			down++
		}
	}
	if down != len(c.modems) || len(modems.Modems) != 6 {
		t.Errorf("b lists %d modems, %d of c's; want 6 and 2: %+v", len(modems.Modems), down, modems.Modems)
	}

	// A verification created on a is checked on b.
	status, body := apiDo(t, r, "POST", a.proc.base+"/v1/verifications", key, map[string]any{"to": "+4917612345601"})
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/verifications on a: %d %s", status, body)
	}
	var v struct{ ID string }
	json.Unmarshal(body, &v)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	inbox, err := net.WaitInbox(wctx, "+4917612345601", 1)
	if err != nil {
		t.Fatal(err)
	}
	code := codeRE.FindString(inbox[0].Text)
	if status, body := apiDo(t, r, "POST", b.proc.base+"/v1/verifications/check", key, map[string]any{"id": v.ID, "code": code}); status != http.StatusOK ||
		!strings.Contains(string(body), `"status":"approved"`) {
		t.Fatalf("check on b of a's verification: %d %s", status, body)
	}

	// A missed-call verification started on b names a SIM of b's own; the
	// call reaches b, which approves it in the shared database, and a
	// reads it approved.
	status, body = apiDo(t, r, "POST", b.proc.base+"/v1/verifications", key,
		map[string]any{"to": "+4917612345602", "channel": "missed_call"})
	var mc struct {
		ID     string
		CallTo string `json:"call_to"`
	}
	if err := json.Unmarshal(body, &mc); status != http.StatusCreated || err != nil {
		t.Fatalf("POST /v1/verifications on b, missed_call: %d %s", status, body)
	}
	var bSIMs []string
	for _, name := range b.modems {
		bSIMs = append(bSIMs, net.Modem(name).Config().Number)
	}
	if !slices.Contains(bSIMs, mc.CallTo) {
		t.Fatalf("b's missed call goes to %s, not one of b's SIMs %v", mc.CallTo, bSIMs)
	}
	if err := net.Call("+4917612345602", mc.CallTo); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a to read b's missed-call verification approved", func() bool {
		var got struct{ Status string }
		getJSON(t, r, a.proc.base+"/v1/verifications/"+mc.ID, &got)
		return got.Status == "approved"
	})

	// c comes back: it takes its modems again, and sends.
	c.proc = serveConfig(t, c.config)
	waitFor(t, 10*time.Second, "a to show c back", func() bool { return nodeStates(t, r, a) == "a:up b:up c:up" })
	getJSON(t, r, a.proc.base+"/v1/modems", &modems)
	for _, m := range modems.Modems {
		if m.Node == "c" && m.State == "down" {
			t.Errorf("c's modem %s still down on a after c came back: %q", m.ID, m.Reason)
		}
	}

	// A resend asked of another node sticks to the SIM of the first code,
	// which that node leaves to the modem's node.
	nodeOf := map[string]string{}
	for _, n := range nodes {
		for _, m := range n.modems {
			nodeOf[m] = n.id
		}
	}
	for i := range 3 {
		to := fmt.Sprintf("+491761234570%d", i)
		first := nodes[i]
		if status, body := apiDo(t, r, "POST", first.proc.base+"/v1/verifications", key, map[string]any{"to": to}); status != http.StatusCreated {
			t.Fatalf("POST /v1/verifications on %s: %d %s", first.id, status, body)
		}
		got, err := net.WaitInbox(wctx, to, 1)
		if err != nil {
			t.Fatal(err)
		}
		sim1 := got[0].Modem
		var again *clusterNode // a node other than the one whose modem sent the code
		for _, n := range nodes {
			if n.id != nodeOf[sim1] {
				again = n
				break
			}
		}
		if status, body := apiDo(t, r, "POST", again.proc.base+"/v1/verifications", key, map[string]any{"to": to}); status != http.StatusCreated {
			t.Fatalf("resend on %s: %d %s", again.id, status, body)
		}
		if got, err = net.WaitInbox(wctx, to, 2); err != nil {
			t.Fatal(err)
		}
		if sim2 := got[1].Modem; sim2 != sim1 {
			t.Errorf("%s: the first code came from %s (node %s), the resend asked of node %s from %s; want the same SIM",
				to, sim1, nodeOf[sim1], again.id, sim2)
		}
	}

	// A key revoked through b's configuration is refused by c at once.
	code2, out, errs := runCLI(t, "apikey", "create", "-c", b.config, "--name", "short-lived", "--scopes", "read")
	if code2 != 0 {
		t.Fatalf("apikey create: exit %d, %s", code2, errs)
	}
	key2 := strings.TrimSpace(out)
	id2 := strings.Fields(strings.TrimPrefix(errs, "created "))[0]
	if status, body := apiDo(t, r, "GET", c.proc.base+"/v1/messages?limit=1", key2, nil); status != http.StatusOK {
		t.Fatalf("the new key on c: %d %s", status, body)
	}
	if code, _, errs := runCLI(t, "apikey", "revoke", "-c", b.config, id2); code != 0 {
		t.Fatalf("apikey revoke: exit %d, %s", code, errs)
	}
	if status, _ := apiDo(t, r, "GET", c.proc.base+"/v1/messages?limit=1", key2, nil); status != http.StatusUnauthorized {
		t.Fatalf("the revoked key on c: HTTP %d; want 401", status)
	}
	for _, n := range nodes {
		if err := n.proc.stop(t, syscall.SIGTERM); err != nil {
			t.Errorf("node %s: %v\n%s", n.id, err, tail(n.proc.logs.String(), 20))
		}
		n.proc = nil
	}
}

// nodeStates is GET /v1/nodes on n, as "id:state" in the order listed.
func nodeStates(t *testing.T, r *rig, n *clusterNode) string {
	t.Helper()
	var out struct {
		Nodes []struct{ ID, State string }
	}
	getJSON(t, r, n.proc.base+"/v1/nodes", &out)
	var s []string
	for _, n := range out.Nodes {
		s = append(s, n.ID+":"+n.State)
	}
	return strings.Join(s, " ")
}

// getJSON decodes the answer of a GET with r's key into v.
func getJSON(t *testing.T, r *rig, url string, v any) {
	t.Helper()
	status, body := apiDo(t, r, "GET", url, r.key, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// apiDo sends a request with key and returns the status and body.
func apiDo(t *testing.T, r *rig, method, url, key string, body any) (int, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}
