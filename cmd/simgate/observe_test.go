package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/webhook"
)

// scrape reads /metrics into "name{labels}" -> value.
func (r *appRig) scrape() map[string]float64 {
	r.t.Helper()
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		r.t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			r.t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// countBy runs a "SELECT key, count(*) ... GROUP BY key" on the database.
func countBy(t *testing.T, db *sql.DB, q string, args ...any) map[string]int {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	return out
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

// Traffic over two virtual modems, then a scrape: every count agrees with
// the database.
func TestMetricsAgainstDatabase(t *testing.T) {
	r := newAppRig(t, 2, func(c *Config) {
		c.Limits.PerNumber = RateConfig{Rate: 0.001, Burst: 3}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var ids []string
	for i := range 4 {
		to := fmt.Sprintf("+49151234567%02d", 10+i)
		for j := range 3 {
			ids = append(ids, r.send(to, fmt.Sprintf("hello %d/%d", i, j)))
		}
	}
	if status, body := r.do("POST", "/v1/messages", r.sender, map[string]any{"to": "+4915123456710", "text": "one too many"}); status != http.StatusTooManyRequests {
		t.Fatalf("fourth SMS to one number: %d %s", status, body)
	}
	// Two verifications: one approved with the code its handset received,
	// one canceled.
	var vids []string
	for _, to := range []string{"+4917612345601", "+4917612345602"} {
		status, body := r.do("POST", "/v1/verifications", r.sender, map[string]any{"to": to})
		if status != http.StatusCreated {
			t.Fatalf("POST /v1/verifications: %d %s", status, body)
		}
		var v struct{ ID string }
		json.Unmarshal(body, &v)
		vids = append(vids, v.ID)
	}
	msgs, err := r.net.WaitInbox(ctx, "+4917612345601", 1)
	if err != nil {
		t.Fatal(err)
	}
	code := codeRE.FindString(msgs[0].Text)
	if status, body := r.do("POST", "/v1/verifications/check", r.sender, map[string]any{"id": vids[0], "code": code}); status != http.StatusOK || !strings.Contains(string(body), `"approved"`) {
		t.Fatalf("check: %d %s", status, body)
	}
	if status, body := r.do("POST", "/v1/verifications/"+vids[1]+"/cancel", r.sender, nil); status != http.StatusOK {
		t.Fatalf("cancel: %d %s", status, body)
	}
	if _, err := r.net.WaitInbox(ctx, "+4917612345602", 1); err != nil {
		t.Fatal(err)
	}
	// Everything delivered (the canceled verification's SMS too: it went
	// out before the cancel).
	waitFor(t, 30*time.Second, "every message delivered", func() bool {
		for _, id := range ids {
			if r.messageStatus(id) != simgate.StatusDelivered {
				return false
			}
		}
		return true
	})

	db, err := sql.Open("sqlite3", "file:"+r.cfg.Database.Path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitFor(t, 10*time.Second, "every verification SMS final", func() bool {
		n := countBy(t, db, `SELECT 'x', count(*) FROM messages WHERE status NOT IN ('delivered', 'failed')`)
		return n["x"] == 0
	})

	m := r.scrape()
	msgCounts := countBy(t, db, `SELECT status, count(*) FROM messages GROUP BY status`)
	if msgCounts["delivered"] != 14 {
		t.Fatalf("database: %v, want 14 delivered", msgCounts)
	}
	for _, st := range []string{"accepted", "queued", "sending", "sent", "delivered", "failed", "expired", "canceled", "unknown"} {
		if got, want := m[`simgate_messages{status="`+st+`"}`], float64(msgCounts[st]); got != want {
			t.Errorf("simgate_messages{status=%q} = %v, database %v", st, got, want)
		}
	}
	verCounts := countBy(t, db, `SELECT status, count(*) FROM verifications GROUP BY status`)
	if verCounts["approved"] != 1 || verCounts["canceled"] != 1 {
		t.Fatalf("database verifications %v", verCounts)
	}
	for _, st := range []string{"pending", "approved", "canceled", "expired", "max_attempts_reached", "failed"} {
		if got, want := m[`simgate_verifications{status="`+st+`"}`], float64(verCounts[st]); got != want {
			t.Errorf("simgate_verifications{status=%q} = %v, database %v", st, got, want)
		}
	}
	today := time.Now().UTC().Format("2006-01-02")
	usage := countBy(t, db, `SELECT modem_id, sent FROM modem_daily_usage WHERE day = ?`, today)
	submitted := countBy(t, db, `SELECT modem_id, count(*) FROM message_parts WHERE mr >= 0 GROUP BY modem_id`)
	total := 0
	for _, mod := range r.mods {
		name := mod.Config().Name
		total += usage[name]
		if got, want := m[`simgate_modem_sent_today{modem="`+name+`"}`], float64(usage[name]); got != want {
			t.Errorf("%s sent today = %v, database %v", name, got, want)
		}
		if got, want := m[`simgate_submit_duration_seconds_count{modem="`+name+`",result="ok"}`], float64(submitted[name]); got != want {
			t.Errorf("%s submits = %v, database %v", name, got, want)
		}
		if got := m[`simgate_modem_daily_cap{modem="`+name+`"}`]; got != 150 {
			t.Errorf("%s daily cap = %v", name, got)
		}
		if m[`simgate_modem_up{modem="`+name+`"}`] != 1 || m[`simgate_modem_state{modem="`+name+`",state="ready"}`] != 1 {
			t.Errorf("%s not up in the metrics", name)
		}
		if m[`simgate_modem_signal_dbm{modem="`+name+`"}`] >= 0 {
			t.Errorf("%s signal = %v dBm", name, m[`simgate_modem_signal_dbm{modem="`+name+`"}`])
		}
	}
	if total != 14 {
		t.Errorf("daily usage %v, want 14 SMS", usage)
	}
	if got := m[`simgate_rate_limited_total{rule="per_number"}`]; got != 1 {
		t.Errorf("per_number rejections = %v, want 1", got)
	}
	matched := countBy(t, db, `SELECT 'x', count(*) FROM status_reports WHERE message_id IS NOT NULL`)["x"]
	if got := m[`simgate_status_reports_window{matched="true"}`]; got != float64(matched) || matched < 14 {
		t.Errorf("matched reports = %v, database %d", got, matched)
	}
	if got := m[`simgate_status_report_match_ratio`]; got != 1 {
		t.Errorf("match ratio %v", got)
	}
	for _, p := range []string{"low", "normal", "high", "verification"} {
		if got := m[`simgate_queue_depth{priority="`+p+`",status="queued"}`]; got != 0 {
			t.Errorf("queued %s = %v", p, got)
		}
		if got := m[`simgate_queue_oldest_age_seconds{priority="`+p+`"}`]; got != 0 {
			t.Errorf("oldest %s = %v", p, got)
		}
	}
}

// hookReceiver is an endpoint that checks each delivery's signature.
type hookReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	down   bool
	calls  int
	events []hookEvent
	srv    *httptest.Server
}

type hookEvent struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	h := &hookReceiver{t: t, secret: secret}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls++
		if h.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify([]byte(h.secret), req.Header.Get("Simgate-Signature"), body, 5*time.Minute, time.Now()); err != nil {
			t.Errorf("delivery with a bad signature: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev hookEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("delivery body %s: %v", body, err)
		}
		h.events = append(h.events, ev)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) setDown(d bool) {
	h.mu.Lock()
	h.down = d
	h.mu.Unlock()
}

func (h *hookReceiver) got(typ string) []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookEvent
	for _, e := range h.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Webhooks end to end: a message's sent and delivered events, an inbound
// SMS and a verification's approval reach the endpoint signed and without
// the code; an event pending while the endpoint is down survives a restart
// of simgate and is delivered once by the next one.
func TestWebhooksEndToEnd(t *testing.T) {
	const secret = "0123456789abcdef-test"
	h := newHookReceiver(t, secret)
	r := newAppRig(t, 1, func(c *Config) {
		c.Webhooks.Endpoints = []EndpointConfig{{Name: "ops", URL: h.srv.URL, Secret: secret, Events: simgate.EventTypes}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	id := r.send("+4915123456789", "hello hooks")
	waitFor(t, 20*time.Second, "message.delivered", func() bool { return len(h.got(simgate.EventMessageDelivered)) == 1 })
	if sent := h.got(simgate.EventMessageSent); len(sent) != 1 || !strings.Contains(string(sent[0].Data), id) {
		t.Fatalf("message.sent events %+v", sent)
	}
	if err := r.net.Inject("+4915199999999", r.mods[0].Config().Number, "ping"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "sms.received", func() bool { return len(h.got(simgate.EventSMSReceived)) == 1 })

	vID, code := r.startVerification(ctx, "+4917612345601")
	if status, body := r.do("POST", "/v1/verifications/check", r.sender, map[string]any{"id": vID, "code": code}); status != http.StatusOK {
		t.Fatalf("check: %d %s", status, body)
	}
	waitFor(t, 20*time.Second, "verification.approved", func() bool { return len(h.got(simgate.EventVerificationApproved)) == 1 })
	// The code's SMS is delivered too, before the endpoint goes down: its
	// event must not be the one left pending below.
	waitFor(t, 20*time.Second, "the code's message.delivered", func() bool { return len(h.got(simgate.EventMessageDelivered)) == 2 })
	h.mu.Lock()
	for _, e := range h.events {
		if strings.Contains(string(e.Data), code) {
			t.Errorf("%s event carries the code: %s", e.Type, e.Data)
		}
	}
	h.mu.Unlock()

	// The endpoint goes down; an inbound SMS's event waits in the outbox.
	h.setDown(true)
	if err := r.net.Inject("+4915199999999", r.mods[0].Config().Number, "while down"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a failed attempt", func() bool {
		status, body := r.do("GET", "/v1/webhooks/deliveries?status=pending", r.admin, nil)
		return status == http.StatusOK && strings.Contains(string(body), `"last_error":"HTTP 503"`)
	})
	r.close()
	h.setDown(false)
	before := len(h.got(simgate.EventSMSReceived))
	r.open()
	waitFor(t, 20*time.Second, "the pending event after the restart", func() bool { return len(h.got(simgate.EventSMSReceived)) == before+1 })
	if got := h.got(simgate.EventSMSReceived); !strings.Contains(string(got[len(got)-1].Data), "while down") {
		t.Fatalf("delivered %s", got[len(got)-1].Data)
	}
	// The receiver has the event before the sender records the outcome: wait
	// for the record.
	waitFor(t, 5*time.Second, "no delivery left pending", func() bool {
		status, body := r.do("GET", "/v1/webhooks/deliveries?status=pending", r.admin, nil)
		return status == http.StatusOK && strings.Contains(string(body), `"deliveries":[]`)
	})
	time.Sleep(300 * time.Millisecond)
	if got := h.got(simgate.EventSMSReceived); len(got) != before+1 {
		t.Fatalf("delivered %d times", len(got)-before)
	}
}
