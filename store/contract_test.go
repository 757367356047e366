package store_test

import (
	"path/filepath"
	"testing"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/storetest"
)

// The contract every store backend passes (storetest), on SQLite.

// opener opens the SQLite databases of a contract test: one file per name
// in the test's directory.
func opener(t *testing.T) storetest.Open {
	dir := t.TempDir()
	return func(t *testing.T, name string, now simgate.Clock) storetest.Store {
		return MustOpenDBAt(t, filepath.Join(dir, name+".db"), store.Options{Now: now})
	}
}

func TestAPIKeys(t *testing.T)        { storetest.APIKeys(t, opener(t)) }
func TestBudgets(t *testing.T)        { storetest.Budgets(t, opener(t)) }
func TestVerificationTx(t *testing.T) { storetest.VerificationTx(t, opener(t)) }
func TestVerificationConcurrentApproval(t *testing.T) {
	storetest.VerificationConcurrentApproval(t, opener(t))
}
func TestVerificationConcurrentStart(t *testing.T) {
	storetest.VerificationConcurrentStart(t, opener(t))
}
func TestUpdateVerificationsWithMessage(t *testing.T) {
	storetest.UpdateVerificationsWithMessage(t, opener(t))
}
func TestAlerts(t *testing.T)            { storetest.Alerts(t, opener(t)) }
func TestMessageTxInsert(t *testing.T)   { storetest.MessageTxInsert(t, opener(t)) }
func TestMessageTxAttempts(t *testing.T) { storetest.MessageTxAttempts(t, opener(t)) }
func TestMessageTxParts(t *testing.T)    { storetest.MessageTxParts(t, opener(t)) }
func TestMessageTxQueue(t *testing.T)    { storetest.MessageTxQueue(t, opener(t)) }
func TestMessageTxReports(t *testing.T)  { storetest.MessageTxReports(t, opener(t)) }
func TestMessagesList(t *testing.T)      { storetest.MessagesList(t, opener(t)) }
func TestOptOuts(t *testing.T)           { storetest.OptOuts(t, opener(t)) }
func TestInboundMessages(t *testing.T)   { storetest.InboundMessages(t, opener(t)) }
func TestConcurrentClaims(t *testing.T)  { storetest.ConcurrentClaims(t, opener(t)) }
