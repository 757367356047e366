// Package storetest holds the tests every store backend must pass: the
// contract the services and adapters rely on, whatever the database. A
// backend's own tests run each with an Open of that backend:
//
//	func TestAPIKeys(t *testing.T) { storetest.APIKeys(t, opener(t)) }
//
// The SQLite store (store) runs every one; the PostgreSQL store
// (store/postgres) runs those it implements so far.
package storetest

import (
	"context"
	"crypto/sha256"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// Clock is a test clock that moves only when told.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed time.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Store is an open database of any backend; each test asserts the
// interfaces it checks (KeyStore, BudgetStore, ...).
type Store interface{ Close() error }

// Open opens the database called name for the running test, on the clock
// now: an empty one the first time, the same one again after it was closed
// (a restart). What it opens is closed when the test ends.
type Open func(t *testing.T, name string, now simgate.Clock) Store

// as returns s as a T, or fails the test when the backend does not
// implement T yet.
func as[T any](t *testing.T, s Store) T {
	t.Helper()
	v, ok := s.(T)
	if !ok {
		t.Fatalf("%T does not implement %v", s, reflect.TypeFor[T]())
	}
	return v
}

// KeyStore is the contract of API keys: api.KeyStore, and the management
// of keys by simgate apikey and the console.
type KeyStore interface {
	CreateAPIKey(ctx context.Context, k *simgate.APIKey) error
	FindAPIKeyByHash(ctx context.Context, hash []byte) (*simgate.APIKey, error)
	ListAPIKeys(ctx context.Context) ([]*simgate.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) error
	TouchAPIKey(ctx context.Context, id string) error
}

// APIKeys checks that keys are kept by their hash only, found while they
// are valid, refused when malformed or twice, revoked once (the first time
// is kept), and their use recorded.
func APIKeys(t *testing.T, open Open) {
	ctx := context.Background()
	clk := NewClock()
	db := as[KeyStore](t, open(t, "keys", clk.Now))

	hash := sha256.Sum256([]byte("sg_live_not-a-real-key"))
	k := &simgate.APIKey{Name: "backend", Prefix: "sg_live_no", Hash: hash[:], Scopes: []simgate.Scope{simgate.ScopeVerify, simgate.ScopeSend}}
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if k.ID == "" {
		t.Fatal("no id set")
	} else if got, want := k.CreatedAt, clk.Now(); !got.Equal(want) {
		t.Fatalf("CreatedAt = %v, want %v", got, want)
	}

	got, err := db.FindAPIKeyByHash(ctx, hash[:])
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.Name != k.Name || got.Prefix != k.Prefix || !slices.Equal(got.Hash, k.Hash) ||
		!slices.Equal(got.Scopes, k.Scopes) || !got.CreatedAt.Equal(k.CreatedAt) || !got.RevokedAt.IsZero() || !got.LastUsedAt.IsZero() {
		t.Fatalf("found %+v, want %+v", got, k)
	}

	other := sha256.Sum256([]byte("another"))
	if _, err := db.FindAPIKeyByHash(ctx, other[:]); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("FindAPIKeyByHash(unknown) = %v, want not found", err)
	}

	// The same key twice is a conflict.
	dup := &simgate.APIKey{Name: "dup", Prefix: "x", Hash: hash[:], Scopes: []simgate.Scope{simgate.ScopeRead}}
	if err := db.CreateAPIKey(ctx, dup); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("CreateAPIKey(duplicate) = %v, want conflict", err)
	}

	for name, bad := range map[string]*simgate.APIKey{
		"short hash": {Name: "x", Hash: []byte{1, 2, 3}, Scopes: []simgate.Scope{simgate.ScopeRead}},
		"no scope":   {Name: "x", Hash: other[:]},
		"bad scope":  {Name: "x", Hash: other[:], Scopes: []simgate.Scope{"root"}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := db.CreateAPIKey(ctx, bad); simgate.ErrorCode(err) != simgate.CodeInvalid {
				t.Fatalf("CreateAPIKey = %v, want invalid", err)
			}
		})
	}

	clk.Advance(time.Minute)
	if err := db.TouchAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := db.FindAPIKeyByHash(ctx, hash[:]); err != nil || !got.LastUsedAt.Equal(clk.Now()) {
		t.Fatalf("after use: %+v, %v; want last used %v", got, err, clk.Now())
	}

	clk.Advance(time.Hour)
	if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	revokedAt := clk.Now()
	if _, err := db.FindAPIKeyByHash(ctx, hash[:]); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("FindAPIKeyByHash(revoked) = %v, want not found", err)
	}
	clk.Advance(time.Hour)
	if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if err := db.RevokeAPIKey(ctx, "key_nope"); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("RevokeAPIKey(unknown) = %v, want not found", err)
	}

	second := sha256.Sum256([]byte("sg_live_second"))
	if err := db.CreateAPIKey(ctx, &simgate.APIKey{Name: "later", Prefix: "sg_live_se", Hash: second[:], Scopes: []simgate.Scope{simgate.ScopeAdmin}}); err != nil {
		t.Fatal(err)
	}
	keys, err := db.ListAPIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != k.ID || keys[1].Name != "later" {
		t.Fatalf("listed %+v; want the two keys, oldest first", keys)
	}
	if got, want := keys[0].RevokedAt, revokedAt; !got.Equal(want) {
		t.Fatalf("RevokedAt = %v, want the first revocation %v", got, want)
	}
}

// BudgetStore is the contract of the API's budgets (api.BudgetStore).
type BudgetStore interface {
	TakeBudget(ctx context.Context, n int, bs []simgate.Budget) (*simgate.BudgetRefusal, error)
}

// Budgets checks that budgets count SMS in sliding windows, all or none,
// with the time until a refusal ends, that the counts outlast a restart, and
// that concurrent callers never take more than a limit between them.
func Budgets(t *testing.T, open Open) {
	ctx := context.Background()
	clk := NewClock()
	clk.Advance(-clk.Now().Sub(time.Date(2026, 11, 23, 12, 0, 30, 0, time.UTC)))
	store := open(t, "budgets", clk.Now)
	db := as[BudgetStore](t, store)
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
	clk.Advance(20 * time.Minute)
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
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	db = as[BudgetStore](t, open(t, "budgets", clk.Now))
	if r := take(1, hour); r == nil || r.Counted != 30 {
		t.Fatalf("after restart: refusal = %+v, want 30 counted", r)
	}
	clk.Advance(40 * time.Minute) // 13:00:30
	if r := take(1, hour); r == nil {
		t.Fatal("13:00:30: admitted, want refused until 13:01")
	}
	clk.Advance(30 * time.Second)
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
