package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeVerify)

	r := e.do("GET", "/v1/verifications/ver_x", "", nil)
	wantStatus(t, r, http.StatusUnauthorized, "unauthorized")
	if r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("no WWW-Authenticate")
	}
	wantStatus(t, e.do("GET", "/v1/verifications/ver_x", "sg_notakey", nil), http.StatusUnauthorized, "unauthorized")
	wantStatus(t, e.do("GET", "/v1/verifications/ver_x", "", nil, "Authorization", "Basic "+key), http.StatusUnauthorized, "unauthorized")

	for _, q := range []string{"?api_key=" + key, "?key=x", "?token=x", "?foo=" + key} {
		r := e.do("GET", "/v1/verifications/ver_x"+q, key, nil)
		wantStatus(t, r, http.StatusBadRequest, "invalid")
		if d := r.json(t)["detail"].(string); !strings.Contains(d, "Authorization: Bearer") {
			t.Fatalf("detail %q does not say where the key goes", d)
		}
	}

	// Revocation takes effect on the next request.
	wantStatus(t, e.do("GET", "/v1/verifications/ver_x", key, nil), http.StatusNotFound)
	keys, _ := e.db.ListAPIKeys(context.Background())
	if keys[0].LastUsedAt.IsZero() {
		t.Fatal("last_used_at not recorded")
	}
	if err := e.db.RevokeAPIKey(context.Background(), keys[0].ID); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do("GET", "/v1/verifications/ver_x", key, nil), http.StatusUnauthorized, "unauthorized")
}

func TestScopes(t *testing.T) {
	e := newEnv(t, envOpts{})
	keys := map[simgate.Scope]string{}
	for _, s := range []simgate.Scope{simgate.ScopeVerify, simgate.ScopeSend, simgate.ScopeRead, simgate.ScopeAdmin} {
		keys[s] = e.key(s)
	}
	routes := []struct {
		method, path string
		body         any
		scope        simgate.Scope
	}{
		{"POST", "/v1/verifications", map[string]any{"to": number}, simgate.ScopeVerify},
		{"POST", "/v1/verifications/check", map[string]any{"to": number, "code": "1234"}, simgate.ScopeVerify},
		{"GET", "/v1/verifications/x", nil, simgate.ScopeVerify},
		{"POST", "/v1/verifications/x/cancel", nil, simgate.ScopeVerify},
		{"POST", "/v1/messages", map[string]any{"to": number, "text": "hi"}, simgate.ScopeSend},
		{"POST", "/v1/messages/x/cancel", nil, simgate.ScopeSend},
		{"GET", "/v1/messages", nil, simgate.ScopeRead},
		{"GET", "/v1/messages/x", nil, simgate.ScopeRead},
		{"GET", "/v1/inbox", nil, simgate.ScopeRead},
		{"GET", "/v1/modems", nil, simgate.ScopeRead},
		{"GET", "/v1/modems/modem0", nil, simgate.ScopeRead},
		{"POST", "/v1/modems/modem0/enable", nil, simgate.ScopeAdmin},
		{"POST", "/v1/modems/modem0/disable", nil, simgate.ScopeAdmin},
		{"POST", "/v1/modems/modem0/drain", nil, simgate.ScopeAdmin},
		{"POST", "/v1/modems/modem0/reset", nil, simgate.ScopeAdmin},
	}
	for _, rt := range routes {
		for s, key := range keys {
			r := e.do(rt.method, rt.path, key, rt.body)
			allowed := s == rt.scope || s == simgate.ScopeAdmin
			if allowed && r.status == http.StatusForbidden {
				t.Errorf("%s %s with %s: 403", rt.method, rt.path, s)
			} else if !allowed && r.status != http.StatusForbidden {
				t.Errorf("%s %s with %s: %d, want 403", rt.method, rt.path, s, r.status)
			}
		}
	}
}

func TestRateLimits(t *testing.T) {
	t.Run("per key", func(t *testing.T) {
		e := newEnv(t, envOpts{api: func(o *api.Options) { o.Limits.PerAPIKey = api.Rate{PerSecond: 1, Burst: 2} }})
		key, other := e.key(simgate.ScopeRead), e.key(simgate.ScopeRead)
		e.do("GET", "/v1/modems", key, nil)
		e.do("GET", "/v1/modems", key, nil)
		r := e.do("GET", "/v1/modems", key, nil)
		wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
		if got, want := r.header.Get("Retry-After"), "1"; got != want {
			t.Fatalf("Retry-After = %q, want %q", got, want)
		}
		wantStatus(t, e.do("GET", "/v1/modems", other, nil), http.StatusOK)
		e.clock.Add(time.Second)
		wantStatus(t, e.do("GET", "/v1/modems", key, nil), http.StatusOK)
	})
	t.Run("per IP", func(t *testing.T) {
		e := newEnv(t, envOpts{api: func(o *api.Options) { o.Limits.PerIP = api.Rate{PerSecond: 0.5, Burst: 1} }})
		key := e.key(simgate.ScopeRead)
		wantStatus(t, e.do("GET", "/v1/modems", key, nil), http.StatusOK)
		r := e.do("GET", "/v1/modems", e.key(simgate.ScopeRead), nil)
		wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
		if got, want := r.header.Get("Retry-After"), "2"; got != want {
			t.Fatalf("Retry-After = %q, want %q", got, want)
		}
	})
	t.Run("per number", func(t *testing.T) {
		e := newEnv(t, envOpts{api: func(o *api.Options) { o.Limits.PerNumber = api.Rate{PerSecond: 0.1, Burst: 2} }})
		key := e.key(simgate.ScopeSend)
		for range 2 {
			wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": "x"}), http.StatusCreated)
		}
		wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": "x"}), http.StatusTooManyRequests, "rate_limited")
		wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": "+4915123456780", "text": "x"}), http.StatusCreated)
		alerts, _ := e.db.ListAlerts(context.Background(), 0, 0)
		if len(alerts) != 1 || alerts[0].Kind != simgate.AlertNumberVelocity || alerts[0].Subject != number {
			t.Fatalf("alerts = %+v", alerts)
		}
	})
	t.Run("per prefix", func(t *testing.T) {
		e := newEnv(t, envOpts{api: func(o *api.Options) { o.Limits.PrefixLength, o.Limits.PrefixPerHour = 7, 3 }})
		key := e.key(simgate.ScopeVerify)
		for _, to := range []string{"+4915123456781", "+4915123456782", "+4915123456783"} {
			wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": to}), http.StatusCreated)
		}
		for range 3 {
			wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915123456784"}), http.StatusTooManyRequests, "rate_limited")
		}
		wantStatus(t, e.do("POST", "/v1/verifications", key, map[string]any{"to": "+4915223456784"}), http.StatusCreated)
		alerts, _ := e.db.ListAlerts(context.Background(), 0, 0)
		if len(alerts) != 1 || alerts[0].Kind != simgate.AlertPrefixVelocity || alerts[0].Subject != "+4915123" {
			t.Fatalf("alerts = %+v", alerts)
		}
	})
	t.Run("global", func(t *testing.T) {
		e := newEnv(t, envOpts{api: func(o *api.Options) { o.Limits.GlobalPerHour, o.Limits.GlobalPerDay = 100, 2 }})
		key := e.key(simgate.ScopeSend)
		wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": "+4915123456781", "text": "x"}), http.StatusCreated)
		wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": "+4915123456782", "text": "x"}), http.StatusCreated)
		r := e.do("POST", "/v1/messages", key, map[string]any{"to": "+4915123456783", "text": "x"})
		wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
		// The day is a sliding window of 24 h counted in buckets of 24
		// minutes: the SMS of 12:00 leave it at 12:24 the next day.
		if got, want := r.header.Get("Retry-After"), "87840"; got != want {
			t.Fatalf("Retry-After = %q, want %q", got, want)
		}
	})
}

func TestMessages(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeSend, simgate.ScopeRead)
	var ids []string
	for i := range 5 {
		r := e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": "hello", "priority": "high",
			"expires_at": e.clock.Now().Add(time.Hour).Format(time.RFC3339)})
		wantStatus(t, r, http.StatusCreated)
		m := r.json(t)
		if m["status"] != "queued" || m["priority"] != "high" || m["text"] != "hello" {
			t.Fatalf("message %d: %s", i, r.body)
		}
		ids = append(ids, m["id"].(string))
	}
	wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": ""}), http.StatusBadRequest, "invalid")
	wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": "x", "priority": "verification"}), http.StatusBadRequest, "invalid")
	wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": "x", "expires_at": "2000-01-01T00:00:00Z"}), http.StatusBadRequest, "invalid")
	e.queue.optedOut["+4915123456780"] = true
	wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": "+4915123456780", "text": "x"}), http.StatusForbidden, "forbidden")

	wantStatus(t, e.do("GET", "/v1/messages/"+ids[0], key, nil), http.StatusOK)
	wantStatus(t, e.do("POST", "/v1/messages/"+ids[0]+"/cancel", key, nil), http.StatusOK)
	wantStatus(t, e.do("POST", "/v1/messages/"+ids[0]+"/cancel", key, nil), http.StatusConflict, "conflict")

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		r := e.do("GET", "/v1/messages?limit=2&status=queued&to=%2B4915123456789&cursor="+cursor, key, nil)
		wantStatus(t, r, http.StatusOK)
		var page struct {
			Messages []struct{ ID string }
			Next     string `json:"next_cursor"`
		}
		json.Unmarshal(r.body, &page)
		for _, m := range page.Messages {
			got = append(got, m.ID)
		}
		if cursor = page.Next; cursor == "" || pages > 5 {
			break
		}
	}
	if want := []string{ids[4], ids[3], ids[2], ids[1]}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("listed %v, want %v", got, want)
	}
	wantStatus(t, e.do("GET", "/v1/messages?status=bogus", key, nil), http.StatusBadRequest, "invalid")
	wantStatus(t, e.do("GET", "/v1/messages?limit=0", key, nil), http.StatusBadRequest, "invalid")
}

func TestInbox(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeRead)
	for _, text := range []string{"one", "two", "three"} {
		if err := e.db.CreateInboundMessage(context.Background(), &simgate.InboundMessage{ModemID: "modem0", From: number, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	var texts []string
	cursor := ""
	for range 5 {
		r := e.do("GET", "/v1/inbox?limit=2&cursor="+cursor, key, nil)
		wantStatus(t, r, http.StatusOK)
		var page struct {
			Messages []struct{ Text string }
			Next     string `json:"next_cursor"`
		}
		json.Unmarshal(r.body, &page)
		for _, m := range page.Messages {
			texts = append(texts, m.Text)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if got, want := strings.Join(texts, ","), "one,two,three"; got != want {
		t.Fatalf("inbox = %s, want %s", got, want)
	}
	wantStatus(t, e.do("GET", "/v1/inbox?cursor=x", key, nil), http.StatusBadRequest, "invalid")
}

func TestModems(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeAdmin)
	r := e.do("GET", "/v1/modems", key, nil)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"signal_dbm":-71`) || !strings.Contains(string(r.body), `"reason":"no SIM"`) {
		t.Fatalf("modems: %s", r.body)
	}
	wantStatus(t, e.do("GET", "/v1/modems/nope", key, nil), http.StatusNotFound, "not_found")
	wantStatus(t, e.do("POST", "/v1/modems/nope/drain", key, nil), http.StatusNotFound, "not_found")
	r = e.do("POST", "/v1/modems/modem0/disable", key, nil)
	wantStatus(t, r, http.StatusOK)
	if got := r.json(t)["state"]; got != "disabled" {
		t.Fatalf("state = %v", got)
	}
	for _, a := range []string{"enable", "drain", "reset"} {
		wantStatus(t, e.do("POST", "/v1/modems/modem0/"+a, key, nil), http.StatusOK)
	}
	if got, want := strings.Join(e.modems.actions, ","), "disable modem0,enable modem0,drain modem0,reset modem0"; got != want {
		t.Fatalf("actions = %s, want %s", got, want)
	}
}

// POST /v1/modems/{id}/ussd takes a code, or a session with a reply or a
// cancel, and refuses anything else with what to send; only admin keys.
func TestModemUSSD(t *testing.T) {
	e := newEnv(t, envOpts{})
	key := e.key(simgate.ScopeAdmin)
	r := e.do("POST", "/v1/modems/modem0/ussd", key, map[string]any{"code": "*111#"})
	wantStatus(t, r, http.StatusOK)
	if got := r.json(t); got["status"] != "further_action" || got["session"] != "ussd_1" || got["text"] != "1 Balance" {
		t.Fatalf("ussd = %s", r.body)
	}
	wantStatus(t, e.do("POST", "/v1/modems/modem0/ussd", key, map[string]any{"session": "ussd_1", "reply": "1"}), http.StatusOK)
	wantStatus(t, e.do("POST", "/v1/modems/modem0/ussd", key, map[string]any{"session": "ussd_1", "cancel": true}), http.StatusOK)
	for _, body := range []map[string]any{
		{}, {"reply": "1"}, {"code": "*100#", "session": "ussd_1"}, {"session": "ussd_1"},
		{"session": "ussd_1", "reply": "1", "cancel": true}, {"code": "*100#", "cancel": true},
	} {
		wantStatus(t, e.do("POST", "/v1/modems/modem0/ussd", key, body), http.StatusBadRequest, "invalid")
	}
	wantStatus(t, e.do("POST", "/v1/modems/nope/ussd", key, map[string]any{"code": "*100#"}), http.StatusNotFound, "not_found")
	wantStatus(t, e.do("POST", "/v1/modems/modem0/ussd", e.key(simgate.ScopeRead), map[string]any{"code": "*100#"}), http.StatusForbidden, "forbidden")
	want := []string{`ussd modem0 code="*111#" session="" cancel=false`, `ussd modem0 code="1" session="ussd_1" cancel=false`,
		`ussd modem0 code="" session="ussd_1" cancel=true`}
	if got := e.modems.actions; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantStatus(t, e.do("GET", "/healthz", "", nil), http.StatusOK)
	wantStatus(t, e.do("GET", "/readyz", "", nil), http.StatusOK)
	e.modems.Disable("modem0")
	wantStatus(t, e.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable, "unavailable")
	e.modems.Enable("modem0")
	e.db.Close()
	wantStatus(t, e.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable, "unavailable")
}

// TestOpenAPI checks that the document and the router list the same
// routes.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, envOpts{})
	r := e.do("GET", "/v1/openapi.json", "", nil)
	wantStatus(t, r, http.StatusOK)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routed := map[string]bool{}
	err := e.srv.Handler().(*mux.Router).Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			return err
		}
		for _, m := range methods {
			routed[m+" "+path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for r := range routed {
		if !documented[r] {
			t.Errorf("%s is routed but not documented", r)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("%s is documented but not routed", d)
		}
	}
	if len(routed) < 18 {
		t.Fatalf("only %d routes", len(routed))
	}
}

func TestNewAPIKey(t *testing.T) {
	key, k, err := api.NewAPIKey("ci", []simgate.Scope{simgate.ScopeSend})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "sg_") || len(key) < 3+22 { // 22 base64 characters are 128 bits
		t.Fatalf("key %q too short", key)
	}
	if len(k.Hash) != 32 || !strings.HasPrefix(key, k.Prefix) || len(k.Prefix) >= len(key)/2 {
		t.Fatalf("record %+v", k)
	}
	key2, _, _ := api.NewAPIKey("ci", []simgate.Scope{simgate.ScopeSend})
	if key == key2 {
		t.Fatal("two keys alike")
	}
	if _, _, err := api.NewAPIKey("ci", nil); err == nil {
		t.Fatal("a key without scopes")
	}
}

// With too few modems ready, /readyz says why: each modem that takes no
// sends with its state and reason, in the detail and in a modems list.
func TestReadyzSaysWhy(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.modems.mu.Lock()
	e.modems.modems[0].State, e.modems.modems[0].Reason = simgate.ModemDown, "serial port closed"
	e.modems.mu.Unlock()
	r := e.do("GET", "/readyz", "", nil)
	wantStatus(t, r, http.StatusServiceUnavailable, "unavailable")
	var body struct {
		Detail string `json:"detail"`
		Modems []struct {
			ID, State, Reason string
		} `json:"modems"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if got, want := body.Detail, "0 modems ready, need 1: modem0 down (serial port closed); modem1 down (no SIM)"; got != want {
		t.Fatalf("detail %q, want %q", got, want)
	}
	if got, want := fmt.Sprint(body.Modems), "[{modem0 down serial port closed} {modem1 down no SIM}]"; got != want {
		t.Fatalf("modems %s, want %s", got, want)
	}

	e.modems.Enable("modem0")
	r = e.do("GET", "/readyz", "", nil)
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.body), "modem1") {
		t.Fatalf("ready body names modems: %s", r.body)
	}
}

// TestOpenAPIWebhookEvents: the document lists every webhook event type.
func TestOpenAPIWebhookEvents(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				WebhookDelivery struct {
					Properties struct {
						EventType struct {
							Enum []string `json:"enum"`
						} `json:"event_type"`
					} `json:"properties"`
				} `json:"WebhookDelivery"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.Components.Schemas.WebhookDelivery.Properties.EventType.Enum; !slices.Equal(got, simgate.EventTypes) {
		t.Fatalf("WebhookDelivery.event_type lists %v, want simgate.EventTypes %v", got, simgate.EventTypes)
	}
}
