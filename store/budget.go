package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// budgetBuckets is how many buckets a budget's window is cut into. A bucket
// is counted for a whole window after the one it starts, so a window covers
// between Window and Window*(1+1/budgetBuckets) of time: a budget may refuse
// up to one bucket early, but never lets more than its Limit through in any
// span of Window.
const budgetBuckets = 60

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
		w, g := budgetSpans(b)
		args = append(args, b.Key, now-now%g-w)
	}
	q.WriteString(` ORDER BY key, bucket`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("cannot take budget: %w", err)
	}
	counts := map[string][]budgetSlot{}
	for rows.Next() {
		var key string
		var s budgetSlot
		if err := rows.Scan(&key, &s.bucket, &s.count); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot take budget: %w", err)
		}
		counts[key] = append(counts[key], s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot take budget: %w", err)
	}
	for i, b := range bs {
		if r := refusal(now, n, b, counts[b.Key]); r != nil {
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
		w, g := budgetSpans(b)
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

// budgetSlot is the count of one bucket.
type budgetSlot struct{ bucket, count int64 }

// budgetSpans returns b's window and bucket length in milliseconds.
func budgetSpans(b simgate.Budget) (window, bucket int64) {
	window = max(b.Window.Milliseconds(), budgetBuckets)
	return window, window / budgetBuckets
}

// refusal returns the refusal of n more SMS under b at now (unix ms), given
// the buckets of its window oldest first, or nil when they fit.
func refusal(now int64, n int, b simgate.Budget, slots []budgetSlot) *simgate.BudgetRefusal {
	total := 0
	for _, s := range slots {
		total += int(s.count)
	}
	if total+n <= b.Limit {
		return nil
	}
	r := &simgate.BudgetRefusal{Counted: total, After: b.Window}
	if n > b.Limit {
		return r
	}
	w, g := budgetSpans(b)
	left := total
	for _, s := range slots {
		left -= int(s.count)
		if left+n <= b.Limit {
			r.After = time.Duration(s.bucket+w+g-now) * time.Millisecond
			break
		}
	}
	return r
}
