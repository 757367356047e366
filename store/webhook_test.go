package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/storetest"
)

// claimMessage claims the next message as the queue does (queue.Claim), for
// node n1 with a one-minute lease.
func claimMessage(ctx context.Context, db *store.DB) (*simgate.Message, error) {
	var m *simgate.Message
	err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		var err error
		m, err = queue.Claim(ctx, tx, "n1", time.Minute, nil)
		return err
	})
	return m, err
}

// finishSend records the outcome of a send as the queue does (queue.Finish).
func finishSend(ctx context.Context, db *store.DB, id string, o simgate.SendOutcome) error {
	return db.UpdateMessages(ctx, func(tx simgate.MessageTx) error { return queue.Finish(ctx, tx, id, o) })
}

// recordReport records a status report as the queue does
// (queue.RecordReport), with a one-hour window.
func recordReport(ctx context.Context, db *store.DB, r *simgate.StatusReport) error {
	return db.UpdateMessages(ctx, func(tx simgate.MessageTx) error { return queue.RecordReport(ctx, tx, r, time.Hour) })
}

// The triggers write one event per reported change, in the change's
// transaction; data never holds an SMS text or a code hash; fan-out creates
// deliveries only for subscribed types and drops the rest; the status counts
// follow the rows.
func TestWebhookOutbox(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	if err := db.SetWebhookSubscriptions(ctx, simgate.EventTypes); err != nil {
		t.Fatal(err)
	}

	// A verification and its SMS, which is sent, then delivered.
	v := &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(10 * time.Minute)}
	storetest.StartVerification(t, db, v, bytes.Repeat([]byte{9}, 32))
	m := newMessage(v.To, "Your code is 904172", 1)
	m.VerificationID = v.ID
	if err := createMessage(ctx, db, m); err != nil {
		t.Fatal(err)
	}
	claimed, err := claimMessage(ctx, db)
	if err != nil || claimed == nil {
		t.Fatal(claimed, err)
	}
	if err := finishSend(ctx, db, m.ID, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "modem0", MRs: []int{7}, SentAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	r := &simgate.StatusReport{ModemID: "modem0", MR: 7, Recipient: v.To, TPST: 0}
	if err := recordReport(ctx, db, r); err != nil || r.MessageID != m.ID {
		t.Fatal(r, err)
	}
	if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		v.ApprovedAt = tx.Now()
		return tx.SetVerificationStatus(ctx, v, simgate.VerificationApproved)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAlert(ctx, "number.velocity", "+4915123456789", "too many"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateInboundMessage(ctx, &simgate.InboundMessage{ModemID: "modem0", From: "+4915123456789", Text: "STOP"}); err != nil {
		t.Fatal(err)
	}
	// Modem state: first seen up is silent, down then up are events, a
	// repeat is not.
	for i, c := range []struct {
		up   bool
		want bool
	}{{true, false}, {false, true}, {false, false}, {true, true}} {
		if got, err := db.RecordModemState(ctx, "modem0", c.up, map[string]any{"modem_id": "modem0"}); err != nil || got != c.want {
			t.Fatalf("RecordModemState #%d = %v, %v; want %v", i, got, err, c.want)
		}
	}

	if ok, err := db.RecordBalanceLow(ctx, map[string]any{"modem_id": "modem0", "amount": 4.2}); err != nil || !ok {
		t.Fatalf("RecordBalanceLow = %v, %v", ok, err)
	}
	call := &simgate.InboundCall{ModemID: "modem0", From: "+4917612345678", Rejected: true}
	if err := db.CreateInboundCall(ctx, call); err != nil || call.ID == 0 {
		t.Fatalf("CreateInboundCall: %v (id %d)", err, call.ID)
	}
	if cs, err := db.RecentInboundCalls(ctx, clk.Now().Add(-time.Hour), 10); err != nil || len(cs) != 1 || *cs[0] != *call {
		t.Fatalf("RecentInboundCalls = %+v, %v, want %+v", cs, err, call)
	}

	// Subscribe one endpoint to everything but sms.received.
	subs := map[string][]string{}
	for _, typ := range simgate.EventTypes {
		if typ != simgate.EventSMSReceived {
			subs[typ] = []string{"ep"}
		}
	}
	types, as := storetest.FanOutOneByOne(t, db, subs)
	want := "message.sent message.delivered verification.approved security.alert - modem.down modem.up modem.balance_low call.received"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("events %q, want %q (- : an event no endpoint takes, deleted)", got, want)
	}
	if n, err := db.FanOutWebhookEvents(ctx, subs, 100); err != nil || n != 0 {
		t.Fatalf("second fan-out: %d, %v", n, err)
	}
	if len(as) != 8 {
		t.Fatalf("claimed %d deliveries, want 8", len(as))
	}
	for _, a := range as {
		if d := string(a.Event.Data); strings.Contains(d, "904172") || strings.Contains(d, "code") || (a.Event.Type != simgate.EventSMSReceived && strings.Contains(d, `"text"`)) {
			t.Errorf("%s data %s holds the code", a.Event.Type, a.Event.Data)
		}
		var data map[string]any
		if err := json.Unmarshal(a.Event.Data, &data); err != nil {
			t.Fatal(err)
		}
		if a.Event.Type == simgate.EventMessageDelivered && (data["message_id"] != m.ID || data["verification_id"] != v.ID || data["modem_id"] != "modem0") {
			t.Errorf("message.delivered data %s", a.Event.Data)
		}
		if a.Delivery.Attempts != 1 {
			t.Errorf("attempts %d", a.Delivery.Attempts)
		}
	}
	// The claims' leases, outcomes, the list and the purge are the contract
	// every store passes (storetest.WebhookOutbox, TestWebhookOutboxContract).

	// Status counts follow the rows.
	ms, vs, err := db.StatusCounts(ctx)
	if err != nil || ms[simgate.StatusDelivered] != 1 || ms[simgate.StatusQueued] != 0 || ms[simgate.StatusSending] != 0 || vs[simgate.VerificationApproved] != 1 || vs[simgate.VerificationPending] != 0 {
		t.Fatalf("status counts %v %v %v", ms, vs, err)
	}
}

// The outbox records only the event types some endpoint subscribes to: none
// at all without subscriptions, and the set is replaced, not added to.
func TestWebhookSubscriptions(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	everything := map[string][]string{}
	for _, typ := range simgate.EventTypes {
		everything[typ] = []string{"ep"}
	}
	fanOut := func() string {
		t.Helper()
		types, _ := storetest.FanOutOneByOne(t, db, everything)
		return strings.Join(types, " ")
	}
	// One message sent and delivered, an alert, an inbound SMS and a modem
	// going down and up: each a change some event type reports.
	changes := func(mr int, subscribed ...string) {
		t.Helper()
		m := newMessage("+4915123456789", "hello", 1)
		if err := createMessage(ctx, db, m); err != nil {
			t.Fatal(err)
		}
		if c, err := claimMessage(ctx, db); err != nil || c == nil {
			t.Fatal(c, err)
		}
		if err := finishSend(ctx, db, m.ID, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "modem0", MRs: []int{mr}, SentAt: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := recordReport(ctx, db, &simgate.StatusReport{ModemID: "modem0", MR: mr, Recipient: m.To}); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateAlert(ctx, "number.velocity", m.To, "too many"); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateInboundMessage(ctx, &simgate.InboundMessage{ModemID: "modem0", From: m.To, Text: "hi"}); err != nil {
			t.Fatal(err)
		}
		for _, up := range []bool{false, true} {
			typ := simgate.EventModemDown
			if up {
				typ = simgate.EventModemUp
			}
			written, err := db.RecordModemState(ctx, "modem0", up, map[string]any{"modem_id": "modem0"})
			if err != nil {
				t.Fatal(err)
			}
			if want := slices.Contains(subscribed, typ); written != want {
				t.Fatalf("RecordModemState(%s) wrote an event: %v, want %v", typ, written, want)
			}
		}
	}

	changes(1)
	if got := fanOut(); got != "" {
		t.Fatalf("without subscriptions the outbox has %q, want nothing", got)
	}
	if err := db.SetWebhookSubscriptions(ctx, []string{simgate.EventMessageDelivered, simgate.EventModemUp}); err != nil {
		t.Fatal(err)
	}
	changes(2, simgate.EventMessageDelivered, simgate.EventModemUp)
	if got, want := fanOut(), "message.delivered modem.up"; got != want {
		t.Fatalf("subscribed to message.delivered and modem.up, the outbox has %q, want %q", got, want)
	}
	if err := db.SetWebhookSubscriptions(ctx, []string{simgate.EventSecurityAlert, simgate.EventSecurityAlert}); err != nil {
		t.Fatal(err)
	}
	changes(3, simgate.EventSecurityAlert)
	if got, want := fanOut(), "security.alert"; got != want {
		t.Fatalf("after replacing the set, the outbox has %q, want %q", got, want)
	}
	if err := db.SetWebhookSubscriptions(ctx, []string{"message.bogus"}); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("unknown type: %v, want %s", err, simgate.CodeInvalid)
	}
}
