package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/simgate/simgate"
)

// reportSkew is how far a report may seem to precede its submit: the modem's
// and our clocks are not the same clock.
const reportSkew = time.Minute

// earlySkew is how long before a part's recorded submit time an unmatched
// report may have arrived and still be its report: the submit time is taken
// when the +CMGS answer came back, and the network may report as fast.
const earlySkew = 5 * time.Second

// maxCloseBatch bounds the messages one CloseMissingReports closes, so that
// a backlog (the first sweep after an upgrade) does not make one huge
// transaction; the next sweep takes the rest.
const maxCloseBatch = 500

// RecordReport stores a status report and matches it to a part: the part
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
func RecordReport(ctx context.Context, tx simgate.MessageTx, r *simgate.StatusReport, window time.Duration) error {
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

// RecordLateSubmit keeps the late "+CMGS: <mr>" of a submit that ended
// ambiguous (see simgate.LateSubmit) and matches it to the part it answers:
// part l.Part+1 of a message to l.To whose submit through l.ModemID ended
// unknown, without a message reference, within window before l.At (or up
// to reportSkew after it); the newest such part when several qualify. That
// part becomes sent with l.MR, submitted at l.At (applyLateSubmit).
//
// It returns the message's id, or "" when no part qualifies yet. The modem
// hands the timeout on to the dispatcher before it waits for the late
// answer, so the answer can overtake the record of the timeout: it is kept,
// and Finish matches it when it records that timeout
// (matchEarlyLateSubmit). Otherwise it stays unmatched (a second answer, one
// for a part given up on long ago) and is only counted (QueueStats). l.At
// defaults to now. A bad modem, part or MR is simgate.CodeInvalid.
func RecordLateSubmit(ctx context.Context, tx simgate.MessageTx, l *simgate.LateSubmit, window time.Duration) (string, error) {
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

// CloseMissingReports closes the sent messages whose status reports did not
// come within window: no part in sent was submitted since window began, so
// no report can match them any more (RecordReport). They stay sent, since
// they did go out, with the reason "no report within <window>", an event,
// and their reports recorded missing, so that they are closed once and leave
// the queue depth (QueueStats). It returns how many it closed, at most
// maxCloseBatch.
func CloseMissingReports(ctx context.Context, tx simgate.MessageTx, window time.Duration) (int, error) {
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
