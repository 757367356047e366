package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/webhook"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// receiver records the deliveries it accepted; fail is how many requests it
// answers 500 first.
type receiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	fail   int
	calls  int
	got    []delivery
	srv    *httptest.Server
}

type delivery struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, secret string, fail int) *receiver {
	r := &receiver{t: t, secret: []byte(secret), fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if r.fail > 0 {
			r.fail--
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		r.got = append(r.got, delivery{req.Header.Clone(), body})
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *receiver) count() (calls, delivered int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, len(r.got)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openDB(t *testing.T, path string, clk *clock) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path, store.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newSender(t *testing.T, db webhook.Store, clk *clock, eps ...webhook.Endpoint) *webhook.Sender {
	t.Helper()
	s, err := webhook.New(webhook.Options{
		Store: db, Endpoints: eps, Now: clk.Now, Timeout: 5 * time.Second,
		MinBackoff: time.Second, MaxBackoff: time.Minute, RetryFor: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// A delivery carries the envelope and a signature that verifies, with
// Verify and by hand; a tampered body or another secret does not.
func TestSignature(t *testing.T) {
	ctx := testContext(t)
	clk := newClock()
	db := openDB(t, filepath.Join(t.TempDir(), "simgate.db"), clk)
	defer db.Close()
	rcv := newReceiver(t, "s3cret-of-the-test", 0)
	s := newSender(t, db, clk, webhook.Endpoint{Name: "ops", URL: rcv.srv.URL, Secret: rcv.secret, Events: []string{simgate.EventSecurityAlert}})

	if err := db.CreateAlert(ctx, "number.velocity", "+4915123456789", "per-number SMS rate exceeded"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateInboundMessage(ctx, &simgate.InboundMessage{ModemID: "m", From: "+4915123456789", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	ds := rcv.deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1 (sms.received is not subscribed)", len(ds))
	}
	d := ds[0]
	sig := d.header.Get("Simgate-Signature")
	if err := webhook.Verify(rcv.secret, sig, d.body, 5*time.Minute, clk.Now()); err != nil {
		t.Fatalf("Verify(%q): %v", sig, err)
	}
	// By hand, as the README shows.
	ts, v1, _ := strings.Cut(sig, ",")
	ts, v1 = strings.TrimPrefix(ts, "t="), strings.TrimPrefix(v1, "v1=")
	m := hmac.New(sha256.New, rcv.secret)
	m.Write([]byte(ts + "." + string(d.body)))
	if got, want := v1, hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("v1 = %s, want %s", got, want)
	}
	if ts != "1772366400" {
		t.Fatalf("t = %s", ts)
	}
	for _, bad := range []struct {
		secret, body string
		now          time.Time
	}{
		{"other", string(d.body), clk.Now()},
		{string(rcv.secret), string(d.body) + " ", clk.Now()},
		{string(rcv.secret), string(d.body), clk.Now().Add(time.Hour)},
	} {
		if err := webhook.Verify([]byte(bad.secret), sig, []byte(bad.body), 5*time.Minute, bad.now); err != webhook.ErrBadSignature {
			t.Errorf("Verify with %+v = %v", bad, err)
		}
	}

	var env struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		CreatedAt time.Time       `json:"created_at"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(d.body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != simgate.EventSecurityAlert || !strings.HasPrefix(env.ID, "evt_") || !env.CreatedAt.Equal(clk.Now()) ||
		d.header.Get("Simgate-Event-Id") != env.ID || d.header.Get("Simgate-Event-Type") != env.Type {
		t.Fatalf("envelope %s, headers %v", d.body, d.header)
	}
	if !strings.Contains(string(env.Data), `"kind":"number.velocity"`) {
		t.Fatalf("data %s", env.Data)
	}
}

// A receiver that fails three times gets the event once, after backoffs of
// 1, 2 and 4 s; the delivery records four attempts.
func TestRetryThenDeliverOnce(t *testing.T) {
	ctx := testContext(t)
	clk := newClock()
	db := openDB(t, filepath.Join(t.TempDir(), "simgate.db"), clk)
	defer db.Close()
	rcv := newReceiver(t, "key-of-the-test-1", 3)
	s := newSender(t, db, clk, webhook.Endpoint{Name: "ops", URL: rcv.srv.URL, Secret: rcv.secret, Events: simgate.EventTypes})
	if err := db.CreateAlert(ctx, "global.budget", "hourly", "budget used up"); err != nil {
		t.Fatal(err)
	}
	for i, wait := range []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second} {
		// Not due a moment before its time.
		if wait > 0 {
			clk.Advance(wait - time.Millisecond)
			if n, err := s.RunOnce(ctx); err != nil || n != 0 {
				t.Fatalf("attempt %d early: %d, %v", i+1, n, err)
			}
			clk.Advance(time.Millisecond)
		}
		if n, err := s.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("attempt %d: %d, %v", i+1, n, err)
		}
	}
	for range 3 {
		clk.Advance(time.Hour)
		if n, err := s.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("after delivery: %d, %v", n, err)
		}
	}
	if calls, delivered := rcv.count(); calls != 4 || delivered != 1 {
		t.Fatalf("%d calls, %d delivered; want 4 and 1", calls, delivered)
	}
	ds, _, err := db.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{})
	if err != nil || len(ds) != 1 || ds[0].Status != simgate.DeliveryDelivered || ds[0].Attempts != 4 || ds[0].LastError != "" || ds[0].DeliveredAt.IsZero() {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
}

// A delivery that keeps failing is retried until RetryFor after its event,
// then fails for good.
func TestGiveUp(t *testing.T) {
	ctx := testContext(t)
	clk := newClock()
	db := openDB(t, filepath.Join(t.TempDir(), "simgate.db"), clk)
	defer db.Close()
	rcv := newReceiver(t, "key-of-the-test-1", 1<<30)
	s := newSender(t, db, clk, webhook.Endpoint{Name: "ops", URL: rcv.srv.URL, Secret: rcv.secret, Events: simgate.EventTypes})
	if err := db.CreateAlert(ctx, "global.budget", "daily", "budget used up"); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	for range 100 {
		n, err := s.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		attempts += n
		clk.Advance(time.Minute)
	}
	// 1 s, 2, 4, ... 32 s, then a minute each: 24 h hold ~1440 more, but the
	// loop above ran 100 minutes only.
	ds, _, _ := db.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{})
	if ds[0].Status != simgate.DeliveryPending || ds[0].LastError != "HTTP 500" {
		t.Fatalf("after 100 min: %+v", ds[0])
	}
	clk.Advance(24 * time.Hour)
	if _, err := s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	ds, _, _ = db.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{})
	if ds[0].Status != simgate.DeliveryFailed {
		t.Fatalf("after 24 h: %+v", ds[0])
	}
}

// Pending deliveries live in the database: a sender that is closed with one
// pending, and a new one on the reopened database, delivers it.
func TestPendingSurvivesRestart(t *testing.T) {
	ctx := testContext(t)
	clk := newClock()
	path := filepath.Join(t.TempDir(), "simgate.db")
	rcv := newReceiver(t, "key-of-the-test-1", 1)

	db := openDB(t, path, clk)
	s := newSender(t, db, clk, webhook.Endpoint{Name: "ops", URL: rcv.srv.URL, Secret: rcv.secret, Events: simgate.EventTypes})
	if err := db.CreateInboundMessage(ctx, &simgate.InboundMessage{ModemID: "m", From: "+4915123456789", Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("first attempt: %d, %v", n, err)
	}
	s.Close()
	db.Close()

	clk.Advance(time.Second)
	db = openDB(t, path, clk)
	defer db.Close()
	s = newSender(t, db, clk, webhook.Endpoint{Name: "ops", URL: rcv.srv.URL, Secret: rcv.secret, Events: simgate.EventTypes})
	if n, err := s.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("after restart: %d, %v", n, err)
	}
	ds := rcv.deliveries()
	if len(ds) != 1 || !strings.Contains(string(ds[0].body), `"text":"hello"`) {
		t.Fatalf("deliveries %d", len(ds))
	}
}

// The loop delivers without RunOnce being called.
func TestLoop(t *testing.T) {
	ctx := testContext(t)
	clk := &clock{now: time.Now()}
	db := openDB(t, filepath.Join(t.TempDir(), "simgate.db"), clk)
	defer db.Close()
	rcv := newReceiver(t, "key-of-the-test-1", 0)
	s, err := webhook.New(webhook.Options{Store: db, Interval: 10 * time.Millisecond,
		Endpoints: []webhook.Endpoint{{Name: "ops", URL: rcv.srv.URL, Secret: rcv.secret, Events: []string{simgate.EventModemDown}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.ModemStateChanged(ctx, simgate.ModemStatus{ID: "m0", State: simgate.ModemDown, Reason: "lost"})
	for ctx.Err() == nil {
		if _, n := rcv.count(); n == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("not delivered")
}

func TestNewValidates(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "simgate.db"), newClock())
	defer db.Close()
	secret := []byte("0123456789abcdef")
	events := []string{simgate.EventModemDown}
	for field, ep := range map[string]webhook.Endpoint{
		"endpoints[0].name":      {Name: "", URL: "http://x/", Secret: secret, Events: events},
		"endpoints[0].url":       {Name: "a", URL: "ftp://x/", Secret: secret, Events: events},
		"endpoints[0].secret":    {Name: "a", URL: "http://x/", Secret: []byte("k"), Events: events},
		"endpoints[0].events":    {Name: "a", URL: "http://x/", Secret: secret},
		"endpoints[0].events[0]": {Name: "a", URL: "http://x/", Secret: secret, Events: []string{"message.sending"}},
	} {
		_, err := webhook.New(webhook.Options{Store: db, Endpoints: []webhook.Endpoint{ep}})
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("New(%+v) = %v; want refused for %s", ep, err, field)
		}
	}
	ok := webhook.Endpoint{Name: "a", URL: "http://x/", Secret: secret, Events: events}
	if ps := webhook.CheckEndpoints([]webhook.Endpoint{ok, ok}); len(ps) != 1 || ps[0].Field != "endpoints[1].name" {
		t.Errorf("two endpoints of one name: %+v", ps)
	}
	if _, err := webhook.New(webhook.Options{Store: db, Endpoints: []webhook.Endpoint{ok}}); err != nil {
		t.Errorf("New refused a valid endpoint: %v", err)
	}
}
