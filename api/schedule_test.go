package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// POST /v1/messages with send_at schedules the message, through the real
// dispatcher: it is shown scheduled with its send_at, listed by that
// status, and can be canceled.
func TestScheduledMessage(t *testing.T) {
	e, h := newQueueEnv(t)
	key := e.key(simgate.ScopeSend, simgate.ScopeRead)
	at := e.clock.Now().Add(time.Hour).Format(time.RFC3339)
	r := e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": "later", "send_at": at})
	wantStatus(t, r, http.StatusCreated)
	m := r.json(t)
	if m["status"] != "scheduled" || m["send_at"] != at {
		t.Fatalf("created %s, want scheduled with send_at %s", r.body, at)
	}
	id := m["id"].(string)

	r = e.do("GET", "/v1/messages/"+id, key, nil)
	wantStatus(t, r, http.StatusOK)
	if m := r.json(t); m["status"] != "scheduled" || m["send_at"] != at {
		t.Fatalf("GET: %s", r.body)
	}
	r = e.do("POST", "/v1/messages", key, map[string]any{"to": number, "text": "now"})
	wantStatus(t, r, http.StatusCreated)
	if m := r.json(t); m["status"] != "queued" || m["send_at"] != nil {
		t.Fatalf("unscheduled message: %s", r.body)
	}
	r = e.do("GET", "/v1/messages?status=scheduled", key, nil)
	wantStatus(t, r, http.StatusOK)
	if ms := r.json(t)["messages"].([]any); len(ms) != 1 || ms[0].(map[string]any)["id"] != id {
		t.Fatalf("list of scheduled: %s", r.body)
	}

	r = e.do("POST", "/v1/messages/"+id+"/cancel", key, nil)
	wantStatus(t, r, http.StatusOK)
	if m := r.json(t); m["status"] != "canceled" {
		t.Fatalf("cancel: %s", r.body)
	}
	<-h.got // the unscheduled one
	h.mu.Lock()
	defer h.mu.Unlock()
	if got := h.inbox[number]; len(got) != 1 || got[0] != "now" {
		t.Fatalf("handset got %q", got)
	}
}

// send_at that may not be is refused with 400, and the problem says which
// field and why. The same Idempotency-Key with another send_at is another
// request.
func TestScheduledMessage_Invalid(t *testing.T) {
	e, _ := newQueueEnv(t)
	key := e.key(simgate.ScopeSend, simgate.ScopeRead, simgate.ScopeVerify)
	now := e.clock.Now()
	rfc := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	for _, c := range []struct {
		name string
		body map[string]any
		want []string // in the detail
	}{
		{"past", map[string]any{"send_at": rfc(-2 * time.Minute)}, []string{"send_at", "in the past"}},
		{"after expiry", map[string]any{"send_at": rfc(2 * time.Hour), "expires_at": rfc(time.Hour)},
			[]string{"send_at", "expires_at", "would expire before"}},
		{"too far ahead", map[string]any{"send_at": rfc(400 * 24 * time.Hour)}, []string{"send_at", "365 days"}},
		{"not a time", map[string]any{"send_at": "tomorrow"}, []string{"parsing time"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.body["to"], c.body["text"] = number, "x"
			r := e.do("POST", "/v1/messages", key, c.body)
			wantStatus(t, r, http.StatusBadRequest, "invalid")
			detail, _ := r.json(t)["detail"].(string)
			for _, s := range c.want {
				if !strings.Contains(detail, s) {
					t.Errorf("detail %q does not say %q", detail, s)
				}
			}
		})
	}

	// Verifications are never scheduled.
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "send_at": rfc(time.Hour)})
	wantStatus(t, r, http.StatusBadRequest, "invalid")

	body := map[string]any{"to": number, "text": "once", "send_at": rfc(time.Hour)}
	r1 := e.do("POST", "/v1/messages", key, body, "Idempotency-Key", "k1")
	wantStatus(t, r1, http.StatusCreated)
	r2 := e.do("POST", "/v1/messages", key, body, "Idempotency-Key", "k1")
	wantStatus(t, r2, http.StatusCreated)
	if r1.json(t)["id"] != r2.json(t)["id"] || r2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %s, first %s", r2.body, r1.body)
	}
	body["send_at"] = rfc(2 * time.Hour)
	wantStatus(t, e.do("POST", "/v1/messages", key, body, "Idempotency-Key", "k1"), http.StatusUnprocessableEntity)
}
