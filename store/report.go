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

// QueueStats returns the queue's depth and age, and the status reports'
// match ratio and latency (submit to final report) since since.
func (db *DB) QueueStats(ctx context.Context, since time.Time) (simgate.QueueStats, error) {
	tx, err := db.beginReadTx(ctx)
	if err != nil {
		return simgate.QueueStats{}, fmt.Errorf("cannot read queue stats: %w", err)
	}
	defer tx.Rollback()

	s := simgate.QueueStats{Depth: map[simgate.MessageStatus]map[simgate.Priority]int{}, Since: since}
	rows, err := tx.QueryContext(ctx, `
		SELECT status, priority, count(*) FROM messages
		WHERE status IN ('accepted', 'queued', 'sending', 'sent')
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
	if err := tx.QueryRowContext(ctx, `SELECT min(created_at) FROM messages WHERE status = 'queued'`).Scan(&oldest); err != nil {
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
