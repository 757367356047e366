package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx", for the checks on PostgreSQL

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/modem/sim"
	"github.com/simgate/simgate/store/postgres/pgtest"
)

// These tests run the real simgate binary, as a user or systemd would,
// against virtual modems that live in the test process and so outlive the
// daemon: the virtual network's log of submissions is the ground truth for
// "sent exactly once".

func TestDemoEndToEnd(t *testing.T) {
	bin := simgateBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("simgate demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`1\. verification created: ver_\S+ for \+4915123456789, status pending`),
		regexp.MustCompile(`2\. SMS msg_\S+ submitted by modem sim[01] with message reference \d+`),
		regexp.MustCompile(`3\. handset \+4915123456789 received from \+\d+: "Your Demo code is \d{6}\.`),
		regexp.MustCompile(`4\. status report for message reference \d+: TP-ST 0x00, delivered`),
		regexp.MustCompile(`5\. wrong code \d{6} rejected: status pending, 4 attempts left`),
		regexp.MustCompile(`6\. code checked: approved`),
		regexp.MustCompile(`8\. .*checked 2 minutes later with its right code: rejected .*status expired`),
		regexp.MustCompile(`All steps hold`),
	} {
		if !want.Match(out.Bytes()) {
			t.Errorf("demo output lacks %s:\n%s", want, out.String())
		}
	}
	if errb.Len() > 0 {
		t.Errorf("demo wrote to stderr:\n%s", errb.String())
	}
}

// rig is a set of virtual modems, a database with an API key, and a config
// file for simgate serve.
type rig struct {
	t      *testing.T
	dir    string
	net    *sim.Network
	modems []*sim.Modem
	config string
	dbPath string // the SQLite file, when dsn is ""
	dsn    string // the PostgreSQL database, or ""
	key    string
}

// newRig makes a rig on a SQLite file in its directory (newRigOn).
func newRig(t *testing.T, modems int, latency time.Duration) *rig {
	t.Helper()
	return newRigOn(t, "", modems, latency)
}

// newRigOn makes a rig whose daemon runs on the PostgreSQL database dsn
// (pgtest.NewDatabase), or on a SQLite file in the rig's directory when
// dsn is "".
func newRigOn(t *testing.T, dsn string, modems int, latency time.Duration) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), net: sim.NewNetwork(), dsn: dsn}
	t.Cleanup(func() { r.net.Close() })
	dev := filepath.Join(r.dir, "dev")
	if err := os.Mkdir(dev, 0o700); err != nil {
		t.Fatal(err)
	}
	cfgs := make([]sim.Config, modems)
	for i := range cfgs {
		cfgs[i] = sim.Config{SubmitLatency: latency, ReportDelay: 50 * time.Millisecond}
	}
	var err error
	if r.modems, err = r.net.Start(dev, cfgs...); err != nil {
		t.Fatal(err)
	}
	db := DatabaseConfig{Driver: driverSQLite, Path: filepath.Join(r.dir, "simgate.db")}
	var b strings.Builder
	if dsn == "" {
		r.dbPath = db.Path
		fmt.Fprintf(&b, "database:\n  path: %s\n", r.dbPath)
	} else {
		// One node, its name the same at every start: a restarted daemon
		// takes back the leases its killed predecessor held.
		db = DatabaseConfig{Driver: driverPostgres, DSN: dsn}
		fmt.Fprintf(&b, "node:\n  id: crashtest\ndatabase:\n  driver: postgres\n  dsn: %q\n", dsn)
	}
	fmt.Fprintf(&b, "http:\n  listen: 127.0.0.1:0\nlog:\n  level: info\n  format: json\n")
	fmt.Fprintf(&b, "queue:\n  sweep_interval: 200ms\n  retry_backoff: 200ms\n  lease: 30s\n")
	fmt.Fprintf(&b, "verify:\n  allowed_countries: [DE]\n  prefix_velocity_per_hour: 1000000\n")
	if dsn != "" {
		// PostgreSQL requires the secret every node shares.
		fmt.Fprintf(&b, "  secret: %s\n", strings.Repeat("s", 32))
	}
	fmt.Fprintf(&b, "limits:\n  per_api_key: {rate: 100000, burst: 100000}\n  per_ip: {rate: 100000, burst: 100000}\n")
	fmt.Fprintf(&b, "  per_number: {rate: 100, burst: 100}\n  global_sms_per_hour: 1000000\n  global_sms_per_day: 1000000\n")
	fmt.Fprintf(&b, "pool:\n  min_ready_modems: %d\n  command_timeout: 2s\nmodems:\n", modems)
	for _, m := range r.modems {
		fmt.Fprintf(&b, "  - {name: %s, device: %s, per_minute: 0, per_hour: 0, per_day: 0, submit_timeout: 10s}\n", m.Config().Name, m.Path())
	}
	r.config = filepath.Join(r.dir, "simgate.yaml")
	if err := os.WriteFile(r.config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	st, err := openDatabase(ctx, db, nil, slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}
	key, k, err := api.NewAPIKey("e2e", []simgate.Scope{simgate.ScopeSend, simgate.ScopeRead, simgate.ScopeVerify})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	r.key = key
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return r
}

// serveProc is a running simgate serve.
type serveProc struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
	done chan error
}

var servingLine = regexp.MustCompile(`"msg":"simgate is serving","api":"([^"]+)"`)

// serve starts simgate serve and waits until it listens and is ready.
func (r *rig) serve() *serveProc {
	r.t.Helper()
	return serveConfig(r.t, r.config)
}

// serveConfig starts simgate serve -c config and waits until it listens
// and is ready.
func serveConfig(t *testing.T, config string) *serveProc {
	t.Helper()
	d := &serveProc{logs: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(simgateBinary(t), "serve", "-c", config)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			d.logs.Write(append(sc.Bytes(), '\n'))
			if m := servingLine.FindSubmatch(sc.Bytes()); m != nil {
				addr <- string(m[1])
			}
		}
		io.Copy(io.Discard, stderr)
		d.done <- d.cmd.Wait()
	}()
	select {
	case a := <-addr:
		d.base = "http://" + a
	case err := <-d.done:
		t.Fatalf("simgate serve exited before serving: %v\n%s", err, d.logs.String())
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("simgate serve did not start:\n%s", d.logs.String())
	}
	return d
}

// stop sends sig and waits for the process to end.
func (d *serveProc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		return err
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("simgate serve did not stop within 60 s of %v:\n%s", sig, d.logs.String())
		return nil
	}
}

// load posts messages from several clients, each pausing between requests,
// until ctx ends, and returns the ids and texts of the ones the daemon
// accepted. The pause keeps the backlog within what the virtual modems
// drain in a test's time. Request n carries the Idempotency-Key load-n; one
// whose response did not come back (the daemon died) is left in retries,
// when not nil, for retryLoad.
func (r *rig) load(ctx context.Context, base string, workers int, pause time.Duration, seq *counter, retries *loadRetries) map[string]string {
	var mu sync.Mutex
	accepted := map[string]string{}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := seq.next()
				text, req := r.loadRequest(ctx, base, n)
				resp, err := client.Do(req)
				if err != nil {
					if retries != nil {
						retries.mu.Lock()
						retries.pending[n] = true
						retries.mu.Unlock()
					}
					return // the daemon went away: stop this worker
				}
				var m struct{ ID string }
				err = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 && err == nil && m.ID != "" {
					mu.Lock()
					accepted[m.ID] = text
					mu.Unlock()
				} else if resp.StatusCode/100 == 2 && retries != nil {
					// The response was cut off: as good as none.
					retries.mu.Lock()
					retries.pending[n] = true
					retries.mu.Unlock()
				} else if resp.StatusCode/100 != 2 && ctx.Err() == nil {
					r.t.Errorf("POST /v1/messages: HTTP %d: %v", resp.StatusCode, err)
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	wg.Wait()
	return accepted
}

// loadRequest is load's request n, the same each time it is sent.
func (r *rig) loadRequest(ctx context.Context, base string, n int) (text string, req *http.Request) {
	text = fmt.Sprintf("load message %d", n)
	body, _ := json.Marshal(map[string]string{"to": fmt.Sprintf("+49151%08d", n), "text": text})
	req, _ = http.NewRequestWithContext(ctx, "POST", base+"/v1/messages", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("load-%d", n))
	return text, req
}

// loadRetries are the load requests whose response never came, to be sent
// again with the same Idempotency-Key, and what the retries got.
type loadRetries struct {
	mu      sync.Mutex
	pending map[int]bool
	held    map[int]bool // refused as in progress once
	// Figures: retries sent; answered Idempotent-Replayed (the first
	// attempt's stored response, or after a refusal as in progress, the
	// message the dead first attempt created: recovered); run afresh (the
	// first attempt created nothing); refused as still in progress (within
	// the reservation's lease).
	sent, replayed, recovered, ran, inProgress int
}

// retryLoad sends every pending request again and adds what the daemon
// accepted to accepted. A request refused as in progress stays pending.
func (r *rig) retryLoad(base string, retries *loadRetries, accepted map[string]string) {
	r.t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	retries.mu.Lock()
	defer retries.mu.Unlock()
	for n := range retries.pending {
		text, req := r.loadRequest(context.Background(), base, n)
		resp, err := client.Do(req)
		if err != nil {
			r.t.Fatalf("retry of load request %d: %v", n, err)
		}
		retries.sent++
		var m struct{ ID string }
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusConflict:
			retries.inProgress++
			retries.held[n] = true
			continue
		case resp.StatusCode != http.StatusCreated || err != nil || m.ID == "":
			r.t.Fatalf("retry of load request %d: HTTP %d: %v", n, resp.StatusCode, err)
		case resp.Header.Get("Idempotent-Replayed") == "true":
			retries.replayed++
			if retries.held[n] {
				retries.recovered++
			}
		default:
			retries.ran++
		}
		if old, ok := accepted[m.ID]; ok && old != text {
			r.t.Fatalf("retry of load request %d (%q) answered with message %s of %q", n, text, m.ID, old)
		}
		accepted[m.ID] = text
		delete(retries.pending, n)
	}
}

// checkIdempotency checks the database against what the load clients were
// told: each message the daemon answered with holds the text asked for,
// no text was stored twice (a retry never created a second message), and
// no Idempotency-Key is left in progress.
func (r *rig) checkIdempotency(accepted map[string]string) {
	r.t.Helper()
	db := r.openDB(true)
	defer db.Close()
	rows, err := db.Query(`SELECT id, text FROM messages`)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	texts := map[string]string{}
	seen := map[string]int{}
	for rows.Next() {
		var id, text string
		if err := rows.Scan(&id, &text); err != nil {
			r.t.Fatal(err)
		}
		texts[id] = text
		if seen[text]++; seen[text] == 2 {
			r.t.Errorf("%q stored as two messages", text)
		}
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	for id, text := range accepted {
		if got := texts[id]; got != text {
			r.t.Errorf("message %s holds %q, the client was told %q", id, got, text)
		}
	}
	var open int
	if err := db.QueryRow(`SELECT count(*) FROM idempotency_keys WHERE status_code IS NULL`).Scan(&open); err != nil {
		r.t.Fatal(err)
	}
	if open > 0 {
		r.t.Errorf("%d Idempotency-Keys still in progress after every request was retried", open)
	}
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

// statuses reads every message's status from the running daemon's API (the
// daemon holds the database file to itself).
func (r *rig) statuses(d *serveProc) map[string]string {
	r.t.Helper()
	out := map[string]string{}
	for _, m := range r.list(d) {
		out[m.ID] = m.Status
	}
	return out
}

// listedMessage is a message as GET /v1/messages lists it.
type listedMessage struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	UpdatedAt time.Time `json:"updated_at"`
}

// list reads every message from the running daemon's API.
func (r *rig) list(d *serveProc) []listedMessage {
	r.t.Helper()
	var out []listedMessage
	cursor := ""
	for {
		req, err := http.NewRequest("GET", d.base+"/v1/messages?limit=1000&cursor="+url.QueryEscape(cursor), nil)
		if err != nil {
			r.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+r.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			r.t.Fatal(err)
		}
		var page struct {
			Messages   []listedMessage `json:"messages"`
			NextCursor string          `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			r.t.Fatalf("GET /v1/messages: HTTP %d, %v", resp.StatusCode, err)
		}
		out = append(out, page.Messages...)
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

// openDB opens the rig's database for the checks, once the daemon has
// stopped (a daemon holds its SQLite file to itself): the SQLite file,
// read-only when ro, or the PostgreSQL database through pgx. The checks'
// queries are written for both.
func (r *rig) openDB(ro bool) *sql.DB {
	r.t.Helper()
	driver, dsn := "pgx", r.dsn
	if r.dsn == "" {
		driver, dsn = "sqlite3", "file:"+r.dbPath+"?_busy_timeout=5000"
		if ro {
			dsn = "file:" + r.dbPath + "?mode=ro&_busy_timeout=5000"
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		r.t.Fatal(err)
	}
	return db
}

// integrityCheck checks that the database is intact, once the daemon has
// stopped. A SQLite file, which the daemon wrote itself, must pass
// integrity_check. PostgreSQL was not killed, only its client: the server
// rolls back a dead client's transaction, and its constraints (foreign
// keys, CHECKs) held for every commit. On both, the rows must agree with
// each other (consistencyCheck).
func (r *rig) integrityCheck() {
	r.t.Helper()
	db := r.openDB(false)
	defer db.Close()
	if r.dsn == "" {
		var res string
		if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
			r.t.Fatalf("integrity_check: %q, %v", res, err)
		}
	}
	r.consistencyCheck(db)
}

// consistencyCheck checks what the store keeps together in one transaction
// or by its triggers, which no constraint states: the counts of
// status_counts are those of the messages by status; every message has its
// parts; a part is in sending only while its message is in sending (or
// unknown, which queue.Finish still applies to); and a message holds a
// lease exactly while it is in sending (queue/state.go).
func (r *rig) consistencyCheck(db *sql.DB) {
	r.t.Helper()
	// status_counts keeps a row at 0 for a status no message has any more;
	// on PostgreSQL it is a log of changes, summed
	// (store/postgres/migrations/0004_status_count_deltas.sql).
	kept := countBy(r.t, db, `SELECT status, CAST(sum(n) AS INTEGER) FROM status_counts WHERE entity = 'message' GROUP BY status`)
	maps.DeleteFunc(kept, func(_ string, n int) bool { return n == 0 })
	actual := countBy(r.t, db, `SELECT status, count(*) FROM messages GROUP BY status`)
	if !maps.Equal(kept, actual) {
		r.t.Errorf("status_counts says %v, the messages are %v", kept, actual)
	}
	for _, c := range []struct{ what, query string }{
		{"messages without parts", `SELECT count(*) FROM messages m
			WHERE NOT EXISTS (SELECT 1 FROM message_parts p WHERE p.message_id = m.id)`},
		{"parts in sending whose message is neither sending nor unknown", `SELECT count(*) FROM message_parts p
			JOIN messages m ON m.id = p.message_id
			WHERE p.status = 'sending' AND m.status NOT IN ('sending', 'unknown')`},
		{"messages in sending without a lease, or holding one in another status", `SELECT count(*) FROM messages
			WHERE (status = 'sending') <> (lease_owner IS NOT NULL)`},
	} {
		var n int
		if err := db.QueryRow(c.query).Scan(&n); err != nil {
			r.t.Fatalf("%s: %v", c.what, err)
		}
		if n > 0 {
			r.t.Errorf("%d %s", n, c.what)
		}
	}
}

// submittedTwice returns the texts the network saw more than once.
func (r *rig) submittedTwice() []string {
	seen := map[string]int{}
	var dups []string
	for _, s := range r.net.Submissions() {
		seen[s.Text]++
		if seen[s.Text] == 2 {
			dups = append(dups, s.Text)
		}
	}
	return dups
}

// settle waits until no message is waiting for a modem. A sent message may
// stay sent: its routed status report is lost when it arrives while no
// daemon holds the port, as on hardware. It fails when the backlog stops
// shrinking for 30 s.
func (r *rig) settle(d *serveProc) map[string]string {
	r.t.Helper()
	last, progress := -1, time.Now()
	for {
		st := r.statuses(d)
		busy := 0
		for _, s := range st {
			switch simgate.MessageStatus(s) {
			case simgate.StatusAccepted, simgate.StatusQueued, simgate.StatusSending:
				busy++
			}
		}
		if busy == 0 {
			return st
		}
		if busy != last {
			last, progress = busy, time.Now()
		} else if time.Since(progress) > 30*time.Second {
			r.t.Fatalf("%d messages still busy, none sent for 30 s\n%s", busy, tail(d.logs.String(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestServeSIGTERMUnderLoad stops the daemon gracefully while clients are
// sending: every accepted message must be sent exactly once after a
// restart, and a graceful stop must leave none "unknown" (in-flight submits
// finish before the modems close).
func TestServeSIGTERMUnderLoad(t *testing.T) {
	r := newRig(t, 3, 30*time.Millisecond)
	d := r.serve()
	ctx, cancel := context.WithCancel(context.Background())
	var seq counter
	acceptedc := make(chan map[string]string, 1)
	go func() { acceptedc <- r.load(ctx, d.base, 6, 5*time.Millisecond, &seq, nil) }()
	time.Sleep(700 * time.Millisecond)
	start := time.Now()
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("simgate serve exited with %v after SIGTERM\n%s", err, tail(d.logs.String(), 40))
	}
	t.Logf("graceful stop took %v", time.Since(start))
	cancel()
	accepted := <-acceptedc
	if len(accepted) < 10 {
		t.Fatalf("only %d messages accepted before SIGTERM: the load did not run", len(accepted))
	}

	d = r.serve()
	st := r.settle(d)
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	delivered := map[string]bool{}
	for _, s := range r.net.Submissions() {
		delivered[s.Text] = true
	}
	for id, text := range accepted {
		if got := st[id]; got != string(simgate.StatusDelivered) && got != string(simgate.StatusSent) {
			t.Errorf("accepted message %s is %q after a graceful stop and restart, want delivered (or sent)", id, got)
		}
		if !delivered[text] {
			t.Errorf("accepted message %s (%q) never reached the network", id, text)
		}
	}
	if dups := r.submittedTwice(); len(dups) > 0 {
		t.Errorf("submitted twice: %q", dups)
	}
	r.integrityCheck()
	t.Logf("%d messages accepted under load, all delivered once", len(accepted))
}

// TestServeCrashSIGKILL kills the daemon with SIGKILL at random points under
// load, SIMGATE_CRASH_ITERATIONS times (default 50; docs/OPERATIONS.md
// describes the longer run), on a SQLite file (subtest sqlite) and on
// PostgreSQL (subtest postgres, on the server SIMGATE_TEST_POSTGRES names;
// skipped without one unless SIMGATE_REQUIRE_POSTGRES is set, as in CI).
// After each restart the clients retry, with the same Idempotency-Key, every
// request whose response they did not get; a retry answered "in progress" is
// retried after the next restart, and once the reservation's lease
// (api.Options.IdempotencyLease, 30 s) has run out after the last crash,
// every one must be answered. After the last restart no message the killed
// daemons claimed is still in sending: the new daemon, which has their node
// id, took their leases back before it served. Afterwards every accepted
// message is in a final state or still queued, none was submitted twice, no
// retry created a second message and no key is left in progress, at most
// one per modem per crash is unknown, and the database is intact and
// consistent (integrityCheck).
func TestServeCrashSIGKILL(t *testing.T) {
	iterations := 50
	if s := os.Getenv("SIMGATE_CRASH_ITERATIONS"); s != "" {
		var err error
		if iterations, err = strconv.Atoi(s); err != nil || iterations < 1 {
			t.Fatalf("SIMGATE_CRASH_ITERATIONS=%q is not a positive number", s)
		}
	} else if testing.Short() {
		iterations = 5
	}
	const modems, latency = 3, 40 * time.Millisecond
	t.Run("sqlite", func(t *testing.T) {
		crashSIGKILL(t, newRig(t, modems, latency), iterations)
	})
	t.Run("postgres", func(t *testing.T) {
		crashSIGKILL(t, newRigOn(t, pgtest.NewDatabase(t), modems, latency), iterations)
	})
}

// crashSIGKILL is TestServeCrashSIGKILL on r's database.
func crashSIGKILL(t *testing.T, r *rig, iterations int) {
	accepted := map[string]string{}
	var seq counter
	retries := &loadRetries{pending: map[int]bool{}, held: map[int]bool{}}
	var lastKill time.Time
	for i := range iterations {
		d := r.serve()
		r.retryLoad(d.base, retries, accepted)
		ctx, cancel := context.WithCancel(context.Background())
		acceptedc := make(chan map[string]string, 1)
		go func() { acceptedc <- r.load(ctx, d.base, 4, 20*time.Millisecond, &seq, retries) }()
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		d.stop(t, syscall.SIGKILL)
		lastKill = time.Now()
		cancel()
		for id, text := range <-acceptedc {
			accepted[id] = text
		}
		if i%10 == 9 {
			t.Logf("%d crashes, %d messages accepted so far", i+1, len(accepted))
		}
	}

	d := r.serve()
	// The new daemon has the killed ones' node id: before it serves, it has
	// taken back the messages they left in sending (claimed, by their
	// updated_at, before the last kill; the new daemon claims after it).
	// Their leases would not tell: it renews every lease under its id.
	for _, m := range r.list(d) {
		if m.Status == string(simgate.StatusSending) && !m.UpdatedAt.After(lastKill) {
			t.Errorf("message %s, claimed at %s by a killed daemon, still in sending after the restart",
				m.ID, m.UpdatedAt.Format(time.StampMilli))
		}
	}
	const lease = 30 * time.Second // api.Options.IdempotencyLease's default
	time.Sleep(time.Until(lastKill.Add(lease + time.Second)))
	r.retryLoad(d.base, retries, accepted)
	if n := len(retries.pending); n > 0 {
		t.Errorf("%d requests still in progress %v after the last crash", n, lease)
	}
	st := r.settle(d)
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for id := range accepted {
		switch got := simgate.MessageStatus(st[id]); {
		case got == "":
			t.Errorf("accepted message %s is not in the database", id)
		case !got.Final() && got != simgate.StatusQueued && got != simgate.StatusSent:
			// sent counts as done: the SMSC took it; its routed report is
			// lost when it arrives while the daemon is dead, as on hardware.
			t.Errorf("accepted message %s is %q, want a final state, sent or queued", id, got)
		}
	}
	unknown := 0 // also among messages whose 201 the client never saw
	for _, s := range st {
		if s == string(simgate.StatusUnknown) {
			unknown++
		}
	}
	if max := len(r.modems) * iterations; unknown > max {
		t.Errorf("%d unknown messages after %d crashes with %d modems: more than one per modem per crash", unknown, iterations, len(r.modems))
	}
	if dups := r.submittedTwice(); len(dups) > 0 {
		t.Errorf("%d messages submitted twice, e.g. %q", len(dups), dups[0])
	}
	r.checkIdempotency(accepted)
	r.integrityCheck()
	t.Logf("%d crashes: %d messages accepted, %d submitted, %d unknown", iterations, len(accepted), len(r.net.Submissions()), unknown)
	t.Logf("retries across the crashes: %d sent, %d replayed (%d of them recovered from the message of a dead request), %d ran once, %d refused as in progress",
		retries.sent, retries.replayed, retries.recovered, retries.ran, retries.inProgress)
}

// TestServeSIGHUPReload adds a modem to the configuration of a running
// daemon and sends SIGHUP: the new modem comes up, and messages queued
// before, during and after the reload are all sent.
func TestServeSIGHUPReload(t *testing.T) {
	r := newRig(t, 3, 20*time.Millisecond)
	full, err := os.ReadFile(r.config)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(full), "\n"), "\n")
	if err := os.WriteFile(r.config, []byte(strings.Join(lines[:len(lines)-1], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := r.serve()
	defer d.stop(t, syscall.SIGTERM)

	modems := func() map[string]string {
		req, _ := http.NewRequest("GET", d.base+"/v1/modems", nil)
		req.Header.Set("Authorization", "Bearer "+r.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Modems []struct{ ID, State string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, m := range body.Modems {
			out[m.ID] = m.State
		}
		return out
	}
	if got := modems(); len(got) != 2 {
		t.Fatalf("before reload: modems %v, want 2", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var seq counter
	acceptedc := make(chan map[string]string, 1)
	go func() { acceptedc <- r.load(ctx, d.base, 2, 10*time.Millisecond, &seq, nil) }()
	time.Sleep(200 * time.Millisecond)
	if err := os.WriteFile(r.config, full, 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for got := modems(); got["modem2"] != "ready"; got = modems() {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP: modems %v, want modem2 ready\n%s", got, tail(d.logs.String(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	accepted := <-acceptedc
	st := r.settle(d)
	for id := range accepted {
		if s := simgate.MessageStatus(st[id]); s != simgate.StatusDelivered && s != simgate.StatusSent {
			t.Errorf("message %s is %q after the reload, want sent or delivered", id, s)
		}
	}
	used := map[string]bool{}
	for _, s := range r.net.Submissions() {
		used[s.Modem] = true
	}
	if !used["modem2"] {
		t.Errorf("the modem added by the reload sent nothing (submissions by %v)", used)
	}
	if !strings.Contains(d.logs.String(), "configuration reloaded") {
		t.Errorf("no reload in the logs:\n%s", tail(d.logs.String(), 20))
	}
}
