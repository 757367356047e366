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

// The methods of messageTx on status reports and late submit answers; see
// simgate.MessageTx.

func (t messageTx) FindSubmittedPart(ctx context.Context, modemID string, mr int, recipient string, from, to time.Time) (*simgate.Part, error) {
	p := simgate.Part{ModemID: modemID, MR: mr}
	err := t.tx.QueryRowContext(ctx, `
		SELECT p.message_id, p.seq, p.status
		FROM message_parts p JOIN messages m ON m.id = p.message_id
		WHERE p.modem_id = ? AND p.mr = ? AND p.submitted_at BETWEEN ? AND ?
			AND (? = '' OR ltrim(m.to_number, '+') = ltrim(?, '+'))
		ORDER BY p.status = 'sent' DESC, p.submitted_at DESC
		LIMIT 1
	`, modemID, mr, from.UnixMilli(), to.UnixMilli(), recipient, recipient).Scan(&p.MessageID, &p.Seq, &p.Status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("cannot match status report: %w", err)
	}
	return &p, nil
}

func (t messageTx) AddStatusReport(ctx context.Context, r *simgate.StatusReport) error {
	res, err := t.tx.ExecContext(ctx, `
		INSERT INTO status_reports (modem_id, mr, recipient, scts, discharge_time, tp_st, received_at, message_id, part_seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	`, r.ModemID, r.MR, r.Recipient, millis(r.SCTS), millis(r.DischargeTime), r.TPST, r.ReceivedAt.UnixMilli(),
		nullIfEmpty(r.MessageID), nullIfZero(r.PartSeq))
	if err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	if r.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE modems SET reports = reports + 1 WHERE id = ?`, r.ModemID); err != nil {
		return fmt.Errorf("cannot count status report: %w", err)
	}
	return nil
}

func (t messageTx) UnmatchedReports(ctx context.Context, modemID string, mr int, to string, since time.Time) ([]*simgate.StatusReport, error) {
	// Mostly there are none: ask with one row (a prepared statement) first.
	var found bool
	if err := t.tx.QueryRowContext(ctx, `
		SELECT EXISTS (SELECT 1 FROM status_reports WHERE message_id IS NULL AND modem_id = ? AND mr = ? AND received_at >= ?)
	`, modemID, mr, since.UnixMilli()).Scan(&found); err != nil {
		return nil, fmt.Errorf("cannot find unmatched status reports: %w", err)
	} else if !found {
		return nil, nil
	}
	rows, err := t.tx.QueryContext(ctx, `
		SELECT id, recipient, tp_st, scts, discharge_time, received_at FROM status_reports
		WHERE message_id IS NULL AND modem_id = ? AND mr = ? AND received_at >= ?
			AND (recipient = '' OR ltrim(recipient, '+') = ltrim(?, '+'))
		ORDER BY id
	`, modemID, mr, since.UnixMilli(), to)
	if err != nil {
		return nil, fmt.Errorf("cannot find unmatched status reports: %w", err)
	}
	defer rows.Close()
	var rs []*simgate.StatusReport
	for rows.Next() {
		r := &simgate.StatusReport{ModemID: modemID, MR: mr}
		var scts, dt sql.NullInt64
		var recv int64
		if err := rows.Scan(&r.ID, &r.Recipient, &r.TPST, &scts, &dt, &recv); err != nil {
			return nil, fmt.Errorf("cannot find unmatched status reports: %w", err)
		}
		r.SCTS, r.DischargeTime, r.ReceivedAt = fromMillis(scts), fromMillis(dt), time.UnixMilli(recv).UTC()
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot find unmatched status reports: %w", err)
	}
	return rs, nil
}

func (t messageTx) MatchReport(ctx context.Context, reportID int64, messageID string, seq int) error {
	if _, err := t.tx.ExecContext(ctx, `
		UPDATE status_reports SET message_id = ?, part_seq = ? WHERE id = ?
	`, messageID, seq, reportID); err != nil {
		return fmt.Errorf("cannot match status report: %w", err)
	}
	return nil
}

func (t messageTx) AddLateSubmit(ctx context.Context, l *simgate.LateSubmit) (int64, error) {
	res, err := t.tx.ExecContext(ctx, `
		INSERT INTO late_submits (modem_id, to_number, part_seq, mr, at) VALUES (?, ?, ?, ?, ?)
	`, l.ModemID, l.To, l.Part+1, l.MR, l.At.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("cannot record late submit: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("cannot record late submit: %w", err)
	}
	return id, nil
}

func (t messageTx) FindUnknownPart(ctx context.Context, modemID string, seq int, to string, from, until time.Time) (string, string, error) {
	var id, recipient string
	err := t.tx.QueryRowContext(ctx, `
		SELECT m.id, m.to_number
		FROM message_parts p JOIN messages m ON m.id = p.message_id
		WHERE p.modem_id = ? AND p.mr = -1 AND p.seq = ? AND p.status = 'unknown'
			AND p.done_at BETWEEN ? AND ? AND ltrim(m.to_number, '+') = ltrim(?, '+')
		ORDER BY p.done_at DESC
		LIMIT 1
	`, modemID, seq, from.UnixMilli(), until.UnixMilli(), to).Scan(&id, &recipient)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", "", nil
	case err != nil:
		return "", "", fmt.Errorf("cannot match late submit: %w", err)
	}
	return id, recipient, nil
}

func (t messageTx) UnmatchedLateSubmit(ctx context.Context, modemID string, seq int, to string, since time.Time) (int64, *simgate.LateSubmit, error) {
	var id int64
	var at int64
	l := simgate.LateSubmit{ModemID: modemID, Part: seq - 1}
	err := t.tx.QueryRowContext(ctx, `
		SELECT id, to_number, mr, at FROM late_submits
		WHERE message_id IS NULL AND modem_id = ? AND part_seq = ? AND at >= ?
			AND ltrim(to_number, '+') = ltrim(?, '+')
		ORDER BY at DESC
		LIMIT 1
	`, modemID, seq, since.UnixMilli(), to).Scan(&id, &l.To, &l.MR, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	} else if err != nil {
		return 0, nil, fmt.Errorf("cannot match early late submit: %w", err)
	}
	l.At = time.UnixMilli(at).UTC()
	return id, &l, nil
}

func (t messageTx) MatchLateSubmit(ctx context.Context, lateID int64, messageID string) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE late_submits SET message_id = ? WHERE id = ?`, messageID, lateID); err != nil {
		return fmt.Errorf("cannot record late submit: %w", err)
	}
	return nil
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
