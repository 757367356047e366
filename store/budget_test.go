package store_test

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

func TestTakeBudget(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 12, 0, 30, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	path := filepath.Join(t.TempDir(), "simgate.db")
	db, err := store.Open(ctx, path, store.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	hour := simgate.Budget{Key: "global:hour", Limit: 30, Window: time.Hour}
	small := simgate.Budget{Key: "prefix:+4915", Limit: 12, Window: time.Hour}

	take := func(n int, bs ...simgate.Budget) *simgate.BudgetRefusal {
		t.Helper()
		r, err := db.TakeBudget(ctx, n, bs)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := take(10, hour, small); r != nil {
		t.Fatalf("first 10: refused %+v", r)
	}
	// All or none: the prefix refuses, so the hour counts nothing either.
	if r := take(10, hour, small); r == nil || r.Index != 1 || r.Counted != 10 {
		t.Fatalf("refusal = %+v, want the prefix's with 10 counted", r)
	}
	advance(20 * time.Minute)
	if r := take(20, hour); r != nil {
		t.Fatalf("20 more: refused %+v", r)
	}
	r := take(1, hour)
	if r == nil || r.Index != 0 || r.Counted != 30 {
		t.Fatalf("refusal = %+v, want 30 counted", r)
	}
	// The 10 of 12:00:30 (bucket 12:00) leave the window at 13:01.
	if got, want := r.After, 40*time.Minute+30*time.Second; got != want {
		t.Fatalf("After = %v, want %v", got, want)
	}
	if r := take(31, simgate.Budget{Key: "other", Limit: 30, Window: time.Hour}); r == nil || r.After != time.Hour {
		t.Fatalf("more than the limit: refusal = %+v, want one for a whole window", r)
	}

	// A restart keeps the counts.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpenDBAt(t, path, store.Options{Now: clock})
	if r := take(1, hour); r == nil || r.Counted != 30 {
		t.Fatalf("after restart: refusal = %+v, want 30 counted", r)
	}
	advance(40 * time.Minute) // 13:00:30
	if r := take(1, hour); r == nil {
		t.Fatal("13:00:30: admitted, want refused until 13:01")
	}
	advance(30 * time.Second)
	if r := take(10, hour); r != nil {
		t.Fatalf("13:01: refused %+v", r)
	}
	if r := take(1, hour); r == nil || r.Counted != 30 {
		t.Fatalf("refusal = %+v, want 30 counted", r)
	}

	// Concurrent callers never take more than the limit between them.
	conc := simgate.Budget{Key: "conc", Limit: 50, Window: 24 * time.Hour}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				r, err := db.TakeBudget(ctx, 1, []simgate.Budget{conc})
				if err != nil {
					t.Error(err)
					return
				} else if r == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got, want := ok.Load(), int64(50); got != want {
		t.Fatalf("concurrent callers took %d, want %d", got, want)
	}
}
