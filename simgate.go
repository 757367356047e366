// Package simgate holds the domain types that simgate's parts share: messages
// and their parts, status reports, verifications and their services, modem
// identity and status, inbound messages and API keys, and the error codes
// every layer speaks.
//
// The packages below it are adapters named for what they wrap: store
// (SQLite), modem (serial ports and AT commands), queue (dispatch), api
// (HTTP). They do not import each other; cmd/simgate wires them together.
package simgate

import "time"

// Version is the simgate release, set at build time with
// -ldflags "-X github.com/simgate/simgate.Version=v1.2.3".
var Version = "dev"

// Priority orders outbound traffic: higher goes first.
type Priority int

// Priorities, lowest first. Verification codes go before all other traffic.
const (
	PriorityLow          Priority = 10
	PriorityNormal       Priority = 20
	PriorityHigh         Priority = 30
	PriorityVerification Priority = 40
)

// ParsePriority turns the API's priority name into a Priority.
func ParsePriority(s string) (Priority, error) {
	switch s {
	case "low":
		return PriorityLow, nil
	case "", "normal":
		return PriorityNormal, nil
	case "high":
		return PriorityHigh, nil
	}
	return 0, Errorf(CodeInvalid, "priority %q is not one of low, normal, high", s)
}

// String returns the API name of p.
func (p Priority) String() string {
	switch p {
	case PriorityLow:
		return "low"
	case PriorityNormal:
		return "normal"
	case PriorityHigh:
		return "high"
	case PriorityVerification:
		return "verification"
	}
	return "unknown"
}

// Clock returns the current time. Components take one so tests can move time
// instead of sleeping.
type Clock func() time.Time
