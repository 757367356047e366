package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// The message state machine (simgate.MessageStatus draws it): the functions
// here decide which transition a message takes, and make it through the
// plain reads and writes of a simgate.MessageTx, in one transaction
// (UpdateMessages). The DB's methods on messages run them; they are to move
// to the queue.

// createMessage stores m, which queue.Dispatcher.Enqueue planned, as a new message: queued, or
// scheduled when its SendAt is ahead (admit). When m.IdempotencyKey is set
// and the same API key already used it, nothing is stored: if requestHash
// equals the stored one, *m is replaced by the existing message and created
// is false; otherwise the error has simgate.CodeConflict. A message without
// a verification to a number that opted out is refused with
// simgate.CodeForbidden. When ctx carries the reservation of an
// Idempotency-Key (simgate.WithIdempotencyKey), the store records the
// created message with it.
func createMessage(ctx context.Context, tx simgate.MessageTx, m *simgate.Message, requestHash []byte) (created bool, err error) {
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

// claimMessage takes the next message that is due, highest priority first, and
// makes it sending under a lease held by owner for lease: committed before
// any modem is asked, a claim leaves a message in sending after a crash,
// never resent blindly (recoverSending). Queued messages that may no longer go out
// (stale) are finished on the way, without being sent. It returns nil when
// no message is due. The claimed message's ExpiresAt is when it stops being
// worth sending: the earlier of its own expiry and, for a verification's
// SMS, the verification's (for simgate.SendRequest.NotAfter).
func claimMessage(ctx context.Context, tx simgate.MessageTx, owner string, lease time.Duration) (*simgate.Message, error) {
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

// finishSend records the outcome o of a submit of message id (see
// simgate.SendOutcome) and releases its lease. It applies to a message in
// sending, or in unknown when a sweep gave up on it meanwhile (recoverSending); for
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
func finishSend(ctx context.Context, tx simgate.MessageTx, id string, o simgate.SendOutcome) error {
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
	for i, mr := range o.MRs {
		if err := tx.SetPartSent(ctx, id, i+1, o.ModemID, mr&0xFF, sentAt); err != nil {
			return err
		}
	}
	rest := len(o.MRs) + 1
	if o.Ambiguous && rest <= nparts {
		if err := tx.SetPartsStatus(ctx, id, rest, rest, simgate.StatusUnknown, o.ModemID, now); err != nil {
			return err
		}
		rest++
	}
	// The parts with a reference, and the ambiguous one.
	if used := rest - 1; used > 0 && o.ModemID != "" {
		if err := tx.AddUsage(ctx, o.ModemID, sentAt, used); err != nil {
			return err
		}
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
// modem is back, and queue.Dispatcher.ModemReady ends the wait at once when one
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

// recoverSending deals with messages left in sending by a dispatcher that died
// while asking a modem: those whose lease belongs to owner, has no owner,
// or has expired (an empty owner takes only those). The modem may have sent
// them, so they become unknown, or queued again, due now, when resend is
// true (at the risk of a duplicate). It returns how many it changed.
func recoverSending(ctx context.Context, tx simgate.MessageTx, owner string, resend bool) (int, error) {
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
		if err := finishSend(ctx, tx, id, o); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// expireMessages finishes the scheduled, accepted and queued messages that may no
// longer be sent (stale), as a claim would, and returns how many it
// finished.
func expireMessages(ctx context.Context, tx simgate.MessageTx) (int, error) {
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

// cancelMessage cancels a message that no modem was asked to send yet
// (scheduled, accepted or queued), with reason ("canceled" when empty). It
// returns simgate.CodeNotFound for an unknown id and simgate.CodeConflict
// for a message past that point.
func cancelMessage(ctx context.Context, tx simgate.MessageTx, id, reason string) error {
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

// releaseScheduled makes the scheduled messages whose SendAt has come
// queued, with the event ReasonScheduledTimeReached, and returns how many
// it queued; they are due at once (they were due at their SendAt). One
// whose expiry came too (simgate was not running at its SendAt) ends
// expired instead.
func releaseScheduled(ctx context.Context, tx simgate.MessageTx) (int, error) {
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

// reportSkew is how far a report may seem to precede its submit: the modem's
// and our clocks are not the same clock.
const reportSkew = time.Minute

// earlySkew is how long before a part's recorded submit time an unmatched
// report may have arrived and still be its report: the submit time is taken
// when the +CMGS answer came back, and the network may report as fast.
const earlySkew = 5 * time.Second

// maxCloseBatch bounds the messages one closeMissingReports closes, so that
// a backlog (the first sweep after an upgrade) does not make one huge
// transaction; the next sweep takes the rest.
const maxCloseBatch = 500

// recordReport stores a status report and matches it to a part: the part
// submitted through r.ModemID with message reference r.MR to r.Recipient
// (compared without a leading '+'; any recipient when empty), submitted
// within window before r.ReceivedAt (or up to reportSkew after it). A TP-MR
// is one byte and wraps, so among several candidates a part still waiting
// for its final report wins, then the newest. A report on a part that is no
// longer sent (a late duplicate) is only stored; otherwise applyReport
// applies it. Unmatched reports are kept too: the submit they report on may
// not be recorded yet (matchEarlyReports). It sets r.ID, and r.MessageID
// and r.PartSeq when matched, and r.ReceivedAt when zero. A report without a
// modem, or with an MR or TP-ST outside 0-255, is simgate.CodeInvalid.
func recordReport(ctx context.Context, tx simgate.MessageTx, r *simgate.StatusReport, window time.Duration) error {
	if r.ModemID == "" {
		return simgate.Errorf(simgate.CodeInvalid, "status report has no modem")
	} else if r.MR < 0 || r.MR > 255 || r.TPST < 0 || r.TPST > 255 {
		return simgate.Errorf(simgate.CodeInvalid, "status report has MR %d and TP-ST %d, want 0-255", r.MR, r.TPST)
	}
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = tx.Now()
	}
	r.ReceivedAt = r.ReceivedAt.UTC().Truncate(time.Millisecond)
	p, err := tx.FindSubmittedPart(ctx, r.ModemID, r.MR, r.Recipient,
		r.ReceivedAt.Add(-window.Truncate(time.Millisecond)), r.ReceivedAt.Add(reportSkew))
	if err != nil {
		return err
	}
	r.MessageID, r.PartSeq = "", 0
	if p != nil {
		r.MessageID, r.PartSeq = p.MessageID, p.Seq
	}
	if err := tx.AddStatusReport(ctx, r); err != nil {
		return err
	}
	if p == nil || p.Status != simgate.StatusSent {
		// Unmatched, or a late duplicate for a part already final.
		return nil
	}
	return applyReport(ctx, tx, r, p.MessageID, p.Seq)
}

// applyReport applies the matched report r to part seq of message id, which
// is sent. A temporary TP-ST (the SMSC still tries) is only recorded, with
// an event; a final one makes the part delivered or failed, done at the
// report's discharge time (or when it came), and the message's status folds
// from its parts' (foldParts): while other parts still wait for their
// reports the message stays sent, with an event; otherwise a message still
// sent takes the folded status, and a failed one fails its pending
// verification.
func applyReport(ctx context.Context, tx simgate.MessageTx, r *simgate.StatusReport, id string, seq int) error {
	var status simgate.MessageStatus
	var reason string
	switch simgate.ClassifyTPST(r.TPST) {
	case simgate.ReportPending:
		if err := tx.SetPartReport(ctx, id, seq, r.TPST, "", time.Time{}); err != nil {
			return err
		}
		return tx.AddMessageEvent(ctx, id, simgate.StatusSent,
			fmt.Sprintf("status report for part %d: SMSC still trying (TP-ST 0x%02X)", seq, r.TPST))
	case simgate.ReportDelivered:
		status, reason = simgate.StatusDelivered, fmt.Sprintf("part %d delivered (TP-ST 0x%02X)", seq, r.TPST)
	default:
		status, reason = simgate.StatusFailed, fmt.Sprintf("part %d not delivered (TP-ST 0x%02X)", seq, r.TPST)
	}
	done := r.DischargeTime
	if done.IsZero() {
		done = r.ReceivedAt
	}
	if err := tx.SetPartReport(ctx, id, seq, r.TPST, status, done); err != nil {
		return err
	}
	st, err := tx.MessageState(ctx, id)
	if err != nil {
		return err
	}
	next := foldParts(st.Parts)
	if next == simgate.StatusSent {
		// Other parts still wait for their reports.
		return tx.AddMessageEvent(ctx, id, next, reason)
	}
	if st.Status == simgate.StatusSent {
		if err := tx.SetMessageStatus(ctx, id, next, reason); err != nil {
			return err
		}
	}
	return ended(ctx, tx, id, next, reason)
}

// matchEarlyReports applies the reports that arrived before the submit of
// part seq of message id, to to, was recorded: a fast network can report
// before the dispatcher wrote down the +CMGS answer. They were kept
// unmatched; those of the same modem, MR and recipient received since the
// submit (less the clock's earlySkew) now match, in the order they came.
func matchEarlyReports(ctx context.Context, tx simgate.MessageTx, id, to string, seq int, modemID string, mr int, submitted time.Time) error {
	rs, err := tx.UnmatchedReports(ctx, modemID, mr, to, submitted.Add(-earlySkew))
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := tx.MatchReport(ctx, r.ID, id, seq); err != nil {
			return err
		}
		r.MessageID, r.PartSeq = id, seq
		if err := applyReport(ctx, tx, r, id, seq); err != nil {
			return err
		}
	}
	return nil
}

// recordLateSubmit keeps the late "+CMGS: <mr>" of a submit that ended
// ambiguous (see simgate.LateSubmit) and matches it to the part it answers:
// part l.Part+1 of a message to l.To whose submit through l.ModemID ended
// unknown, without a message reference, within window before l.At (or up
// to reportSkew after it); the newest such part when several qualify. That
// part becomes sent with l.MR, submitted at l.At (applyLateSubmit).
//
// It returns the message's id, or "" when no part qualifies yet. The modem
// hands the timeout on to the dispatcher before it waits for the late
// answer, so the answer can overtake the record of the timeout: it is kept,
// and finishSend matches it when it records that timeout
// (matchEarlyLateSubmit). Otherwise it stays unmatched (a second answer, one
// for a part given up on long ago) and is only counted (QueueStats). l.At
// defaults to now. A bad modem, part or MR is simgate.CodeInvalid.
func recordLateSubmit(ctx context.Context, tx simgate.MessageTx, l *simgate.LateSubmit, window time.Duration) (string, error) {
	if l.ModemID == "" || l.MR < 0 || l.MR > 255 || l.Part < 0 {
		return "", simgate.Errorf(simgate.CodeInvalid, "late submit of modem %q, part %d, MR %d: want a modem, a part from 0 and MR 0-255",
			l.ModemID, l.Part, l.MR)
	}
	if l.At.IsZero() {
		l.At = tx.Now()
	}
	at := l.At.UTC().Truncate(time.Millisecond)
	lateID, err := tx.AddLateSubmit(ctx, l)
	if err != nil {
		return "", err
	}
	// The done time of an unknown part is when its submit was given up on,
	// which its late answer follows.
	seq := l.Part + 1
	id, to, err := tx.FindUnknownPart(ctx, l.ModemID, seq, l.To, at.Add(-window), at.Add(reportSkew))
	if err != nil || id == "" {
		return "", err
	}
	if err := applyLateSubmit(ctx, tx, lateID, id, to, seq, l.ModemID, l.MR, at); err != nil {
		return "", err
	}
	return id, nil
}

// matchEarlyLateSubmit applies a late +CMGS answer that was kept before the
// timeout of its submit was recorded: part seq of message id, to to, was
// just made unknown by the timeout of a submit through modemID, of a claim
// made at claimed. Only an answer that came since then can be its answer: an
// older one answered an earlier submit.
func matchEarlyLateSubmit(ctx context.Context, tx simgate.MessageTx, id, to string, seq int, modemID string, claimed time.Time) error {
	lateID, l, err := tx.UnmatchedLateSubmit(ctx, modemID, seq, to, claimed)
	if err != nil || l == nil {
		return err
	}
	return applyLateSubmit(ctx, tx, lateID, id, to, seq, modemID, l.MR, l.At)
}

// applyLateSubmit applies the late submit answer lateID (mr, at) to part
// seq of message id, which is unknown: the part becomes sent with mr,
// submitted at at, the time the report window counts from, and without a
// done time; the message's status refolds from its parts' (foldParts), with
// an event that says the answer came late (a failed message fails its
// pending verification); and the status reports kept unmatched since match
// now (matchEarlyReports).
func applyLateSubmit(ctx context.Context, tx simgate.MessageTx, lateID int64, id, to string, seq int, modemID string, mr int, at time.Time) error {
	if err := tx.MatchLateSubmit(ctx, lateID, id); err != nil {
		return err
	}
	if err := tx.SetPartSent(ctx, id, seq, modemID, mr, at); err != nil {
		return err
	}
	// A part given up on had a done time; a sent one has none.
	if err := tx.SetPartsStatus(ctx, id, seq, seq, simgate.StatusSent, "", time.Time{}); err != nil {
		return err
	}
	next, err := foldedStatus(ctx, tx, id)
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("late +CMGS answer: MR %d for part %d, which went out after all", mr, seq)
	if err := tx.SetMessageStatus(ctx, id, next, reason); err != nil {
		return err
	}
	if err := ended(ctx, tx, id, next, reason); err != nil {
		return err
	}
	return matchEarlyReports(ctx, tx, id, to, seq, modemID, mr, at)
}

// closeMissingReports closes the sent messages whose status reports did not
// come within window: no part in sent was submitted since window began, so
// no report can match them any more (recordReport). They stay sent, since
// they did go out, with the reason "no report within <window>", an event,
// and their reports recorded missing, so that they are closed once and leave
// the queue depth (QueueStats). It returns how many it closed, at most
// maxCloseBatch.
func closeMissingReports(ctx context.Context, tx simgate.MessageTx, window time.Duration) (int, error) {
	ids, err := tx.SentMessagesSubmittedBefore(ctx, tx.Now().Add(-window), maxCloseBatch)
	if err != nil {
		return 0, err
	}
	reason := fmt.Sprintf("no report within %v", window)
	for _, id := range ids {
		if err := tx.SetReportsMissing(ctx, id, reason); err != nil {
			return 0, err
		}
		if err := tx.AddMessageEvent(ctx, id, simgate.StatusSent, reason); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}
