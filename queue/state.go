package queue

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// The message state machine (simgate.MessageStatus draws it): the functions
// here and in report.go decide which transition a message takes, and make it
// through the plain reads and writes of a simgate.MessageTx, in one
// transaction of the caller's (a store's UpdateMessages). The Dispatcher
// calls them; they take what it would give them (owner, lease, window) as
// arguments, so that they can be run, and tested, on their own.

// ReasonScheduledTimeReached is the reason, and the event, of a scheduled
// message that became queued because its SendAt came.
const ReasonScheduledTimeReached = "scheduled time reached"

// Create stores m, which Enqueue planned, as a new message: queued, or
// scheduled when its SendAt is ahead (admit). When m.IdempotencyKey is set
// and the same API key already used it, nothing is stored: if requestHash
// equals the stored one, *m is replaced by the existing message and created
// is false; otherwise the error has simgate.CodeConflict. A message without
// a verification to a number that opted out is refused with
// simgate.CodeForbidden. When ctx carries the reservation of an
// Idempotency-Key (simgate.WithIdempotencyKey), the store records the
// created message with it.
func Create(ctx context.Context, tx simgate.MessageTx, m *simgate.Message, requestHash []byte) (created bool, err error) {
	if m.IdempotencyKey != "" {
		id, hash, err := tx.IdempotentMessage(ctx, m.APIKeyID, m.IdempotencyKey)
		switch {
		case err == nil && bytes.Equal(hash, requestHash):
			old, err := tx.FindMessage(ctx, id)
			if err != nil {
				return false, err
			}
			*m = *old
			return false, nil
		case err == nil:
			return false, simgate.Errorf(simgate.CodeConflict,
				"idempotency key %q was already used for a different request", m.IdempotencyKey)
		case simgate.ErrorCode(err) != simgate.CodeNotFound:
			return false, err
		}
	}
	if m.VerificationID == "" {
		// An opt-out stops all but verification codes.
		if keyword, ok, err := tx.OptOut(ctx, m.To); err != nil {
			return false, err
		} else if ok {
			return false, simgate.Errorf(simgate.CodeForbidden,
				"%s opted out of messages (replied %s); only verification codes are sent to it until it replies START",
				m.To, keyword)
		}
	}
	admit(m, tx.Now())
	if err := tx.InsertMessage(ctx, m, requestHash); err != nil {
		return false, err
	}
	return true, nil
}

// admit gives the new message m the state it starts in at now: queued, with
// the reason "accepted"; or scheduled when its SendAt, rounded up to the
// millisecond that a store keeps (so that it is never sent early), is after
// now, and then due at its SendAt. Its parts are queued either way (only a
// message is ever scheduled); it has one at least. Its priority defaults to
// normal.
func admit(m *simgate.Message, now time.Time) {
	m.Status, m.Reason = simgate.StatusQueued, "accepted"
	if m.Priority == 0 {
		m.Priority = simgate.PriorityNormal
	}
	if !m.SendAt.IsZero() {
		m.SendAt = ceilMilli(m.SendAt)
		if m.SendAt.After(m.NextAttemptAt) {
			m.NextAttemptAt = m.SendAt
		}
		if m.SendAt.After(now) {
			m.Status = simgate.StatusScheduled
			m.Reason = "scheduled for " + m.SendAt.Format(time.RFC3339Nano)
		}
	}
	if len(m.Parts) == 0 {
		m.Parts = make([]simgate.Part, 1)
	}
	for i := range m.Parts {
		m.Parts[i].Status = simgate.StatusQueued
	}
}

// ceilMilli rounds t up to the millisecond, in UTC: a time a store keeps
// (unix milliseconds) that is never before t.
func ceilMilli(t time.Time) time.Time {
	ms := time.UnixMilli(t.UnixMilli()).UTC()
	if ms.Before(t) {
		ms = ms.Add(time.Millisecond)
	}
	return ms
}

// Claim takes the next message that is due, highest priority first, and
// makes it sending under a lease held by owner for lease: committed before
// any modem is asked, a claim leaves a message in sending after a crash,
// never resent blindly (Recover). Queued messages that may no longer go out
// (stale) are finished on the way, without being sent. It returns nil when
// no message is due. The claimed message's ExpiresAt is when it stops being
// worth sending: the earlier of its own expiry and, for a verification's
// SMS, the verification's (for simgate.SendRequest.NotAfter).
func Claim(ctx context.Context, tx simgate.MessageTx, owner string, lease time.Duration) (*simgate.Message, error) {
	for {
		u, err := tx.NextDueMessage(ctx)
		if err != nil || u == nil {
			return nil, err
		}
		if status, reason := stale(tx.Now(), u); status != "" {
			if err := endUnsent(ctx, tx, u.ID, status, reason); err != nil {
				return nil, err
			}
			continue
		}
		m := u.Message
		if m.VerificationID != "" && !u.VerificationExpiresAt.IsZero() &&
			(m.ExpiresAt.IsZero() || u.VerificationExpiresAt.Before(m.ExpiresAt)) {
			m.ExpiresAt = u.VerificationExpiresAt
		}
		m.Attempts++
		m.Status = simgate.StatusSending
		m.Reason = fmt.Sprintf("attempt %d", m.Attempts)
		if err := tx.StartAttempt(ctx, m.ID, m.Reason, owner, tx.Now().Add(lease)); err != nil {
			return nil, err
		}
		if err := tx.AddMessageEvent(ctx, m.ID, m.Status, m.Reason); err != nil {
			return nil, err
		}
		return &m, nil
	}
}

// stale says whether the unsent message u may no longer be sent at now, and
// what it becomes then, with why: expired past its expiry, or when its
// verification expired (pending past its expiry, or marked expired);
// canceled when its verification no longer exists or is no longer pending.
// The reason of an expiry names the wait of a message that was waiting for
// a modem. It returns "" when u may still be sent.
func stale(now time.Time, u *simgate.UnsentMessage) (simgate.MessageStatus, string) {
	var status simgate.MessageStatus
	var reason string
	vstatus := u.VerificationStatus
	switch {
	case !u.ExpiresAt.IsZero() && !u.ExpiresAt.After(now):
		status, reason = simgate.StatusExpired, "expired before it could be sent"
	case u.VerificationID == "":
		return "", ""
	case vstatus == "":
		return simgate.StatusCanceled, "its verification no longer exists"
	case vstatus == simgate.VerificationExpired || vstatus == simgate.VerificationPending && !u.VerificationExpiresAt.After(now):
		status, reason = simgate.StatusExpired, "its verification expired before it could be sent"
	case vstatus != simgate.VerificationPending:
		return simgate.StatusCanceled, "its verification is " + strings.ReplaceAll(string(vstatus), "_", " ")
	default:
		return "", ""
	}
	if u.WaitingForModem != "" {
		reason += " (" + u.WaitingForModem + ")"
	}
	return status, reason
}

// endUnsent gives a message that no modem was asked to send, and its parts,
// the final status, with reason.
func endUnsent(ctx context.Context, tx simgate.MessageTx, id string, status simgate.MessageStatus, reason string) error {
	if err := tx.SetMessageStatus(ctx, id, status, reason); err != nil {
		return err
	}
	if err := tx.SetPartsStatus(ctx, id, 1, 0, status, "", tx.Now()); err != nil {
		return err
	}
	return ended(ctx, tx, id, status, reason)
}

// ended records that message id took status, with reason, once its own and
// its parts' rows say so. A message that ended failed fails its
// verification while that is pending: its code can no longer arrive.
func ended(ctx context.Context, tx simgate.MessageTx, id string, status simgate.MessageStatus, reason string) error {
	if status == simgate.StatusFailed {
		if err := tx.FailPendingVerification(ctx, id); err != nil {
			return err
		}
	}
	return tx.AddMessageEvent(ctx, id, status, reason)
}

// Finish records the outcome o of a submit of message id (see
// simgate.SendOutcome) and releases its lease. It applies to a message in
// sending, or in unknown when a sweep gave up on it meanwhile (Recover); for
// any other status it does nothing. The modem, not the plan, decides how
// many parts the text took: a sent outcome with another number of message
// references makes the message that many parts. The parts o.ModemID sent, or
// may have sent (the ambiguous one), count in its daily usage, in the same
// transaction, so that the count and the messages agree after a crash. The
// message's status then folds from its parts' (foldParts), but for a retry,
// which queues it until o.RetryAt. Status reports and a late submit answer
// that came before this was recorded are matched now (matchEarlyReports,
// matchEarlyLateSubmit). An o.NoModem outcome was no attempt: see
// waitForModem.
func Finish(ctx context.Context, tx simgate.MessageTx, id string, o simgate.SendOutcome) error {
	st, err := tx.MessageState(ctx, id)
	if err != nil {
		return err
	}
	if st.Status != simgate.StatusSending && st.Status != simgate.StatusUnknown {
		return nil
	}
	if o.NoModem {
		return waitForModem(ctx, tx, id, o)
	}
	now := tx.Now()
	sentAt := o.SentAt
	if sentAt.IsZero() {
		sentAt = now
	}
	nparts := len(st.Parts)
	if o.Status == simgate.StatusSent && len(o.MRs) != nparts && len(o.MRs) > 0 {
		// The parts the claim did not plan went out with it.
		if err := tx.SetPartCount(ctx, id, len(o.MRs), simgate.StatusSending, 1); err != nil {
			return err
		}
		nparts = len(o.MRs)
	}
	// The parts with a reference, and the ambiguous one, count in the
	// modem's usage before they are marked: a status report counts on the
	// modem's row before its part's trigger writes the modem's hour
	// (store/postgres AddStatusReport, SetPartReport), and transactions
	// that run side by side, as on PostgreSQL, must take the two in one
	// order or deadlock.
	rest := len(o.MRs) + 1
	ambiguous := o.Ambiguous && rest <= nparts
	used := len(o.MRs)
	if ambiguous {
		used++
	}
	if used > 0 && o.ModemID != "" {
		if err := tx.AddUsage(ctx, o.ModemID, sentAt, used); err != nil {
			return err
		}
	}
	for i, mr := range o.MRs {
		if err := tx.SetPartSent(ctx, id, i+1, o.ModemID, mr&0xFF, sentAt); err != nil {
			return err
		}
	}
	if ambiguous {
		if err := tx.SetPartsStatus(ctx, id, rest, rest, simgate.StatusUnknown, o.ModemID, now); err != nil {
			return err
		}
		rest++
	}
	if o.Status != simgate.StatusSent {
		var doneAt time.Time
		if o.Status.Final() {
			doneAt = now
		}
		if err := tx.SetPartsStatus(ctx, id, rest, 0, o.Status, "", doneAt); err != nil {
			return err
		}
	}

	next, due := o.Status, o.RetryAt
	if o.Status != simgate.StatusQueued {
		if next, err = foldedStatus(ctx, tx, id); err != nil {
			return err
		}
		due = time.Time{}
	}
	if err := tx.EndAttempt(ctx, id, next, o.Reason, o.ModemID, due); err != nil {
		return err
	}
	if err := ended(ctx, tx, id, next, o.Reason); err != nil {
		return err
	}
	for i, mr := range o.MRs {
		if err := matchEarlyReports(ctx, tx, id, st.To, i+1, o.ModemID, mr&0xFF, sentAt); err != nil {
			return err
		}
	}
	if o.Ambiguous && o.ModemID != "" && len(o.MRs) < nparts {
		return matchEarlyLateSubmit(ctx, tx, id, st.To, len(o.MRs)+1, o.ModemID, st.UpdatedAt)
	}
	return nil
}

// foldedStatus is the status of message id that its parts' statuses make
// (foldParts).
func foldedStatus(ctx context.Context, tx simgate.MessageTx, id string) (simgate.MessageStatus, error) {
	st, err := tx.MessageState(ctx, id)
	if err != nil {
		return "", err
	}
	return foldParts(st.Parts), nil
}

// foldParts derives a message's status from its parts': any part still with
// the dispatcher wins (sending, queued, accepted), then any part waiting for
// its report (sent), then unknown, then failed, expired, canceled; delivered
// only when every part was.
func foldParts(parts []simgate.MessageStatus) simgate.MessageStatus {
	for _, s := range []simgate.MessageStatus{simgate.StatusSending, simgate.StatusQueued, simgate.StatusAccepted,
		simgate.StatusSent, simgate.StatusUnknown, simgate.StatusFailed, simgate.StatusExpired, simgate.StatusCanceled} {
		for _, p := range parts {
			if p == s {
				return s
			}
		}
	}
	return simgate.StatusDelivered
}

// waitForModem records a send of message id that found no modem to ask
// (o.NoModem). That was no attempt, so the claim is taken back whole: the
// message and its parts are queued again with the attempt given back, and
// the claim's event is removed. No modem is no modem for every message, so
// all queued messages that are due wait with it until o.RetryAt (now at the
// earliest): one probe per retry, not one per message, finds out whether a
// modem is back, and Dispatcher.ModemReady ends the wait at once when one
// is. A message that starts waiting gets one event; one that already waits
// only a new due time.
func waitForModem(ctx context.Context, tx simgate.MessageTx, id string, o simgate.SendOutcome) error {
	if err := tx.DeleteLastMessageEvent(ctx, id, simgate.StatusSending); err != nil {
		return err
	}
	if err := tx.UndoAttempt(ctx, id); err != nil {
		return err
	}
	retryAt := o.RetryAt
	if retryAt.Before(tx.Now()) {
		retryAt = tx.Now()
	}
	return tx.DelayDueMessages(ctx, retryAt, o.Reason)
}

// Recover deals with messages left in sending by a dispatcher that died
// while asking a modem: those whose lease belongs to owner, has no owner,
// or has expired (an empty owner takes only those). The modem may have sent
// them, so they become unknown, or queued again, due now, when resend is
// true (at the risk of a duplicate). It returns how many it changed.
func Recover(ctx context.Context, tx simgate.MessageTx, owner string, resend bool) (int, error) {
	ids, err := tx.LeasedMessages(ctx, owner)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		o := simgate.SendOutcome{Status: simgate.StatusUnknown, Ambiguous: true,
			Reason: "interrupted while a modem was asked to send it; it may have gone out, so it is not resent"}
		if resend {
			o = simgate.SendOutcome{Status: simgate.StatusQueued, RetryAt: tx.Now(),
				Reason: "interrupted while a modem was asked to send it; queued again (resend of unknown messages is on)"}
		}
		if err := Finish(ctx, tx, id, o); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// Expire finishes the scheduled, accepted and queued messages that may no
// longer be sent (stale), as a claim would, and returns how many it
// finished.
func Expire(ctx context.Context, tx simgate.MessageTx) (int, error) {
	us, err := tx.ExpiredUnsentMessages(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range us {
		if status, reason := stale(tx.Now(), u); status != "" {
			if err := endUnsent(ctx, tx, u.ID, status, reason); err != nil {
				return 0, err
			}
			n++
		}
	}
	return n, nil
}

// CancelMessage cancels a message that no modem was asked to send yet
// (scheduled, accepted or queued), with reason ("canceled" when empty). It
// returns simgate.CodeNotFound for an unknown id and simgate.CodeConflict
// for a message past that point.
func CancelMessage(ctx context.Context, tx simgate.MessageTx, id, reason string) error {
	st, err := tx.MessageState(ctx, id)
	if err != nil {
		return err
	}
	if st.Status != simgate.StatusScheduled && st.Status != simgate.StatusAccepted && st.Status != simgate.StatusQueued {
		return simgate.Errorf(simgate.CodeConflict, "message %q is %s and can no longer be canceled", id, st.Status)
	}
	if reason == "" {
		reason = "canceled"
	}
	return endUnsent(ctx, tx, id, simgate.StatusCanceled, reason)
}

// ReleaseScheduled makes the scheduled messages whose SendAt has come
// queued, with the event ReasonScheduledTimeReached, and returns how many
// it queued; they are due at once (they were due at their SendAt). One
// whose expiry came too (simgate was not running at its SendAt) ends
// expired instead.
func ReleaseScheduled(ctx context.Context, tx simgate.MessageTx) (int, error) {
	due, err := tx.DueScheduledMessages(ctx)
	if err != nil {
		return 0, err
	}
	for _, u := range due {
		if u.ExpiresAt.IsZero() || u.ExpiresAt.After(tx.Now()) {
			continue
		}
		reason := "expired before it could be sent (scheduled for " + u.SendAt.Format(time.RFC3339Nano) + ")"
		if err := endUnsent(ctx, tx, u.ID, simgate.StatusExpired, reason); err != nil {
			return 0, err
		}
	}
	return tx.QueueDueScheduled(ctx, ReasonScheduledTimeReached)
}
