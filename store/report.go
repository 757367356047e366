package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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

// RecordReport stores a status report and matches it to a part: the part
// submitted through r.ModemID with message reference r.MR to r.Recipient
// (compared without a leading '+'; any recipient when empty), submitted
// within window before r.ReceivedAt. A TP-MR is one byte and wraps, so among
// several candidates a part still waiting for its final report wins, then
// the newest. A temporary TP-ST only records the report; a final one
// finishes the part and refolds the message's status (a failed message fails
// its pending verification). Unmatched reports are kept too. It sets r.ID,
// and r.MessageID and r.PartSeq when matched, and r.ReceivedAt when zero.
func (db *DB) RecordReport(ctx context.Context, r *simgate.StatusReport, window time.Duration) error {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	defer tx.Rollback()
	if err := recordReport(ctx, tx, r, window); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	return nil
}

func recordReport(ctx context.Context, tx *tx, r *simgate.StatusReport, window time.Duration) error {
	if r.ModemID == "" {
		return simgate.Errorf(simgate.CodeInvalid, "status report has no modem")
	} else if r.MR < 0 || r.MR > 255 || r.TPST < 0 || r.TPST > 255 {
		return simgate.Errorf(simgate.CodeInvalid, "status report has MR %d and TP-ST %d, want 0-255", r.MR, r.TPST)
	}
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = tx.now
	}
	r.ReceivedAt = r.ReceivedAt.UTC().Truncate(time.Millisecond)
	recv := r.ReceivedAt.UnixMilli()

	var (
		msgID, partStatus string
		seq               int
	)
	err := tx.QueryRowContext(ctx, `
		SELECT p.message_id, p.seq, p.status
		FROM message_parts p JOIN messages m ON m.id = p.message_id
		WHERE p.modem_id = ? AND p.mr = ? AND p.submitted_at BETWEEN ? AND ?
			AND (? = '' OR ltrim(m.to_number, '+') = ltrim(?, '+'))
		ORDER BY p.status = 'sent' DESC, p.submitted_at DESC
		LIMIT 1
	`, r.ModemID, r.MR, recv-window.Milliseconds(), recv+reportSkew.Milliseconds(), r.Recipient, r.Recipient).
		Scan(&msgID, &seq, &partStatus)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		msgID, seq = "", 0
	case err != nil:
		return fmt.Errorf("cannot match status report: %w", err)
	}

	res, err := tx.ExecContext(ctx, `
		INSERT INTO status_reports (modem_id, mr, recipient, scts, discharge_time, tp_st, received_at, message_id, part_seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	`, r.ModemID, r.MR, r.Recipient, millis(r.SCTS), millis(r.DischargeTime), r.TPST, recv,
		nullIfEmpty(msgID), nullIfZero(seq))
	if err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	if r.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	r.MessageID, r.PartSeq = msgID, seq
	if _, err := tx.ExecContext(ctx, `UPDATE modems SET reports = reports + 1 WHERE id = ?`, r.ModemID); err != nil {
		return fmt.Errorf("cannot count status report: %w", err)
	}
	if msgID == "" || partStatus != string(simgate.StatusSent) {
		// Unmatched, or a late duplicate for a part already final.
		return nil
	}
	return applyReport(ctx, tx, r, msgID, seq)
}

// applyReport applies the matched report r to part seq of message msgID,
// which is sent.
func applyReport(ctx context.Context, tx *tx, r *simgate.StatusReport, msgID string, seq int) error {
	var status simgate.MessageStatus
	var reason string
	switch simgate.ClassifyTPST(r.TPST) {
	case simgate.ReportPending:
		if _, err := tx.ExecContext(ctx, `
			UPDATE message_parts SET report_status = ? WHERE message_id = ? AND seq = ?
		`, r.TPST, msgID, seq); err != nil {
			return fmt.Errorf("cannot record status report: %w", err)
		}
		return addEvent(ctx, tx, msgID, simgate.StatusSent,
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
	if _, err := tx.ExecContext(ctx, `
		UPDATE message_parts SET status = ?, report_status = ?, done_at = ? WHERE message_id = ? AND seq = ?
	`, status, r.TPST, done.UnixMilli(), msgID, seq); err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	next, err := foldParts(ctx, tx, msgID)
	if err != nil {
		return err
	}
	if next == simgate.StatusSent {
		// Other parts still wait for their reports.
		return addEvent(ctx, tx, msgID, next, reason)
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE messages SET status = ?, reason = ?, updated_at = ? WHERE id = ? AND status = 'sent'
	`, next, reason, tx.now.UnixMilli(), msgID); err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	if next == simgate.StatusFailed {
		if err := failVerification(ctx, tx, msgID); err != nil {
			return err
		}
	}
	return addEvent(ctx, tx, msgID, next, reason)
}

// matchEarlyReports applies reports that arrived before the submit of part
// seq of message msgID was recorded: a fast network can report before the
// dispatcher wrote down the +CMGS answer. They were kept unmatched; those of
// the same modem, MR and recipient received since the submit (less the clock
// earlySkew) now match, in the order they came.
func matchEarlyReports(ctx context.Context, tx *tx, msgID string, seq int, modemID string, mr int, to string, submitted time.Time) error {
	// Mostly there are none: ask with one row (a prepared statement) first.
	var found bool
	if err := tx.QueryRowContext(ctx, `
		SELECT EXISTS (SELECT 1 FROM status_reports WHERE message_id IS NULL AND modem_id = ? AND mr = ? AND received_at >= ?)
	`, modemID, mr, submitted.Add(-earlySkew).UnixMilli()).Scan(&found); err != nil {
		return fmt.Errorf("cannot match early status reports: %w", err)
	} else if !found {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `
		SELECT id, tp_st, scts, discharge_time, received_at FROM status_reports
		WHERE message_id IS NULL AND modem_id = ? AND mr = ? AND received_at >= ?
			AND (recipient = '' OR ltrim(recipient, '+') = ltrim(?, '+'))
		ORDER BY id
	`, modemID, mr, submitted.Add(-earlySkew).UnixMilli(), to)
	if err != nil {
		return fmt.Errorf("cannot match early status reports: %w", err)
	}
	var rs []*simgate.StatusReport
	for rows.Next() {
		r := &simgate.StatusReport{ModemID: modemID, MR: mr}
		var scts, dt sql.NullInt64
		var recv int64
		if err := rows.Scan(&r.ID, &r.TPST, &scts, &dt, &recv); err != nil {
			rows.Close()
			return fmt.Errorf("cannot match early status reports: %w", err)
		}
		r.SCTS, r.DischargeTime, r.ReceivedAt = fromMillis(scts), fromMillis(dt), time.UnixMilli(recv).UTC()
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot match early status reports: %w", err)
	}
	for _, r := range rs {
		if _, err := tx.ExecContext(ctx, `
			UPDATE status_reports SET message_id = ?, part_seq = ? WHERE id = ?
		`, msgID, seq, r.ID); err != nil {
			return fmt.Errorf("cannot match early status reports: %w", err)
		}
		if err := applyReport(ctx, tx, r, msgID, seq); err != nil {
			return err
		}
	}
	return nil
}

// RecordLateSubmit keeps the late "+CMGS: <mr>" of a submit that ended
// ambiguous (see simgate.LateSubmit) and matches it to the part it answers:
// part l.Part+1 of a message to l.To whose submit through l.ModemID ended
// unknown, without a message reference, within window before l.At; the
// newest such part when several qualify. That part becomes sent with l.MR,
// submitted at l.At: the time the report window of RecordReport counts
// from, so the status report that follows matches it, and reports kept
// unmatched since are matched now. The message's status refolds from its
// parts and an event says the answer came late.
//
// It returns the message's id, or "" when no part qualifies yet. The modem
// hands the timeout on to the dispatcher before it waits for the late
// answer, so the answer can overtake the record of the timeout: it is kept,
// and FinishSend matches it when it records that timeout. Otherwise it stays
// unmatched (a second answer, one for a part given up on long ago) and is
// only counted (QueueStats). l.At defaults to now. A bad modem, part or MR is
// simgate.CodeInvalid.
func (db *DB) RecordLateSubmit(ctx context.Context, l *simgate.LateSubmit, window time.Duration) (string, error) {
	if l.ModemID == "" || l.MR < 0 || l.MR > 255 || l.Part < 0 {
		return "", simgate.Errorf(simgate.CodeInvalid, "late submit of modem %q, part %d, MR %d: want a modem, a part from 0 and MR 0-255",
			l.ModemID, l.Part, l.MR)
	}
	tx, err := db.beginTx(ctx)
	if err != nil {
		return "", fmt.Errorf("cannot record late submit: %w", err)
	}
	defer tx.Rollback()
	if l.At.IsZero() {
		l.At = tx.now
	}
	at := l.At.UTC().Truncate(time.Millisecond)
	seq := l.Part + 1
	res, err := tx.ExecContext(ctx, `
		INSERT INTO late_submits (modem_id, to_number, part_seq, mr, at) VALUES (?, ?, ?, ?, ?)
	`, l.ModemID, l.To, seq, l.MR, at.UnixMilli())
	if err != nil {
		return "", fmt.Errorf("cannot record late submit: %w", err)
	}
	lateID, err := res.LastInsertId()
	if err != nil {
		return "", fmt.Errorf("cannot record late submit: %w", err)
	}

	// done_at of an unknown part is when its submit was given up on, which
	// its late answer follows.
	var id, to string
	err = tx.QueryRowContext(ctx, `
		SELECT m.id, m.to_number
		FROM message_parts p JOIN messages m ON m.id = p.message_id
		WHERE p.modem_id = ? AND p.mr = -1 AND p.seq = ? AND p.status = 'unknown'
			AND p.done_at BETWEEN ? AND ? AND ltrim(m.to_number, '+') = ltrim(?, '+')
		ORDER BY p.done_at DESC
		LIMIT 1
	`, l.ModemID, seq, at.Add(-window).UnixMilli(), at.Add(reportSkew).UnixMilli(), l.To).Scan(&id, &to)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		id = ""
	case err != nil:
		return "", fmt.Errorf("cannot match late submit: %w", err)
	default:
		if err := applyLateSubmit(ctx, tx, lateID, id, to, seq, l.ModemID, l.MR, at); err != nil {
			return "", err
		}
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("cannot record late submit: %w", err)
	}
	return id, nil
}

// matchEarlyLateSubmit applies a late +CMGS answer that was kept before the
// timeout of its submit was recorded: part seq of message id, to to, was
// just made unknown by the timeout of a submit through modemID, of a claim
// made at claimed. Only an answer that came since then can be its answer: an
// older one answered an earlier submit.
func matchEarlyLateSubmit(ctx context.Context, tx *tx, id, to string, seq int, modemID string, claimed time.Time) error {
	var (
		lateID int64
		mr     int
		at     int64
	)
	err := tx.QueryRowContext(ctx, `
		SELECT id, mr, at FROM late_submits
		WHERE message_id IS NULL AND modem_id = ? AND part_seq = ? AND at >= ?
			AND ltrim(to_number, '+') = ltrim(?, '+')
		ORDER BY at DESC
		LIMIT 1
	`, modemID, seq, claimed.UnixMilli(), to).Scan(&lateID, &mr, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return fmt.Errorf("cannot match early late submit: %w", err)
	}
	return applyLateSubmit(ctx, tx, lateID, id, to, seq, modemID, mr, time.UnixMilli(at).UTC())
}

// applyLateSubmit applies the late submit answer lateID (mr, at) to part seq
// of message id, which is unknown: see RecordLateSubmit.
func applyLateSubmit(ctx context.Context, tx *tx, lateID int64, id, to string, seq int, modemID string, mr int, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE late_submits SET message_id = ? WHERE id = ?`, id, lateID); err != nil {
		return fmt.Errorf("cannot record late submit: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE message_parts SET status = 'sent', mr = ?, submitted_at = ?, done_at = NULL WHERE message_id = ? AND seq = ?
	`, mr, at.UnixMilli(), id, seq); err != nil {
		return fmt.Errorf("cannot record late submit: %w", err)
	}
	next, err := foldParts(ctx, tx, id)
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("late +CMGS answer: MR %d for part %d, which went out after all", mr, seq)
	if _, err := tx.ExecContext(ctx, `
		UPDATE messages SET status = ?, reason = ?, updated_at = ? WHERE id = ?
	`, next, reason, tx.now.UnixMilli(), id); err != nil {
		return fmt.Errorf("cannot record late submit: %w", err)
	}
	if next == simgate.StatusFailed {
		if err := failVerification(ctx, tx, id); err != nil {
			return err
		}
	}
	if err := addEvent(ctx, tx, id, next, reason); err != nil {
		return err
	}
	return matchEarlyReports(ctx, tx, id, seq, modemID, mr, to, at)
}

// maxCloseBatch bounds the messages one CloseMissingReports closes, so that
// a backlog (the first sweep after an upgrade) does not make one huge
// transaction; the next sweep takes the rest.
const maxCloseBatch = 500

// CloseMissingReports closes the sent messages whose status reports did not
// come within window: no part in sent was submitted since window began, so
// no report can match them any more (RecordReport). They stay sent, since
// they did go out, with the reason "no report within <window>", an event,
// and reports_missing_at set, so that they are closed once and leave the
// queue depth (QueueStats). It returns how many it closed, at most
// maxCloseBatch.
func (db *DB) CloseMissingReports(ctx context.Context, window time.Duration) (int, error) {
	tx, err := db.beginTx(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot close messages without reports: %w", err)
	}
	defer tx.Rollback()
	now := tx.now.UnixMilli()
	cutoff := tx.now.Add(-window).UnixMilli()
	// A message's updated_at is no earlier than its last submit: the index
	// on it narrows the search to messages that may qualify.
	rows, err := tx.QueryContext(ctx, `
		SELECT id FROM messages m
		WHERE status = 'sent' AND reports_missing_at IS NULL AND updated_at <= ?
			AND NOT EXISTS (SELECT 1 FROM message_parts p
				WHERE p.message_id = m.id AND p.status = 'sent' AND coalesce(p.submitted_at, 0) > ?)
		ORDER BY updated_at
		LIMIT ?
	`, cutoff, cutoff, maxCloseBatch)
	if err != nil {
		return 0, fmt.Errorf("cannot close messages without reports: %w", err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return 0, fmt.Errorf("cannot close messages without reports: %w", err)
	}
	reason := fmt.Sprintf("no report within %v", window)
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `
			UPDATE messages SET reason = ?, reports_missing_at = ?, updated_at = ? WHERE id = ?
		`, reason, now, now, id); err != nil {
			return 0, fmt.Errorf("cannot close messages without reports: %w", err)
		}
		if err := addEvent(ctx, tx, id, simgate.StatusSent, reason); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot close messages without reports: %w", err)
	}
	return len(ids), nil
}

// QueueStats returns the queue's depth and age, the status reports' match
// ratio and latency (submit to final report), and the late submit answers
// and how many matched, since since.
func (db *DB) QueueStats(ctx context.Context, since time.Time) (simgate.QueueStats, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return simgate.QueueStats{}, fmt.Errorf("cannot read queue stats: %w", err)
	}
	defer tx.Rollback()

	s := simgate.QueueStats{Depth: map[simgate.MessageStatus]map[simgate.Priority]int{}, Since: since}
	rows, err := tx.QueryContext(ctx, `
		SELECT status, priority, count(*) FROM messages
		WHERE status IN ('scheduled', 'accepted', 'queued', 'sending', 'sent') AND reports_missing_at IS NULL
		GROUP BY status, priority
	`)
	if err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	for rows.Next() {
		var st simgate.MessageStatus
		var p, n int
		if err := rows.Scan(&st, &p, &n); err != nil {
			rows.Close()
			return s, fmt.Errorf("cannot read queue stats: %w", err)
		}
		if s.Depth[st] == nil {
			s.Depth[st] = map[simgate.Priority]int{}
		}
		s.Depth[st][simgate.Priority(p)] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}

	var oldest sql.NullInt64
	if err := tx.QueryRowContext(ctx, `
		SELECT min(max(created_at, coalesce(send_at, 0))) FROM messages WHERE status = 'queued'
	`).Scan(&oldest); err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	s.OldestQueuedAt = fromMillis(oldest)
	if !s.OldestQueuedAt.IsZero() {
		s.OldestQueuedAge = tx.now.Sub(s.OldestQueuedAt)
	}

	if err := tx.QueryRowContext(ctx, `
		SELECT count(*), count(message_id) FROM status_reports WHERE received_at >= ?
	`, since.UnixMilli()).Scan(&s.Reports, &s.MatchedReports); err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `
		SELECT count(*), count(message_id) FROM late_submits WHERE at >= ?
	`, since.UnixMilli()).Scan(&s.LateSubmits, &s.MatchedLateSubmits); err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	lat, err := tx.QueryContext(ctx, `
		SELECT r.received_at - p.submitted_at
		FROM status_reports r JOIN message_parts p ON p.message_id = r.message_id AND p.seq = r.part_seq
		WHERE r.received_at >= ? AND NOT (r.tp_st BETWEEN 32 AND 63) AND p.submitted_at IS NOT NULL
	`, since.UnixMilli())
	if err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	var ds []int64
	for lat.Next() {
		var d int64
		if err := lat.Scan(&d); err != nil {
			lat.Close()
			return s, fmt.Errorf("cannot read queue stats: %w", err)
		}
		ds = append(ds, d)
	}
	lat.Close()
	if err := lat.Err(); err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	if len(ds) > 0 {
		slices.Sort(ds)
		s.ReportLatencyP50 = time.Duration(ds[len(ds)*50/100]) * time.Millisecond
		s.ReportLatencyP99 = time.Duration(ds[min(len(ds)*99/100, len(ds)-1)]) * time.Millisecond
	}
	return s, nil
}

// nullIfZero returns nil for 0, so that "not set" is NULL.
func nullIfZero(n int) any {
	if n == 0 {
		return nil
	}
	return n
}
