package postgres

import (
	"context"
	"fmt"
	"time"
)

// DefaultFoldInterval is how often an open DB folds the counts of statuses
// when Options.FoldInterval is zero.
const DefaultFoldInterval = 10 * time.Second

// The counts of statuses (status_counts) are a log of changes, +1 and -1,
// that writers append and StatusCounts sums (migrations/0002_*.sql says
// why). Folding replaces the rows with one per entity and status, so that
// the sum reads a few rows plus the changes since the last fold. Every host
// folds on its own timer; status_counts_fold lets one fold run at a time and
// makes the others return at once, and a fold waits for no writer, nor a
// writer for it.
//
// The fold runs here rather than on StatusCounts' read path: a host that no
// one scrapes for metrics still writes the log, and a read stays a read.

// folder runs foldStatusCounts every interval until ctx ends.
func (db *DB) folder(ctx context.Context, every time.Duration) {
	defer db.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, _, err := db.foldStatusCounts(ctx); err != nil && ctx.Err() == nil {
				db.logger.Warn("cannot fold the counts of statuses", "error", err)
			}
		}
	}
}

// foldStatusCounts folds the rows of status_counts that are committed into
// one per entity and status, and returns how many rows it folded; false
// when another fold was in progress, which then folds them.
func (db *DB) foldStatusCounts(ctx context.Context) (int64, bool, error) {
	var n *int64
	if err := db.pool.QueryRow(ctx, `SELECT status_counts_fold()`).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("cannot fold the counts of statuses: %w", err)
	}
	if n == nil {
		return 0, false, nil
	}
	return *n, true, nil
}
