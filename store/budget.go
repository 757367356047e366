package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/simgate/simgate"
)

// TakeBudget counts n SMS, now, against every budget of bs, or against none:
// when n more would take a budget over its Limit within its Window it counts
// nothing and returns the first such budget's refusal. The check and the
// count are one write transaction, so concurrent callers cannot both take the
// last of a budget, and the counts outlast a restart. Counts older than every
// window that needs them are deleted on the way. The API calls it for every
// SMS it admits, so it runs three statements whatever the number of budgets.
func (db *DB) TakeBudget(ctx context.Context, n int, bs []simgate.Budget) (*simgate.BudgetRefusal, error) {
	if len(bs) == 0 {
		return nil, nil
	}
	tx, err := db.beginTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot take budget: %w", err)
	}
	defer tx.Rollback()
	now := tx.now.UnixMilli()
	if _, err := tx.ExecContext(ctx, `DELETE FROM budget_counts WHERE expires_at <= ?`, now); err != nil {
		return nil, fmt.Errorf("cannot take budget: %w", err)
	}

	// One query reads every budget's buckets in its window.
	var q strings.Builder
	args := make([]any, 0, 2*len(bs))
	q.WriteString(`SELECT key, bucket, count FROM budget_counts WHERE `)
	for i, b := range bs {
		if i > 0 {
			q.WriteString(` OR `)
		}
		q.WriteString(`(key = ? AND bucket >= ?)`)
		w, g := b.Spans()
		args = append(args, b.Key, now-now%g-w)
	}
	q.WriteString(` ORDER BY key, bucket`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("cannot take budget: %w", err)
	}
	counts := map[string][]simgate.BudgetSlot{}
	for rows.Next() {
		var key string
		var s simgate.BudgetSlot
		if err := rows.Scan(&key, &s.Bucket, &s.Count); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot take budget: %w", err)
		}
		counts[key] = append(counts[key], s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot take budget: %w", err)
	}
	for i, b := range bs {
		if r := b.Refusal(now, n, counts[b.Key]); r != nil {
			r.Index = i
			return r, nil
		}
	}

	q.Reset()
	args = args[:0]
	q.WriteString(`INSERT INTO budget_counts (key, bucket, count, expires_at) VALUES `)
	for i, b := range bs {
		if i > 0 {
			q.WriteString(`, `)
		}
		q.WriteString(`(?, ?, ?, ?)`)
		w, g := b.Spans()
		cur := now - now%g
		args = append(args, b.Key, cur, n, cur+w+g)
	}
	q.WriteString(` ON CONFLICT (key, bucket) DO UPDATE SET count = count + excluded.count`)
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return nil, fmt.Errorf("cannot take budget: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cannot take budget: %w", err)
	}
	return nil, nil
}
