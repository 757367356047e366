package postgres

import (
	"context"
	"testing"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/console"
	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store/storetest"
	"github.com/simgate/simgate/verify"
	"github.com/simgate/simgate/webhook"
)

// The services' store interfaces this store implements in full.
// The PostgreSQL store satisfies every store interface that the services
// and adapters declare.
var (
	_ verify.Store         = (*DB)(nil)
	_ queue.Store          = (*DB)(nil)
	_ modem.UsageStore     = (*DB)(nil)
	_ modem.PINMemory      = (*DB)(nil)
	_ api.KeyStore         = (*DB)(nil)
	_ api.IdempotencyStore = (*DB)(nil)
	_ api.AlertStore       = (*DB)(nil)
	_ api.BudgetStore      = (*DB)(nil)
	_ api.Pinger           = (*DB)(nil)
	_ api.WebhookService   = (*DB)(nil)
	_ api.InboxService     = (*DB)(nil)
	_ webhook.Store        = (*DB)(nil)
	_ metrics.StoreSource  = (*DB)(nil)
	_ console.Sessions     = (*DB)(nil)
	_ console.Keys         = (*DB)(nil)
	_ console.Records      = (*DB)(nil)
	_ console.History      = (*DB)(nil)
	_ console.SampleStore  = (*DB)(nil)
)

// The contract every store backend passes (storetest), on PostgreSQL, for
// the parts this store implements so far.

// opener opens the databases of a contract test: one database per name on
// the test server, new the first time.
func opener(t *testing.T) storetest.Open {
	dsns := map[string]string{}
	return func(t *testing.T, name string, now simgate.Clock) storetest.Store {
		t.Helper()
		dsn, ok := dsns[name]
		if !ok {
			dsn = newDatabase(t)
			dsns[name] = dsn
		}
		db, err := Open(context.Background(), dsn, Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

func TestAPIKeys(t *testing.T)            { storetest.APIKeys(t, opener(t)) }
func TestBudgets(t *testing.T)            { storetest.Budgets(t, opener(t)) }
func TestVerificationTx(t *testing.T)     { storetest.VerificationTx(t, opener(t)) }
func TestSpentVerifications(t *testing.T) { storetest.SpentVerifications(t, opener(t)) }
func TestMissedCallVerifications(t *testing.T) {
	storetest.MissedCallVerifications(t, opener(t))
}
func TestVerificationConcurrentApproval(t *testing.T) {
	storetest.VerificationConcurrentApproval(t, opener(t))
}
func TestVerificationConcurrentStart(t *testing.T) {
	storetest.VerificationConcurrentStart(t, opener(t))
}
func TestUpdateVerificationsWithMessage(t *testing.T) {
	storetest.UpdateVerificationsWithMessage(t, opener(t))
}
func TestAlerts(t *testing.T)                  { storetest.Alerts(t, opener(t)) }
func TestIdempotencyKeys(t *testing.T)         { storetest.IdempotencyKeys(t, opener(t)) }
func TestIdempotencyLease(t *testing.T)        { storetest.IdempotencyLease(t, opener(t)) }
func TestIdempotencyConcurrent(t *testing.T)   { storetest.IdempotencyConcurrent(t, opener(t)) }
func TestConsoleSessions(t *testing.T)         { storetest.ConsoleSessions(t, opener(t)) }
func TestRejectedPINs(t *testing.T)            { storetest.RejectedPINs(t, opener(t)) }
func TestWebhookOutbox(t *testing.T)           { storetest.WebhookOutbox(t, opener(t)) }
func TestWebhookConcurrentClaims(t *testing.T) { storetest.WebhookConcurrentClaims(t, opener(t)) }
func TestVerificationEvents(t *testing.T)      { storetest.VerificationEvents(t, opener(t)) }
func TestInboundCalls(t *testing.T)            { storetest.InboundCalls(t, opener(t)) }
func TestMetricsReads(t *testing.T)            { storetest.MetricsReads(t, opener(t)) }
func TestRollupSamples(t *testing.T)           { storetest.RollupSamples(t, opener(t)) }
func TestRollupPrune(t *testing.T)             { storetest.RollupPrune(t, opener(t)) }
func TestBalances(t *testing.T)                { storetest.Balances(t, opener(t)) }
func TestPingAndRecent(t *testing.T)           { storetest.PingAndRecent(t, opener(t)) }
func TestMessageTxInsert(t *testing.T)         { storetest.MessageTxInsert(t, opener(t)) }
func TestMessageTxAttempts(t *testing.T)       { storetest.MessageTxAttempts(t, opener(t)) }
func TestMessageTxSticky(t *testing.T)         { storetest.MessageTxSticky(t, opener(t)) }
func TestMessageTxParts(t *testing.T)          { storetest.MessageTxParts(t, opener(t)) }
func TestMessageTxQueue(t *testing.T)          { storetest.MessageTxQueue(t, opener(t)) }
func TestMessageTxReports(t *testing.T)        { storetest.MessageTxReports(t, opener(t)) }
func TestMessagesList(t *testing.T)            { storetest.MessagesList(t, opener(t)) }
func TestOptOuts(t *testing.T)                 { storetest.OptOuts(t, opener(t)) }
func TestInboundMessages(t *testing.T)         { storetest.InboundMessages(t, opener(t)) }
func TestConcurrentClaims(t *testing.T)        { storetest.ConcurrentClaims(t, opener(t)) }
func TestRecentInbound(t *testing.T)           { storetest.RecentInbound(t, opener(t)) }
func TestServices(t *testing.T)                { storetest.Services(t, opener(t)) }
func TestAPIKeyServices(t *testing.T)          { storetest.APIKeyServices(t, opener(t)) }
func TestVerificationServices(t *testing.T)    { storetest.VerificationServices(t, opener(t)) }
