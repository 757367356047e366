package simgate

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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

// VerificationChannel is how a verification proves control of its number.
type VerificationChannel string

// Verification channels.
const (
	// ChannelSMS sends a one-time code by SMS; a check with the code
	// approves the verification.
	ChannelSMS VerificationChannel = "sms"
	// ChannelMissedCall sends nothing: the user calls CallTo, a SIM of the
	// pool, from the verification's number, and that call, rejected
	// unanswered, approves the verification. It proves no more than the
	// caller ID the network presents, which can be spoofed.
	ChannelMissedCall VerificationChannel = "missed_call"
)

// Verification proves control of a number: by a one-time code sent by SMS
// (ChannelSMS), or by a call from the number (ChannelMissedCall). The code
// itself is never stored: CodeHash is HMAC-SHA256 of the verification id and
// the code under a server secret, and is erased once the verification
// leaves pending. A missed-call verification has no code and no hash.
type Verification struct {
	ID     string
	To     string // E.164
	Status VerificationStatus
	// Channel is ChannelSMS or ChannelMissedCall; "" is ChannelSMS
	// (CheckCreate).
	Channel VerificationChannel
	// CallTo and CallModem are, for ChannelMissedCall, the number the user
	// must call (E.164) and the modem whose SIM has it; empty otherwise.
	CallTo    string
	CallModem string
	CodeHash  []byte
	// CodeLength is the length of the code; for ChannelMissedCall, which
	// has none, the configured default, kept because the stores require a
	// length.
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
	// ServiceID is the service the verification belongs to
	// (DefaultServiceID when a request names none).
	ServiceID string
}

// VerificationRef is the verification a request is about, as its caller
// may see it: the one with ID, or else the pending verification of the
// number To in ServiceID ("": the default service). With ID, a ServiceID
// that is given must be the verification's. Services are those the
// caller's API key is limited to (APIKey.Services; empty: every service):
// a verification of another service is not found, the same answer as one
// that does not exist.
type VerificationRef struct {
	ID        string
	To        string
	ServiceID string
	Services  []string
}

// VerificationConflict is the CodeConflict error of a request that a
// verification's status or channel refuses: a check or a cancel of one
// that is no longer pending, a code for one by missed call. It names the
// verification and says what it is, so that an API can answer in its own
// terms (the Twilio surface tells one it deleted from one that had its
// last check).
type VerificationConflict struct {
	Err       *Error
	ID        string
	Status    VerificationStatus
	Channel   VerificationChannel
	ExpiresAt time.Time
}

// Error implements error.
func (e *VerificationConflict) Error() string { return e.Err.Error() }

// Unwrap returns the *Error, so ErrorCode finds CodeConflict.
func (e *VerificationConflict) Unwrap() error { return e.Err }

// Conflict returns the VerificationConflict about v with a formatted
// message.
func (v *Verification) Conflict(format string, args ...any) *VerificationConflict {
	return &VerificationConflict{Err: Errorf(CodeConflict, format, args...), ID: v.ID, Status: v.Status, Channel: v.Channel,
		ExpiresAt: v.ExpiresAt}
}

// CheckCreate checks v before a store creates it
// (VerificationTx.CreateVerification): it needs an id, a number, a
// service, an expiry and at least one attempt; a missed-call verification
// also the number to call and its modem, and no code hash, and an SMS one
// neither of those. An empty Channel becomes ChannelSMS, the channel of
// every verification made before there were others.
func (v *Verification) CheckCreate() error {
	if v.ID == "" || v.To == "" || v.ServiceID == "" || v.ExpiresAt.IsZero() || v.MaxAttempts < 1 {
		return errors.New("cannot create verification: it needs an id, a number, a service, an expiry and at least one attempt")
	}
	if v.Channel == "" {
		v.Channel = ChannelSMS
	}
	switch v.Channel {
	case ChannelSMS:
		if v.CallTo != "" || v.CallModem != "" {
			return errors.New("cannot create verification: an SMS verification has no number to call")
		}
	case ChannelMissedCall:
		if !IsE164(v.CallTo) || v.CallModem == "" || v.CodeHash != nil {
			return errors.New("cannot create verification: a missed-call verification needs the E.164 number to call and its modem, and has no code")
		}
	default:
		return fmt.Errorf("cannot create verification: unknown channel %q", v.Channel)
	}
	return nil
}

// VerificationTx is one write transaction of a store, seen by the
// verification service: plain reads and writes, in which the service's
// rules (limits, resends, attempts, alerts) decide what to do. Every time it
// writes is Now. A store offers it through a method that runs a function in
// one transaction (store.DB.UpdateVerifications).
type VerificationTx interface {
	// Now is the time of the transaction.
	Now() time.Time

	// FindVerification returns the verification with the given id, with its
	// code hash, and the status of its newest SMS; CodeNotFound when none.
	FindVerification(ctx context.Context, id string) (*Verification, MessageStatus, error)
	// PendingVerification returns the newest pending verification of
	// number in the service serviceID, as FindVerification; CodeNotFound
	// when none. A number has at most one pending verification per
	// service: two applications verify their users independently.
	PendingVerification(ctx context.Context, serviceID, number string) (*Verification, MessageStatus, error)
	// SpentVerification returns the newest verification of number in the
	// service serviceID that had its last allowed check
	// (VerificationMaxAttemptsReached) and has not expired; CodeNotFound
	// when none. A check by number finds it when the number has no pending
	// verification, to say that its checks are spent.
	SpentVerification(ctx context.Context, serviceID, number string) (*Verification, error)
	// PendingCallVerification returns the newest pending missed-call
	// verification of number whose CallModem is modemID, of any service;
	// CodeNotFound when none.
	PendingCallVerification(ctx context.Context, number, modemID string) (*Verification, error)
	// CreateVerification stores v, which has its ID, as pending, with one
	// send, created and updated now.
	CreateVerification(ctx context.Context, v *Verification) error
	// ResendVerification replaces the code hash, code length, locale, app
	// name, reference, expiry, number to call and its modem of the
	// verification v.ID, counts a send and sets its updated time. Its
	// channel stays as it is.
	ResendVerification(ctx context.Context, v *Verification) error
	// SetVerificationAttempts writes v.Attempts.
	SetVerificationAttempts(ctx context.Context, v *Verification) error
	// SetVerificationStatus moves the pending verification v to status, with
	// v.ApprovedAt, and erases its code hash; it sets v's status, hash and
	// updated time. It returns CodeConflict when v is no longer pending, so
	// that no verification leaves pending twice.
	SetVerificationStatus(ctx context.Context, v *Verification, status VerificationStatus) error

	// CountSends and CountFailures count the codes sent to number, and the
	// failed checks of its codes, at or after since, with the time of the
	// oldest counted: in every service, so that more services do not mean
	// more SMS to one number, nor more guesses at its codes.
	CountSends(ctx context.Context, number string, since time.Time) (n int, oldest time.Time, err error)
	CountFailures(ctx context.Context, number string, since time.Time) (n int, oldest time.Time, err error)
	// AddSend and AddFailure count one now.
	AddSend(ctx context.Context, number string) error
	AddFailure(ctx context.Context, number string) error

	// CreateAlert records an alert; CreateAlertOnce only when none of the
	// same kind and subject was recorded within period, and reports whether
	// it recorded one.
	CreateAlert(ctx context.Context, kind, subject, detail string) error
	CreateAlertOnce(ctx context.Context, kind, subject, detail string, period time.Duration) (bool, error)

	// CreateMessage stores m as the queue prepared it
	// (queue.Dispatcher.Prepare), its status and its parts' included, as
	// MessageTx.InsertMessage does, and sets its ID.
	CreateMessage(ctx context.Context, m *Message) error
	// CancelQueuedMessages cancels the messages of a verification that no
	// modem was asked to send yet, with reason.
	CancelQueuedMessages(ctx context.Context, verificationID, reason string) error
}
