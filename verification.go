package simgate

import "time"

// VerificationStatus is where a verification is in its life. Only pending
// verifications accept checks.
type VerificationStatus string

// Verification statuses.
const (
	VerificationPending            VerificationStatus = "pending"
	VerificationApproved           VerificationStatus = "approved"
	VerificationCanceled           VerificationStatus = "canceled"
	VerificationExpired            VerificationStatus = "expired"
	VerificationMaxAttemptsReached VerificationStatus = "max_attempts_reached"
	VerificationFailed             VerificationStatus = "failed" // SMS undeliverable
)

// Verification is a one-time code sent by SMS to prove control of a number.
// The code itself is never stored: CodeHash is HMAC-SHA256 of the verification
// id and the code under a server secret, and is erased once the verification
// leaves pending.
type Verification struct {
	ID          string
	To          string // E.164
	Status      VerificationStatus
	CodeHash    []byte
	CodeLength  int
	Locale      string
	AppName     string
	Reference   string // the caller's own tag, at most 128 characters
	Attempts    int    // failed checks so far
	MaxAttempts int
	SendCount   int
	MessageID   string // the last SMS sent for it
	APIKeyID    string
	ExpiresAt   time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ApprovedAt  time.Time
}
