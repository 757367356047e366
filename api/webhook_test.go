package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/store"
)

var _ api.WebhookService = (*store.DB)(nil)

func TestWebhookDeliveries(t *testing.T) {
	e := newEnv(t, envOpts{api: func(o *api.Options) {}})
	ctx := context.Background()
	if err := e.db.CreateAlert(ctx, "number.velocity", number, "too many"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.FanOutWebhookEvents(ctx, everyEventTo("ops"), 0); err != nil {
		t.Fatal(err)
	}
	admin := e.key(simgate.ScopeAdmin)
	wantStatus(t, e.do("GET", "/v1/webhooks/deliveries", admin, nil), http.StatusServiceUnavailable, "unavailable")

	e = newEnv(t, envOpts{api: func(o *api.Options) { o.Webhooks = o.Keys.(*store.DB) }})
	// "ops" subscribes to alerts: the outbox records them.
	if err := e.db.SetWebhookSubscriptions(ctx, []string{simgate.EventSecurityAlert}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreateAlert(ctx, "number.velocity", number, "too many"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.FanOutWebhookEvents(ctx, everyEventTo("ops"), 0); err != nil {
		t.Fatal(err)
	}
	admin = e.key(simgate.ScopeAdmin)
	wantStatus(t, e.do("GET", "/v1/webhooks/deliveries", e.key(simgate.ScopeRead), nil), http.StatusForbidden, "forbidden")
	r := e.do("GET", "/v1/webhooks/deliveries?status=pending", admin, nil)
	wantStatus(t, r, http.StatusOK)
	var page struct {
		Deliveries []struct {
			EventID   string `json:"event_id"`
			EventType string `json:"event_type"`
			Endpoint  string `json:"endpoint"`
			Status    string `json:"status"`
		} `json:"deliveries"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Deliveries) != 1 || page.Deliveries[0].EventType != "security.alert" || page.Deliveries[0].Endpoint != "ops" || page.Deliveries[0].Status != "pending" {
		t.Fatalf("deliveries %s", r.body)
	}
	r = e.do("GET", "/v1/webhooks/deliveries?status=delivered", admin, nil)
	wantStatus(t, r, http.StatusOK)
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Deliveries) != 0 {
		t.Fatalf("delivered: %s", r.body)
	}
	wantStatus(t, e.do("GET", "/v1/webhooks/deliveries?status=bogus", admin, nil), http.StatusBadRequest, "invalid")
}

type rules struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *rules) RateLimited(rule string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[rule]++
}

func TestRateLimitObserver(t *testing.T) {
	obs := &rules{n: map[string]int{}}
	e := newEnv(t, envOpts{api: func(o *api.Options) {
		o.Limits.PerNumber = api.Rate{PerSecond: 0.1, Burst: 1}
		o.RateLimits = obs
	}})
	key := e.key(simgate.ScopeSend)
	wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": "x"}), http.StatusCreated)
	wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": "x"}), http.StatusTooManyRequests, "rate_limited")
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.n[api.RulePerNumber] != 1 || len(obs.n) != 1 {
		t.Fatalf("rules %v", obs.n)
	}
}

// Mounted handlers answer beside the API on the server's listener.
func TestMounts(t *testing.T) {
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "simgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var srv *api.Server
	srv, err = api.NewServer(api.Options{Addr: "127.0.0.1:0", Keys: db, Mounts: []api.Mount{
		{Prefix: "/metrics", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") })},
		{Prefix: "/console/", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "console "+r.URL.Path) })},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr().String()
	for path, want := range map[string]string{
		"/metrics":         "metrics",
		"/console/modems":  "console /console/modems",
		"/healthz":         `{"status":"ok"}`,
		"/v1/no-such-path": `"code":"not_found"`,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("GET %s = %q, want %q in it", path, b, want)
		}
	}
}

// everyEventTo subscribes endpoint to every event type.
func everyEventTo(endpoint string) map[string][]string {
	subs := map[string][]string{}
	for _, typ := range simgate.EventTypes {
		subs[typ] = []string{endpoint}
	}
	return subs
}
