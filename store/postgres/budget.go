package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// TakeBudget counts n SMS, now, against every budget of bs, or against none:
// when n more would take a budget over its Limit within its Window it counts
// nothing and returns the first such budget's refusal (simgate.Budget.
// Refusal). The counts are the cluster's: the transaction holds an advisory
// lock per budget key, taken in key order, so that callers on any host that
// share a budget check and count one after another and never take more
// than its Limit between them. Counts older than every window that needs
// them are deleted on the way.
func (db *DB) TakeBudget(ctx context.Context, n int, bs []simgate.Budget) (*simgate.BudgetRefusal, error) {
	if len(bs) == 0 {
		return nil, nil
	}
	var refused *simgate.BudgetRefusal
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		now := db.txNow().UnixMilli()
		keys := make([]string, len(bs))
		for i, b := range bs {
			keys[i] = b.Key
		}
		slices.Sort(keys)
		for _, k := range slices.Compact(keys) {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "budget:"+k); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM budget_counts WHERE expires_at <= $1`, now); err != nil {
			return err
		}
		for i, b := range bs {
			w, g := b.Spans()
			rows, err := tx.Query(ctx, `SELECT bucket, count FROM budget_counts WHERE key = $1 AND bucket >= $2 ORDER BY bucket`,
				b.Key, now-now%g-w)
			if err != nil {
				return err
			}
			slots, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (simgate.BudgetSlot, error) {
				var s simgate.BudgetSlot
				return s, row.Scan(&s.Bucket, &s.Count)
			})
			if err != nil {
				return err
			}
			if r := b.Refusal(now, n, slots); r != nil {
				r.Index = i
				refused = r
				return nil
			}
		}
		for _, b := range bs {
			w, g := b.Spans()
			cur := now - now%g
			if _, err := tx.Exec(ctx, `
				INSERT INTO budget_counts (key, bucket, count, expires_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (key, bucket) DO UPDATE SET count = budget_counts.count + excluded.count
			`, b.Key, cur, n, cur+w+g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot take budget: %w", unavailable(err))
	}
	return refused, nil
}
