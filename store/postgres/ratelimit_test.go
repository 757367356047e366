package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/simgate/simgate/store/storetest"
)

// A bucket is one for every node: what one node takes, the other cannot;
// it refills at its rate up to its burst; a clock behind the last take
// adds nothing; full buckets are deleted every so often.
func TestTakeTokens(t *testing.T) {
	ctx := context.Background()
	clk := storetest.NewClock()
	a, b := openTwo(t, clk)
	take := func(db *DB, key string, n int) time.Duration {
		t.Helper()
		wait, err := db.TakeTokens(ctx, key, 2, 3, n) // 2 a second, up to 3
		if err != nil {
			t.Fatal(err)
		}
		return wait
	}
	for i, db := range []*DB{a, b, a} {
		if w := take(db, "key:k1", 1); w != 0 {
			t.Fatalf("take %d: wait %v; want the token", i+1, w)
		}
	}
	if w := take(b, "key:k1", 1); w != 500*time.Millisecond {
		t.Fatalf("fourth take: wait %v; want 500ms (one token at 2/s)", w)
	}
	if w := take(a, "key:k2", 3); w != 0 {
		t.Fatalf("another key: wait %v; want its own full bucket", w)
	}
	clk.Advance(time.Second) // two tokens back
	if w := take(b, "key:k1", 3); w != 500*time.Millisecond {
		t.Fatalf("three after 1 s: wait %v; want 500ms (two of three there)", w)
	}
	if w := take(a, "key:k1", 2); w != 0 {
		t.Fatalf("two after 1 s: wait %v; want them (the refused take took none)", w)
	}
	// b's clock runs an hour behind: the bucket stays empty for it.
	behind, err := Open(ctx, a.pool.Config().ConnString(), Options{Now: func() time.Time { return clk.Now().Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	if w := take(behind, "key:k1", 1); w != 500*time.Millisecond {
		t.Fatalf("a clock behind: wait %v; want 500ms, nothing refilled", w)
	}

	clk.Advance(time.Hour) // every bucket full again
	for range bucketPurgeEvery {
		take(a, "ip:192.0.2.1", 1)
		clk.Advance(time.Second)
	}
	var n int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM rate_buckets`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d buckets after the purge; want 1 (the one in use)", n)
	}
}
