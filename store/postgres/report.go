package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// The methods of messageTx on status reports and late submit answers; see
// simgate.MessageTx, and UpdateMessages for the locks their reads take.

func (t messageTx) FindSubmittedPart(ctx context.Context, modemID string, mr int, recipient string, from, to time.Time) (*simgate.Part, error) {
	p := simgate.Part{ModemID: modemID, MR: mr}
	var status string
	err := t.tx.QueryRow(ctx, `
		SELECT p.message_id, p.seq, p.status
		FROM message_parts p JOIN messages m ON m.id = p.message_id
		WHERE p.modem_id = $1 AND p.mr = $2 AND p.submitted_at BETWEEN $3 AND $4
			AND ($5 = '' OR ltrim(m.to_number, '+') = ltrim($5, '+'))
		ORDER BY p.status = 'sent' DESC, p.submitted_at DESC
		LIMIT 1
		FOR UPDATE OF m, p
	`, modemID, mr, from.UnixMilli(), to.UnixMilli(), recipient).Scan(&p.MessageID, &p.Seq, &status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("cannot match status report: %w", err)
	}
	p.Status = simgate.MessageStatus(status)
	return &p, nil
}

func (t messageTx) AddStatusReport(ctx context.Context, r *simgate.StatusReport) error {
	if err := t.tx.QueryRow(ctx, `
		INSERT INTO status_reports (modem_id, mr, recipient, scts, discharge_time, tp_st, received_at, message_id, part_seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING id
	`, r.ModemID, r.MR, r.Recipient, millis(r.SCTS), millis(r.DischargeTime), r.TPST, r.ReceivedAt.UnixMilli(),
		nullIfEmpty(r.MessageID), nullIfZero(r.PartSeq)).Scan(&r.ID); err != nil {
		return fmt.Errorf("cannot record status report: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE modems SET reports = reports + 1 WHERE id = $1`, r.ModemID); err != nil {
		return fmt.Errorf("cannot count status report: %w", err)
	}
	return nil
}

func (t messageTx) UnmatchedReports(ctx context.Context, modemID string, mr int, to string, since time.Time) ([]*simgate.StatusReport, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT id, recipient, tp_st, scts, discharge_time, received_at FROM status_reports
		WHERE message_id IS NULL AND modem_id = $1 AND mr = $2 AND received_at >= $3
			AND (recipient = '' OR ltrim(recipient, '+') = ltrim($4, '+'))
		ORDER BY id
		FOR UPDATE SKIP LOCKED
	`, modemID, mr, since.UnixMilli(), to)
	if err != nil {
		return nil, fmt.Errorf("cannot find unmatched status reports: %w", err)
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*simgate.StatusReport, error) {
		r := &simgate.StatusReport{ModemID: modemID, MR: mr}
		var scts, dt *int64
		var recv int64
		if err := row.Scan(&r.ID, &r.Recipient, &r.TPST, &scts, &dt, &recv); err != nil {
			return nil, err
		}
		r.SCTS, r.DischargeTime, r.ReceivedAt = fromMillis(scts), fromMillis(dt), time.UnixMilli(recv).UTC()
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot find unmatched status reports: %w", err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rs, nil
}

func (t messageTx) MatchReport(ctx context.Context, reportID int64, messageID string, seq int) error {
	if _, err := t.tx.Exec(ctx, `
		UPDATE status_reports SET message_id = $1, part_seq = $2 WHERE id = $3
	`, messageID, seq, reportID); err != nil {
		return fmt.Errorf("cannot match status report: %w", err)
	}
	return nil
}

func (t messageTx) AddLateSubmit(ctx context.Context, l *simgate.LateSubmit) (int64, error) {
	var id int64
	if err := t.tx.QueryRow(ctx, `
		INSERT INTO late_submits (modem_id, to_number, part_seq, mr, at) VALUES ($1, $2, $3, $4, $5) RETURNING id
	`, l.ModemID, l.To, l.Part+1, l.MR, l.At.UnixMilli()).Scan(&id); err != nil {
		return 0, fmt.Errorf("cannot record late submit: %w", err)
	}
	return id, nil
}

func (t messageTx) FindUnknownPart(ctx context.Context, modemID string, seq int, to string, from, until time.Time) (string, string, error) {
	var id, recipient string
	err := t.tx.QueryRow(ctx, `
		SELECT m.id, m.to_number
		FROM message_parts p JOIN messages m ON m.id = p.message_id
		WHERE p.modem_id = $1 AND p.mr = -1 AND p.seq = $2 AND p.status = 'unknown'
			AND p.done_at BETWEEN $3 AND $4 AND ltrim(m.to_number, '+') = ltrim($5, '+')
		ORDER BY p.done_at DESC
		LIMIT 1
		FOR UPDATE OF m, p
	`, modemID, seq, from.UnixMilli(), until.UnixMilli(), to).Scan(&id, &recipient)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", "", nil
	case err != nil:
		return "", "", fmt.Errorf("cannot match late submit: %w", err)
	}
	return id, recipient, nil
}

func (t messageTx) UnmatchedLateSubmit(ctx context.Context, modemID string, seq int, to string, since time.Time) (int64, *simgate.LateSubmit, error) {
	var id, at int64
	l := simgate.LateSubmit{ModemID: modemID, Part: seq - 1}
	err := t.tx.QueryRow(ctx, `
		SELECT id, to_number, mr, at FROM late_submits
		WHERE message_id IS NULL AND modem_id = $1 AND part_seq = $2 AND at >= $3
			AND ltrim(to_number, '+') = ltrim($4, '+')
		ORDER BY at DESC
		LIMIT 1
		FOR UPDATE SKIP LOCKED
	`, modemID, seq, since.UnixMilli(), to).Scan(&id, &l.To, &l.MR, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	} else if err != nil {
		return 0, nil, fmt.Errorf("cannot match early late submit: %w", err)
	}
	l.At = time.UnixMilli(at).UTC()
	return id, &l, nil
}

func (t messageTx) MatchLateSubmit(ctx context.Context, lateID int64, messageID string) error {
	if _, err := t.tx.Exec(ctx, `UPDATE late_submits SET message_id = $1 WHERE id = $2`, messageID, lateID); err != nil {
		return fmt.Errorf("cannot record late submit: %w", err)
	}
	return nil
}

// QueueStats returns the queue's depth and age, the status reports' match
// ratio and latency (submit to final report), and the late submit answers
// and how many matched, since since, read from one snapshot.
func (db *DB) QueueStats(ctx context.Context, since time.Time) (simgate.QueueStats, error) {
	s, err := db.queueStats(ctx, since)
	return s, unavailable(err)
}

// queueStats is QueueStats, but for marking an unreachable database.
func (db *DB) queueStats(ctx context.Context, since time.Time) (simgate.QueueStats, error) {
	s := simgate.QueueStats{Depth: map[simgate.MessageStatus]map[simgate.Priority]int{}, Since: since}
	now := db.txNow()
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // it only read

	rows, err := tx.Query(ctx, `
		SELECT status, priority, count(*) FROM messages
		WHERE status IN ('scheduled', 'accepted', 'queued', 'sending', 'sent') AND reports_missing_at IS NULL
		GROUP BY status, priority
	`)
	if err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	var st string
	var p, n int
	if _, err := pgx.ForEachRow(rows, []any{&st, &p, &n}, func() error {
		status := simgate.MessageStatus(st)
		if s.Depth[status] == nil {
			s.Depth[status] = map[simgate.Priority]int{}
		}
		s.Depth[status][simgate.Priority(p)] = n
		return nil
	}); err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}

	var oldest *int64
	if err := tx.QueryRow(ctx, `
		SELECT min(GREATEST(created_at, coalesce(send_at, 0))) FROM messages WHERE status = 'queued'
	`).Scan(&oldest); err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	s.OldestQueuedAt = fromMillis(oldest)
	if !s.OldestQueuedAt.IsZero() {
		s.OldestQueuedAge = now.Sub(s.OldestQueuedAt)
	}

	if err := tx.QueryRow(ctx, `
		SELECT count(*), count(message_id) FROM status_reports WHERE received_at >= $1
	`, since.UnixMilli()).Scan(&s.Reports, &s.MatchedReports); err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	if err := tx.QueryRow(ctx, `
		SELECT count(*), count(message_id) FROM late_submits WHERE at >= $1
	`, since.UnixMilli()).Scan(&s.LateSubmits, &s.MatchedLateSubmits); err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	lat, err := tx.Query(ctx, `
		SELECT r.received_at - p.submitted_at
		FROM status_reports r JOIN message_parts p ON p.message_id = r.message_id AND p.seq = r.part_seq
		WHERE r.received_at >= $1 AND NOT (r.tp_st BETWEEN 32 AND 63) AND p.submitted_at IS NOT NULL
	`, since.UnixMilli())
	if err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	ds, err := pgx.CollectRows(lat, pgx.RowTo[int64])
	if err != nil {
		return s, fmt.Errorf("cannot read queue stats: %w", err)
	}
	if len(ds) > 0 {
		slices.Sort(ds)
		s.ReportLatencyP50 = time.Duration(ds[len(ds)*50/100]) * time.Millisecond
		s.ReportLatencyP99 = time.Duration(ds[min(len(ds)*99/100, len(ds)-1)]) * time.Millisecond
	}
	return s, nil
}

// nullIfZero is nil (NULL) for 0, so that "not set" is NULL.
func nullIfZero(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}
