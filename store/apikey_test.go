package store_test

import (
	"crypto/sha256"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

func TestAPIKeys(t *testing.T) {
	ctx := testContext(t, time.Minute)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db := MustOpenDBAt(t, filepath.Join(t.TempDir(), "simgate.db"), store.Options{Now: clock})

	hash := sha256.Sum256([]byte("sg_live_not-a-real-key"))
	k := &simgate.APIKey{Name: "backend", Prefix: "sg_live_no", Hash: hash[:], Scopes: []simgate.Scope{simgate.ScopeVerify, simgate.ScopeSend}}
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if k.ID == "" {
		t.Fatal("no id set")
	} else if got, want := k.CreatedAt, now; !got.Equal(want) {
		t.Fatalf("CreatedAt = %v, want %v", got, want)
	}

	got, err := db.FindAPIKeyByHash(ctx, hash[:])
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.Name != k.Name || got.Prefix != k.Prefix || !slices.Equal(got.Hash, k.Hash) ||
		!slices.Equal(got.Scopes, k.Scopes) || !got.CreatedAt.Equal(k.CreatedAt) || !got.RevokedAt.IsZero() {
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

	now = now.Add(time.Hour)
	if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	revokedAt := now
	if _, err := db.FindAPIKeyByHash(ctx, hash[:]); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("FindAPIKeyByHash(revoked) = %v, want not found", err)
	}
	now = now.Add(time.Hour)
	if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if err := db.RevokeAPIKey(ctx, "key_nope"); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("RevokeAPIKey(unknown) = %v, want not found", err)
	}

	keys, err := db.ListAPIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(keys), 1; got != want {
		t.Fatalf("listed %d keys, want %d", got, want)
	}
	if got, want := keys[0].RevokedAt, revokedAt; !got.Equal(want) {
		t.Fatalf("RevokedAt = %v, want the first revocation %v", got, want)
	}
}
