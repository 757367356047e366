package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// TestAppScheduledSendRestart: a message scheduled through the API, with
// simgate restarted before its send_at, reaches the virtual modem at its
// time, not before. The sweep runs hourly here, so only the dispatcher's
// timer, armed again at start, can have sent it.
func TestAppScheduledSendRestart(t *testing.T) {
	r := newAppRig(t, 1, func(c *Config) { c.Queue.SweepInterval = time.Hour })
	at := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
	status, body := r.do("POST", "/v1/messages", r.sender, map[string]any{
		"to": "+4915123456701", "text": "scheduled across a restart", "send_at": at.Format(time.RFC3339Nano)})
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/messages: %d %s", status, body)
	}
	var m struct{ ID, Status, SendAt string }
	json.Unmarshal(body, &m)
	if m.Status != string(simgate.StatusScheduled) {
		t.Fatalf("created %s, want scheduled", body)
	}

	r.close()
	r.open()
	restarted := time.Now()
	if !restarted.Before(at) {
		t.Skipf("the restart took until %v after send_at; the timer was not what sent it", restarted.Sub(at))
	}
	waitFor(t, 20*time.Second, "the message sent", func() bool {
		s := r.messageStatus(m.ID)
		return s == simgate.StatusSent || s == simgate.StatusDelivered
	})
	subs := r.net.Submissions()
	if len(subs) != 1 {
		t.Fatalf("%d submissions, want 1", len(subs))
	}
	if subs[0].Received.Before(at) {
		t.Fatalf("the modem had the message %v before its send_at", at.Sub(subs[0].Received))
	}
	t.Logf("restarted %v before send_at; the modem had the message %v after it", at.Sub(restarted), subs[0].Received.Sub(at))
}
