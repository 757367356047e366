// Package storetest holds the tests every store backend must pass: the
// contract the services and adapters rely on, whatever the database. A
// backend's own tests run them with a function that opens a new, empty
// database of that backend on the given clock:
//
//	func TestAPIKeys(t *testing.T) { storetest.APIKeys(t, openForTest) }
//
// The SQLite store (store) runs every one; the PostgreSQL store
// (store/postgres) runs those it implements so far.
package storetest

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
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
func APIKeys(t *testing.T, open func(t *testing.T, now simgate.Clock) KeyStore) {
	ctx := context.Background()
	clk := NewClock()
	db := open(t, clk.Now)

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
