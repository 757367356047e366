package postgres

import (
	"context"
	"fmt"
	"math"
	"time"
)

// bucketPurgeEvery is how many takes pass between two deletions of the
// buckets that are full again.
const bucketPurgeEvery = 1024

// TakeTokens takes n tokens from the token bucket of key, which refills
// perSecond tokens a second up to burst and is the same bucket for every
// node of the database (migrations/0003_rate_buckets.sql). It returns 0
// when it took them, and otherwise, taking none, how long until there are
// n. n is at least 1 and at most burst (the caller clamps it). Every so
// often it deletes the buckets that are full again, which a new bucket is
// too.
func (db *DB) TakeTokens(ctx context.Context, key string, perSecond float64, burst, n int) (time.Duration, error) {
	now := db.txNow().UnixMilli()
	var wait float64
	if err := db.pool.QueryRow(ctx, `SELECT take_tokens($1, $2, $3, $4, $5)`, key, perSecond, burst, n, now).Scan(&wait); err != nil {
		return 0, fmt.Errorf("cannot take from the rate limit of %s: %w", key, err)
	}
	if db.takes.Add(1)%bucketPurgeEvery == 0 {
		if _, err := db.pool.Exec(ctx, `DELETE FROM rate_buckets WHERE full_at <= $1`, now); err != nil {
			db.logger.Warn("cannot delete full rate buckets", "error", err)
		}
	}
	if wait <= 0 {
		return 0, nil
	}
	if wait > math.MaxInt64/float64(time.Second) {
		return time.Duration(math.MaxInt64), nil
	}
	return time.Duration(math.Ceil(wait * float64(time.Second))), nil
}
