package storetest

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// OutboxStore is the contract of the webhook outbox (webhook.Store), with
// the writes that make events in every backend so far: alerts, a
// verification's approval, modem states and a low balance.
type OutboxStore interface {
	SetWebhookSubscriptions(ctx context.Context, types []string) error
	FanOutWebhookEvents(ctx context.Context, subscribers map[string][]string, limit int) (int, error)
	ClaimWebhookDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*simgate.WebhookAttempt, error)
	FinishWebhookDeliveries(ctx context.Context, os []simgate.WebhookOutcome) error
	ListWebhookDeliveries(ctx context.Context, f simgate.DeliveryFilter) ([]*simgate.WebhookDelivery, string, error)
	PurgeWebhookEvents(ctx context.Context, before time.Time) (int64, error)
	RecordModemState(ctx context.Context, modemID string, up bool, data any) (bool, error)
	RecordBalanceLow(ctx context.Context, data any) (bool, error)
	CreateAlert(ctx context.Context, kind, subject, detail string) error
	UpdateVerifications(ctx context.Context, fn func(simgate.VerificationTx) error) error
}

// everything subscribes the endpoint "ep" to every type but except.
func everything(except ...string) map[string][]string {
	subs := map[string][]string{}
	for _, typ := range simgate.EventTypes {
		if !strings.Contains(strings.Join(except, " "), typ) {
			subs[typ] = []string{"ep"}
		}
	}
	return subs
}

// FanOutOneByOne fans the outbox out one event at a time, oldest first, to
// subs, and claims the delivery each makes. It returns the type of each
// event in order, as its delivery shows it ("-" for an event that no
// endpoint takes, which is deleted), and the claimed deliveries.
func FanOutOneByOne(t *testing.T, db OutboxStore, subs map[string][]string) ([]string, []*simgate.WebhookAttempt) {
	t.Helper()
	ctx := context.Background()
	var types []string
	var claimed []*simgate.WebhookAttempt
	for {
		n, err := db.FanOutWebhookEvents(ctx, subs, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return types, claimed
		}
		as, err := db.ClaimWebhookDeliveries(ctx, 100, time.Minute)
		if err != nil || len(as) > 1 {
			t.Fatalf("claim after one event: %d, %v", len(as), err)
		}
		if len(as) == 0 {
			types = append(types, "-")
			continue
		}
		types = append(types, as[0].Event.Type)
		claimed = append(claimed, as[0])
	}
}

// WebhookOutbox checks the outbox: events only of subscribed types, in the
// order of the changes, one delivery per subscribed endpoint, a claim that
// leases the delivery and counts the attempt, outcomes, the list of
// deliveries with its pages, and a purge that keeps what is pending.
func WebhookOutbox(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[OutboxStore](t, open(t, "outbox", clk.Now))

	// Nothing is recorded before an endpoint subscribes.
	if err := db.CreateAlert(ctx, simgate.AlertNumberVelocity, "+4915123456789", "before"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.FanOutWebhookEvents(ctx, everything(), 100); err != nil || n != 0 {
		t.Fatalf("fan-out without subscriptions: %d, %v", n, err)
	}
	if err := db.SetWebhookSubscriptions(ctx, []string{"no.such"}); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("an unknown type: %v, want invalid", err)
	}
	if err := db.SetWebhookSubscriptions(ctx, simgate.EventTypes); err != nil {
		t.Fatal(err)
	}

	v := &simgate.Verification{To: "+4915123456789", CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(10 * time.Minute)}
	StartVerification(t, db, v, bytes.Repeat([]byte{9}, 32))
	if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		v.ApprovedAt = tx.Now()
		return tx.SetVerificationStatus(ctx, v, simgate.VerificationApproved)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAlert(ctx, simgate.AlertNumberVelocity, "+4915123456789", "too many"); err != nil {
		t.Fatal(err)
	}
	// A modem first seen up is silent; down, then up, are events; a repeat
	// is not.
	for i, c := range []struct{ up, want bool }{{true, false}, {false, true}, {false, false}, {true, true}} {
		if got, err := db.RecordModemState(ctx, "modem0", c.up, map[string]any{"modem_id": "modem0"}); err != nil || got != c.want {
			t.Fatalf("RecordModemState #%d = %v, %v; want %v", i, got, err, c.want)
		}
	}
	if got, err := db.RecordModemState(ctx, "modem1", false, map[string]any{"modem_id": "modem1"}); err != nil || !got {
		t.Fatalf("a modem first seen down: %v, %v; want an event", got, err)
	}
	if ok, err := db.RecordBalanceLow(ctx, map[string]any{"modem_id": "modem0", "amount": 4.2}); err != nil || !ok {
		t.Fatalf("RecordBalanceLow = %v, %v", ok, err)
	}

	types, claimed := FanOutOneByOne(t, db, everything(simgate.EventModemUp))
	want := "verification.approved security.alert modem.down - modem.down modem.balance_low"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("events %q, want %q (- : an event no endpoint takes, deleted)", got, want)
	}
	for _, a := range claimed {
		if a.Delivery.Attempts != 1 || a.Delivery.Endpoint != "ep" || !strings.HasPrefix(a.Event.ID, "evt_") {
			t.Errorf("claimed %+v", a.Delivery)
		}
		if a.Event.Type == simgate.EventModemBalanceLow && !strings.Contains(string(a.Event.Data), `"amount":4.2`) {
			t.Errorf("balance_low data %s", a.Event.Data)
		}
	}
	// Leased: not due again until the lease ends.
	if again, err := db.ClaimWebhookDeliveries(ctx, 100, time.Minute); err != nil || len(again) != 0 {
		t.Fatalf("claimed again during the lease: %d, %v", len(again), err)
	}
	var outs []simgate.WebhookOutcome
	for i, a := range claimed {
		o := simgate.WebhookOutcome{EventID: a.Event.ID, Endpoint: "ep", Status: simgate.DeliveryDelivered}
		if i == 0 {
			o.Status, o.Error, o.NextAttemptAt = simgate.DeliveryPending, "HTTP 500", clk.Now().Add(time.Hour)
		}
		outs = append(outs, o)
	}
	if err := db.FinishWebhookDeliveries(ctx, outs); err != nil {
		t.Fatal(err)
	}
	ds, _, err := db.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{Status: simgate.DeliveryPending})
	if err != nil || len(ds) != 1 || ds[0].LastError != "HTTP 500" || ds[0].Attempts != 1 || !ds[0].NextAttemptAt.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("pending list %+v, %v", ds, err)
	}
	page1, next, err := db.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{Limit: 3})
	if err != nil || len(page1) != 3 || next == "" {
		t.Fatalf("page 1: %d, %q, %v", len(page1), next, err)
	}
	page2, next, err := db.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{Limit: 3, Cursor: next})
	if err != nil || len(page2) != 2 || next != "" {
		t.Fatalf("page 2: %d, %q, %v", len(page2), next, err)
	}
	if _, _, err := db.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{Status: "bogus"}); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("bad status: %v", err)
	}
	if _, _, err := db.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{Cursor: "!!"}); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("bad cursor: %v", err)
	}

	// Purge keeps the pending one.
	clk.Advance(8 * 24 * time.Hour)
	if n, err := db.PurgeWebhookEvents(ctx, clk.Now().Add(-7*24*time.Hour)); err != nil || n != 4 {
		t.Fatalf("purged %d, %v; want 4", n, err)
	}
	if ds, _, err := db.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{}); err != nil || len(ds) != 1 {
		t.Fatalf("after purge %d, %v", len(ds), err)
	}
}

// WebhookConcurrentClaims checks that senders claiming at once (on several
// hosts) never claim one delivery twice within its lease.
func WebhookConcurrentClaims(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[OutboxStore](t, open(t, "claims", clk.Now))
	if err := db.SetWebhookSubscriptions(ctx, []string{simgate.EventSecurityAlert}); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := db.CreateAlert(ctx, simgate.AlertNumberVelocity, "+49151234567"+string(rune('0'+i%10)), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.FanOutWebhookEvents(ctx, everything(), 100); err != nil || n != 40 {
		t.Fatalf("fan-out: %d, %v", n, err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				as, err := db.ClaimWebhookDeliveries(ctx, 3, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(as) == 0 {
					return
				}
				mu.Lock()
				for _, a := range as {
					seen[a.Event.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Fatalf("claimed %d deliveries, want 40", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery of %s claimed %d times", id, n)
		}
	}
}

// VerificationEventStore is the outbox with the services whose
// verifications its events name.
type VerificationEventStore interface {
	OutboxStore
	CreateService(ctx context.Context, s *simgate.Service) error
}

// VerificationEvents checks the data of the verification.* events, key by
// key and in order, so that both stores write the same text: each names its
// verification's service and channel, for an SMS verification and a
// missed-call one, in a service and in the default service.
func VerificationEvents(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[VerificationEventStore](t, open(t, "verevents", clk.Now))
	if err := db.SetWebhookSubscriptions(ctx, simgate.EventTypes); err != nil {
		t.Fatal(err)
	}
	shop := &simgate.Service{FriendlyName: "Shop"}
	if err := db.CreateService(ctx, shop); err != nil {
		t.Fatal(err)
	}
	const number, callTo = "+4915123456789", "+4917011111111"
	sms := func(service string) *simgate.Verification {
		return &simgate.Verification{To: number, ServiceID: service, CodeLength: 6, MaxAttempts: 3, Reference: "r1",
			ExpiresAt: clk.Now().Add(10 * time.Minute)}
	}
	call := func(service string) *simgate.Verification {
		return &simgate.Verification{To: number, ServiceID: service, Channel: simgate.ChannelMissedCall, CallTo: callTo,
			CallModem: "sim0", CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(10 * time.Minute)}
	}
	cases := []struct {
		v      *simgate.Verification
		status simgate.VerificationStatus
	}{
		{sms(shop.ID), simgate.VerificationApproved},
		{call(shop.ID), simgate.VerificationExpired},
		{sms(simgate.DefaultServiceID), simgate.VerificationMaxAttemptsReached},
		{sms(simgate.DefaultServiceID), simgate.VerificationFailed},
		{call(simgate.DefaultServiceID), simgate.VerificationApproved},
	}
	var want []string
	for _, c := range cases {
		var hash []byte
		if c.v.Channel != simgate.ChannelMissedCall {
			hash = bytes.Repeat([]byte{1}, 32)
		}
		StartVerification(t, db, c.v, hash)
		created := clk.Now().UTC().Format("2006-01-02T15:04:05.000Z")
		clk.Advance(1500 * time.Millisecond)
		if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
			if c.status == simgate.VerificationApproved {
				c.v.ApprovedAt = tx.Now()
			}
			return tx.SetVerificationStatus(ctx, c.v, c.status)
		}); err != nil {
			t.Fatal(err)
		}
		want = append(want, `{"verification_id":"`+c.v.ID+`","service":"`+c.v.ServiceID+`","channel":"`+string(c.v.Channel)+
			`","to":"`+number+`","status":"`+string(c.status)+`","reference":"`+c.v.Reference+`","attempts":0,"send_count":1,`+
			`"message_id":null,"created_at":"`+created+`","updated_at":"`+clk.Now().UTC().Format("2006-01-02T15:04:05.000Z")+`"}`)
	}

	_, claimed := FanOutOneByOne(t, db, everything())
	if len(claimed) != len(cases) {
		t.Fatalf("%d events, want %d", len(claimed), len(cases))
	}
	for i, a := range claimed {
		if got, wantType := a.Event.Type, "verification."+string(cases[i].status); got != wantType {
			t.Errorf("event %d is %s, want %s", i, got, wantType)
		}
		if got := string(a.Event.Data); got != want[i] {
			t.Errorf("event %d (%s) data\n%s\nwant\n%s", i, a.Event.Type, got, want[i])
		}
	}
}
