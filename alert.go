package simgate

import "time"

// Alert is a security event: a verification that ran out of attempts, a
// number at its failure cap, a velocity limit tripped. An alert never holds
// a code or a key. Alerts are kept in the store and sent as security.alert
// webhooks.
type Alert struct {
	ID      int64
	Kind    string // one of the Alert* kinds
	Subject string // the number or prefix concerned
	Detail  string
	At      time.Time
}

// Alert kinds.
const (
	// The verification service's.
	AlertMaxAttempts   = "verification.max_attempts_reached" // a verification took its last wrong code
	AlertFailureCap    = "number.failure_cap"                // a number reached the failed checks of a day
	AlertSendLimit     = "number.send_limit"                 // a number reached the codes sent in the window
	AlertOwnerNotified = "number.owner_notified"             // the owner was told (at most one a day per number)

	// The API's limits.
	AlertNumberVelocity = "number.velocity"
	AlertPrefixVelocity = "prefix.velocity"
	AlertGlobalBudget   = "global.budget"
)
