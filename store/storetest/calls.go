package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// CallStore is the contract of the calls modems receive (the missed-call
// channel's source), with the outbox that reports them.
type CallStore interface {
	CreateInboundCall(ctx context.Context, c *simgate.InboundCall) error
	RecentInboundCalls(ctx context.Context, since time.Time, limit int) ([]*simgate.InboundCall, error)
	SetWebhookSubscriptions(ctx context.Context, types []string) error
	FanOutWebhookEvents(ctx context.Context, subscribers map[string][]string, limit int) (int, error)
	ClaimWebhookDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*simgate.WebhookAttempt, error)
}

// InboundCalls checks that a call is recorded with its time and an id,
// listed newest first within since and limit, refused without a modem, and
// reported as a call.received event.
func InboundCalls(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[CallStore](t, open(t, "calls", clk.Now))
	if err := db.SetWebhookSubscriptions(ctx, []string{simgate.EventCallReceived}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateInboundCall(ctx, &simgate.InboundCall{From: "+4917612345678"}); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("a call without a modem: %v, want invalid", err)
	}
	first := &simgate.InboundCall{ModemID: "m0", From: "+4917612345678", Rejected: true}
	if err := db.CreateInboundCall(ctx, first); err != nil || first.ID == 0 || !first.At.Equal(clk.Now()) {
		t.Fatalf("first call: %+v, %v", first, err)
	}
	clk.Advance(time.Minute)
	second := &simgate.InboundCall{ModemID: "m1", From: ""}
	if err := db.CreateInboundCall(ctx, second); err != nil || second.ID <= first.ID {
		t.Fatalf("second call: %+v, %v", second, err)
	}
	got, err := db.RecentInboundCalls(ctx, clk.Now().Add(-time.Hour), 10)
	if err != nil || len(got) != 2 || *got[0] != *second || *got[1] != *first {
		t.Fatalf("recent calls = %+v, %v; want the second, then the first", got, err)
	}
	if got, err := db.RecentInboundCalls(ctx, clk.Now(), 10); err != nil || len(got) != 1 || got[0].ID != second.ID {
		t.Fatalf("calls since the second = %+v, %v", got, err)
	}
	if got, err := db.RecentInboundCalls(ctx, time.Time{}, 1); err != nil || len(got) != 1 {
		t.Fatalf("one call = %+v, %v", got, err)
	}
	if n, err := db.FanOutWebhookEvents(ctx, everything(), 100); err != nil || n != 2 {
		t.Fatalf("fan-out: %d, %v; want the two calls' events", n, err)
	}
	as, err := db.ClaimWebhookDeliveries(ctx, 10, time.Minute)
	if err != nil || len(as) != 2 || as[0].Event.Type != simgate.EventCallReceived {
		t.Fatalf("deliveries %d, %v", len(as), err)
	}
}

// MetricsStore is the contract of what metrics read (metrics.StoreSource).
type MetricsStore interface {
	StatusCounts(ctx context.Context) (map[simgate.MessageStatus]int, map[simgate.VerificationStatus]int, error)
	OldestQueued(ctx context.Context) (map[simgate.Priority]time.Time, error)
	WebhookBacklog(ctx context.Context) (pending map[string]int, undispatched int, err error)
	UpdateVerifications(ctx context.Context, fn func(simgate.VerificationTx) error) error
	CreateAlert(ctx context.Context, kind, subject, detail string) error
	SetWebhookSubscriptions(ctx context.Context, types []string) error
	FanOutWebhookEvents(ctx context.Context, subscribers map[string][]string, limit int) (int, error)
}

// MetricsReads checks the counts metrics read: statuses kept by the schema
// as rows change, the oldest queued message of each priority, and the
// webhook backlog.
func MetricsReads(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[MetricsStore](t, open(t, "metrics", clk.Now))
	if err := db.SetWebhookSubscriptions(ctx, []string{simgate.EventSecurityAlert, simgate.EventVerificationApproved}); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	var vs []*simgate.Verification
	for i, to := range []string{"+4915123456781", "+4915123456782", "+4915123456783"} {
		v := &simgate.Verification{To: to, CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(time.Hour), ServiceID: simgate.DefaultServiceID}
		if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
			v.ID, v.CodeHash = simgate.NewID("ver", tx.Now()), make([]byte, 32)
			if err := tx.CreateVerification(ctx, v); err != nil {
				return err
			}
			m := &simgate.Message{To: to, Text: "code", Status: simgate.StatusQueued, Reason: "accepted",
				Priority: simgate.PriorityVerification, VerificationID: v.ID, ExpiresAt: v.ExpiresAt,
				Parts: []simgate.Part{{Status: simgate.StatusQueued, MR: -1}}}
			if i == 2 {
				m.Priority = simgate.PriorityNormal
			}
			return tx.CreateMessage(ctx, m)
		}); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
		clk.Advance(time.Second)
	}
	if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		vs[0].ApprovedAt = tx.Now()
		return tx.SetVerificationStatus(ctx, vs[0], simgate.VerificationApproved)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAlert(ctx, simgate.AlertNumberVelocity, "+4915123456781", "x"); err != nil {
		t.Fatal(err)
	}
	ms, vcounts, err := db.StatusCounts(ctx)
	if err != nil || ms[simgate.StatusQueued] != 3 || vcounts[simgate.VerificationPending] != 2 || vcounts[simgate.VerificationApproved] != 1 {
		t.Fatalf("status counts %v %v, %v", ms, vcounts, err)
	}
	oldest, err := db.OldestQueued(ctx)
	if err != nil || !oldest[simgate.PriorityVerification].Equal(start) || !oldest[simgate.PriorityNormal].Equal(start.Add(2*time.Second)) {
		t.Fatalf("oldest queued %v, %v", oldest, err)
	}
	pending, undispatched, err := db.WebhookBacklog(ctx)
	if err != nil || undispatched != 2 || len(pending) != 0 {
		t.Fatalf("backlog before fan-out: %v %d, %v", pending, undispatched, err)
	}
	if _, err := db.FanOutWebhookEvents(ctx, map[string][]string{simgate.EventSecurityAlert: {"a", "b"}, simgate.EventVerificationApproved: {"a"}}, 100); err != nil {
		t.Fatal(err)
	}
	pending, undispatched, err = db.WebhookBacklog(ctx)
	if err != nil || undispatched != 0 || pending["a"] != 2 || pending["b"] != 1 {
		t.Fatalf("backlog after fan-out: %v %d, %v", pending, undispatched, err)
	}
}
