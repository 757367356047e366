package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// offsetClock is real time plus an offset the test moves forward, as the
// demo's clock: a verification expires without waiting for it.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// missedCall is a verification as the API shows it, with what this test
// reads.
type missedCall struct {
	ID, Status, Channel string
	CallTo              string `json:"call_to"`
	CodeLength          *int   `json:"code_length"`
	MessageID           string `json:"message_id"`
}

// Verification by missed call through the running daemon, on virtual
// modems: the answer names a SIM of the pool (one that rejects calls, with
// a number read from the SIM), no SMS is sent, a code check is refused,
// calls from another number, to another SIM or with no verification
// change nothing, the call from the number to its SIM is rejected and
// approves it (with its webhook event), and a call after the expiry
// approves nothing.
func TestAppMissedCall(t *testing.T) {
	const secret = "0123456789abcdef"
	h := newHookReceiver(t, secret)
	r := newAppRig(t, 3, func(c *Config) {
		c.Modems[2].Calls = "ignore"
		c.Webhooks.Endpoints = []EndpointConfig{{Name: "ops", URL: h.srv.URL, Secret: secret,
			Events: []string{simgate.EventVerificationApproved, simgate.EventVerificationExpired, simgate.EventCallReceived}}}
	})
	clk := &offsetClock{}
	r.close()
	r.now = clk.Now
	r.open()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The modems show the numbers their SIMs gave (AT+CNUM).
	byNumber := map[string]string{} // modem by number
	status, body := r.do("GET", "/v1/modems", r.sender, nil)
	var list struct{ Modems []struct{ ID, Number string } }
	if err := json.Unmarshal(body, &list); status != http.StatusOK || err != nil || len(list.Modems) != 3 {
		t.Fatalf("GET /v1/modems: %d %s", status, body)
	}
	for i, m := range list.Modems {
		if want := r.mods[i].Config().Number; m.Number != want {
			t.Fatalf("modem %s shows number %q, want its SIM's %s", m.ID, m.Number, want)
		}
		byNumber[m.Number] = m.ID
	}
	start := func(to string, ttl string) missedCall {
		t.Helper()
		req := map[string]any{"to": to, "channel": "missed_call"}
		if ttl != "" {
			req["ttl"] = ttl
		}
		status, body := r.do("POST", "/v1/verifications", r.sender, req)
		var v missedCall
		if err := json.Unmarshal(body, &v); status != http.StatusCreated || err != nil {
			t.Fatalf("POST /v1/verifications: %d %s", status, body)
		}
		if v.Channel != "missed_call" || v.CodeLength != nil || v.MessageID != "" || v.Status != "pending" {
			t.Fatalf("started: %s", body)
		}
		if m := byNumber[v.CallTo]; m == "" || m == r.cfg.Modems[2].Name {
			t.Fatalf("call_to %s is not a SIM that rejects calls (%v)", v.CallTo, byNumber)
		}
		return v
	}
	get := func(id string) missedCall {
		t.Helper()
		status, body := r.do("GET", "/v1/verifications/"+id, r.sender, nil)
		var v missedCall
		if err := json.Unmarshal(body, &v); status != http.StatusOK || err != nil {
			t.Fatalf("GET /v1/verifications/%s: %d %s", id, status, body)
		}
		return v
	}
	// call rings the SIM of number from caller and waits until simgate has
	// rejected it and handed it on: a USSD request through the same modem
	// runs after the call's event was handled on the modem's goroutine.
	call := func(from, number string) {
		t.Helper()
		sim := r.mods[0]
		for _, m := range r.mods {
			if m.Config().Number == number {
				sim = m
			}
		}
		before := len(sim.Calls())
		if err := r.net.Call(from, number); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the call rejected", func() bool {
			cs := sim.Calls()
			return len(cs) == before+1 && cs[before].Rejected
		})
		if cs := sim.Calls(); cs[before].Rings != 1 {
			t.Fatalf("the call rang %d times before it was rejected", cs[before].Rings)
		}
		status, body := r.do("POST", "/v1/modems/"+byNumber[number]+"/ussd", r.admin, map[string]any{"code": "*100#"})
		if status != http.StatusOK {
			t.Fatalf("USSD after the call: %d %s", status, body)
		}
	}
	const caller, other = "+4915123456789", "+4915123456780"
	v := start(caller, "")
	otherSIM := r.mods[0].Config().Number
	if otherSIM == v.CallTo {
		otherSIM = r.mods[1].Config().Number
	}

	status, body = r.do("POST", "/v1/verifications/check", r.sender, map[string]any{"id": v.ID, "code": "123456"})
	if status != http.StatusConflict {
		t.Fatalf("a code check: %d %s, want 409", status, body)
	}
	call(other, v.CallTo)
	if got := get(v.ID); got.Status != "pending" {
		t.Fatalf("after a call from another number: %+v", got)
	}
	call(caller, otherSIM)
	if got := get(v.ID); got.Status != "pending" {
		t.Fatalf("after a call to another SIM: %+v", got)
	}
	call(caller, v.CallTo)
	if got := get(v.ID); got.Status != "approved" || got.CallTo != v.CallTo {
		t.Fatalf("after the call from the number to its SIM: %+v", got)
	}
	waitFor(t, 20*time.Second, "verification.approved", func() bool { return len(h.got(simgate.EventVerificationApproved)) == 1 })
	var approved struct {
		ID string `json:"verification_id"`
	}
	json.Unmarshal(h.got(simgate.EventVerificationApproved)[0].Data, &approved)
	if approved.ID != v.ID {
		t.Fatalf("verification.approved for %q, want %s", approved.ID, v.ID)
	}
	calls, err := r.app.DB.RecentInboundCalls(ctx, time.Time{}, 10)
	if err != nil || len(calls) != 3 {
		t.Fatalf("calls recorded: %+v, %v; want all three", calls, err)
	}
	waitFor(t, 20*time.Second, "call.received for each call", func() bool { return len(h.got(simgate.EventCallReceived)) == 3 })

	// After its expiry a call approves nothing, and the expiry is written.
	late := start(other, "1m")
	clk.Advance(time.Minute + time.Second)
	call(other, late.CallTo)
	if got := get(late.ID); got.Status != "expired" {
		t.Fatalf("after a call past the expiry: %+v", got)
	}
	waitFor(t, 20*time.Second, "verification.expired", func() bool { return len(h.got(simgate.EventVerificationExpired)) == 1 })

	// No SMS went to anyone.
	if subs := r.net.Submissions(); len(subs) != 0 {
		t.Fatalf("SMS sent: %+v", subs)
	}
	if n := len(h.got(simgate.EventVerificationApproved)); n != 1 {
		t.Fatalf("%d verification.approved events, want 1", n)
	}
}
