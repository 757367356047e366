package simgate

import (
	"context"
	"time"
)

// MessageState is where a message and its parts are: what the queue's rules
// read before they move a message on.
type MessageState struct {
	ID     string
	To     string // E.164, as stored
	Status MessageStatus
	// UpdatedAt is when the message last changed; for one in sending, when
	// it was claimed.
	UpdatedAt time.Time
	// Parts holds the status of each part, in the order of their seq (the
	// first is part 1).
	Parts []MessageStatus
}

// UnsentMessage is a message that no modem was asked to send yet
// (scheduled, accepted or queued), with what decides whether it may still
// be sent. Of the Message, a read fills in ID, To, Text, Priority, Status,
// Attempts, SendAt, ExpiresAt, VerificationID and CreatedAt.
type UnsentMessage struct {
	Message
	// VerificationStatus is the status of the verification the message
	// belongs to: "" when it belongs to none, or that verification no longer
	// exists.
	VerificationStatus VerificationStatus
	// VerificationExpiresAt is that verification's expiry.
	VerificationExpiresAt time.Time
	// WaitingForModem says why the message waits for a modem; "" when it
	// does not.
	WaitingForModem string
	// StickyModem is the modem that sent the newest earlier SMS of the
	// message's verification (a resend sticks to the SIM of the first
	// code); "" when there is none.
	StickyModem string
}

// MessageTx is one write transaction of a store, seen by the queue: plain
// reads and writes of messages, their parts and events, status reports and
// late submit answers, in which the queue's rules (the message state
// machine, queue/state.go and queue/report.go) decide what to do. Every time
// it writes is Now, unless an argument gives one; times are kept to the
// millisecond. A store offers it through a method that runs a function in
// one transaction (store.DB.UpdateMessages).
type MessageTx interface {
	// Now is the time of the transaction.
	Now() time.Time

	// FindMessage returns the message with its parts and its events, oldest
	// first; CodeNotFound when none.
	FindMessage(ctx context.Context, id string) (*Message, error)
	// MessageState returns the status of message id and its parts';
	// CodeNotFound when none.
	MessageState(ctx context.Context, id string) (*MessageState, error)
	// IdempotentMessage returns the id of the message that the API key
	// apiKeyID ("": none) created with the idempotency key key, and the
	// request hash stored with it; CodeNotFound when none.
	IdempotentMessage(ctx context.Context, apiKeyID, key string) (id string, requestHash []byte, err error)
	// OptOut returns the keyword with which number opted out of messages,
	// and whether it did.
	OptOut(ctx context.Context, number string) (keyword string, ok bool, err error)

	// InsertMessage stores m as a new message as it is given: its Status,
	// Reason, Priority, NextAttemptAt, SendAt and the rest, one part per
	// entry of m.Parts with that entry's Status, and one event of m.Status
	// with m.Reason. It sets m.ID, m.CreatedAt and m.UpdatedAt, and m.Parts
	// and m.Events as stored. requestHash is kept with m.IdempotencyKey, and
	// only with one. When ctx carries the reservation of an Idempotency-Key
	// (WithIdempotencyKey), the message is recorded with it. A message
	// without a recipient, a status or a part is CodeInvalid.
	InsertMessage(ctx context.Context, m *Message, requestHash []byte) error

	// NextDueMessage returns the queued message that is due at Now and comes
	// first by priority (highest first), then due time, then creation; nil
	// when none is due. It passes over a message whose StickyModem is one
	// of elsewhere: the modems of other nodes that can send it.
	NextDueMessage(ctx context.Context, elsewhere []string) (*UnsentMessage, error)
	// ExpiredUnsentMessages returns the scheduled, accepted and queued
	// messages whose expiry is at or before Now, or whose verification is
	// missing, not pending, or past its expiry at Now.
	ExpiredUnsentMessages(ctx context.Context) ([]*UnsentMessage, error)
	// DueScheduledMessages returns the scheduled messages whose SendAt is at
	// or before Now.
	DueScheduledMessages(ctx context.Context) ([]*UnsentMessage, error)
	// LeasedMessages returns the ids of the messages in sending whose lease
	// is owner's, has no owner, or expired at or before Now.
	LeasedMessages(ctx context.Context, owner string) ([]string, error)
	// SentMessagesSubmittedBefore returns the ids of up to limit sent
	// messages whose reports are not recorded missing (SetReportsMissing),
	// that last changed at or before before and none of whose parts in sent
	// was submitted after before; the least recently changed first.
	SentMessagesSubmittedBefore(ctx context.Context, before time.Time, limit int) ([]string, error)

	// StartAttempt makes message id sending with reason, counts an attempt
	// and leases it to owner until until. Its queued parts become sending
	// and count an attempt too.
	StartAttempt(ctx context.Context, id, reason, owner string, until time.Time) error
	// RenewLeases moves the lease of every message in sending that owner
	// holds to until, and returns how many it moved: a dispatcher renews
	// its leases while its submits go on, so that a lease outlives only a
	// dispatcher that stopped.
	RenewLeases(ctx context.Context, owner string, until time.Time) (int, error)
	// UndoAttempt makes message id queued, gives back an attempt (not below
	// zero) and drops its lease. Its parts without a message reference in
	// sending or unknown become queued, give back an attempt each and lose
	// their done time.
	UndoAttempt(ctx context.Context, id string) error
	// EndAttempt gives message id status and reason, records modemID as
	// the modem of its last attempt (the one recorded before stays when
	// modemID is ""), makes it due at due (unchanged when due is zero), and
	// drops its lease and its wait for a modem.
	EndAttempt(ctx context.Context, id string, status MessageStatus, reason, modemID string, due time.Time) error
	// SetMessageStatus gives message id status and reason.
	SetMessageStatus(ctx context.Context, id string, status MessageStatus, reason string) error
	// SetReportsMissing records, with reason, that the status reports of
	// message id are missing as of Now.
	SetReportsMissing(ctx context.Context, id, reason string) error
	// DelayDueMessages makes every queued message that is due at Now wait
	// for a modem: reason becomes its reason and what it waits for, and it
	// is due at until. One that did not wait yet gets an event of queued
	// with reason.
	DelayDueMessages(ctx context.Context, until time.Time, reason string) error
	// WakeWaitingMessages makes the queued messages that wait for a modem
	// due at Now, and returns how many it changed.
	WakeWaitingMessages(ctx context.Context) (int, error)
	// QueueDueScheduled makes the scheduled messages whose SendAt is at or
	// before Now queued with reason, with an event each, and returns how
	// many it queued.
	QueueDueScheduled(ctx context.Context, reason string) (int, error)
	// AddMessageEvent records that message id took status, with reason.
	AddMessageEvent(ctx context.Context, id string, status MessageStatus, reason string) error
	// DeleteLastMessageEvent deletes the newest event of message id when it
	// is of status.
	DeleteLastMessageEvent(ctx context.Context, id string, status MessageStatus) error

	// SetPartCount makes message id have n parts: the parts after n are
	// deleted, and the missing ones added with status and attempts.
	SetPartCount(ctx context.Context, id string, n int, status MessageStatus, attempts int) error
	// SetPartsStatus gives the parts of message id from seq from through
	// seq to (through the last when to is 0) status and the done time
	// doneAt (none when zero), and records modemID on them when it is not
	// "".
	SetPartsStatus(ctx context.Context, id string, from, to int, status MessageStatus, modemID string, doneAt time.Time) error
	// SetPartSent records that part seq of message id went out through
	// modemID with the message reference mr at at: it becomes sent.
	SetPartSent(ctx context.Context, id string, seq int, modemID string, mr int, at time.Time) error
	// SetPartReport records the TP-Status tpst of a status report on part
	// seq of message id and, when status is not "", gives the part status
	// and the done time doneAt.
	SetPartReport(ctx context.Context, id string, seq, tpst int, status MessageStatus, doneAt time.Time) error

	// AddUsage counts n SMS that modemID sent, or may have sent, at at: in
	// its total and in its count for that UTC day (the daily usage that caps
	// read).
	AddUsage(ctx context.Context, modemID string, at time.Time, n int) error
	// FailPendingVerification makes the verification that message
	// messageID belongs to failed, and erases its code hash, when it is
	// pending.
	FailPendingVerification(ctx context.Context, messageID string) error

	// FindSubmittedPart returns the part that was submitted through modemID
	// with the message reference mr at a time from from through to, of a
	// message to recipient (compared without a leading '+'; any recipient
	// when ""). Of several, one still in sent comes first, then the newest
	// submit. It returns nil when there is none. The part has its MessageID,
	// Seq and Status.
	FindSubmittedPart(ctx context.Context, modemID string, mr int, recipient string, from, to time.Time) (*Part, error)
	// AddStatusReport stores r, matched to part r.PartSeq of message
	// r.MessageID when they are set, counts it on its modem, and sets r.ID.
	AddStatusReport(ctx context.Context, r *StatusReport) error
	// UnmatchedReports returns the status reports of modemID with the
	// message reference mr, received at or after since and matched to no
	// part, from to or from no recipient (compared without a leading '+'),
	// oldest first.
	UnmatchedReports(ctx context.Context, modemID string, mr int, to string, since time.Time) ([]*StatusReport, error)
	// MatchReport matches the status report reportID to part seq of message
	// messageID.
	MatchReport(ctx context.Context, reportID int64, messageID string, seq int) error
	// AddLateSubmit stores the late submit answer l, matched to no message,
	// and returns its id.
	AddLateSubmit(ctx context.Context, l *LateSubmit) (int64, error)
	// FindUnknownPart returns the id and the recipient of the message to to
	// (compared without a leading '+') whose part seq went to modemID and is
	// unknown without a message reference, given up on (its done time) from
	// from through until; the newest such part's. The id is "" when there
	// is none.
	FindUnknownPart(ctx context.Context, modemID string, seq int, to string, from, until time.Time) (id, recipient string, err error)
	// UnmatchedLateSubmit returns the newest late submit answer of modemID
	// for part seq of a message to to (compared without a leading '+'), at
	// or after since and matched to no message, and its id; nil when none.
	UnmatchedLateSubmit(ctx context.Context, modemID string, seq int, to string, since time.Time) (int64, *LateSubmit, error)
	// MatchLateSubmit matches the late submit answer lateID to message
	// messageID.
	MatchLateSubmit(ctx context.Context, lateID int64, messageID string) error
}
