package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// ServiceStore is the contract of services (verify.Store's services).
type ServiceStore interface {
	CreateService(ctx context.Context, s *simgate.Service) error
	FindService(ctx context.Context, id string) (*simgate.Service, error)
	ListServices(ctx context.Context) ([]*simgate.Service, error)
}

// sameService reports whether got is want as stored: every setting and
// both times.
func sameService(got, want *simgate.Service) bool {
	return got.ID == want.ID && got.FriendlyName == want.FriendlyName && got.CodeLength == want.CodeLength &&
		got.TTL == want.TTL && maps.Equal(got.Templates, want.Templates) &&
		slices.Equal(got.AllowedCountries, want.AllowedCountries) && got.CustomCodeAllowed == want.CustomCodeAllowed &&
		got.CreatedAt.Equal(want.CreatedAt) && got.UpdatedAt.Equal(want.UpdatedAt)
}

// Services checks that a new database has the default service, with no
// settings of its own; that services are stored as given, with a new id
// when they have none, found by id and listed (the default first, then
// oldest first) after a restart too; and that a malformed one, one with an
// id that exists and the default service's id are refused.
func Services(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	store := open(t, "services", clk.Now)
	db := as[ServiceStore](t, store)

	ss, err := db.ListServices(ctx)
	if err != nil || len(ss) != 1 {
		t.Fatalf("services of a new database: %+v, %v; want the default one", ss, err)
	}
	def := ss[0]
	if def.ID != simgate.DefaultServiceID || def.FriendlyName != "" || def.CodeLength != 0 || def.TTL != 0 ||
		len(def.Templates) != 0 || def.AllowedCountries != nil || def.CustomCodeAllowed || def.CreatedAt.IsZero() {
		t.Fatalf("the default service: %+v; want its id alone", def)
	}

	a := &simgate.Service{FriendlyName: "Shop", CodeLength: 8, TTL: 90 * time.Second,
		Templates:        map[string]string{"de": "Dein {app}-Code: {code}", "en": "Your {app} code: {code}\nDo not share it."},
		AllowedCountries: []string{"DE", "AT"}, CustomCodeAllowed: true}
	if err := db.CreateService(ctx, a); err != nil {
		t.Fatal(err)
	}
	if !simgate.IsServiceID(a.ID) || !a.CreatedAt.Equal(clk.Now()) || !a.UpdatedAt.Equal(clk.Now()) {
		t.Fatalf("created: %+v; want a new id, created and updated now", a)
	}
	clk.Advance(time.Minute)
	b := &simgate.Service{ID: simgate.NewServiceID(), FriendlyName: "Bank"}
	if err := db.CreateService(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, err := db.FindService(ctx, a.ID); err != nil || !sameService(got, a) {
		t.Fatalf("FindService = %+v, %v; want %+v", got, err, a)
	}
	if got, err := db.FindService(ctx, b.ID); err != nil || !sameService(got, b) || got.Templates == nil || got.AllowedCountries != nil {
		t.Fatalf("FindService = %+v, %v; want %+v with no templates (an empty map) and no countries (nil)", got, err, b)
	}
	none := simgate.NewServiceID()
	if _, err := db.FindService(ctx, none); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("FindService of none = %v, want not found", err)
	}

	for name, c := range map[string]struct {
		s    *simgate.Service
		code simgate.Code
	}{
		"its id again": {&simgate.Service{ID: a.ID, FriendlyName: "again"}, simgate.CodeConflict},
		"the default":  {&simgate.Service{ID: simgate.DefaultServiceID}, simgate.CodeConflict},
		"a bad id":     {&simgate.Service{ID: "VA-not-an-id"}, simgate.CodeInvalid},
		"code length":  {&simgate.Service{CodeLength: 11}, simgate.CodeInvalid},
		"a comma":      {&simgate.Service{AllowedCountries: []string{"DE,AT"}}, simgate.CodeInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			if err := db.CreateService(ctx, c.s); simgate.ErrorCode(err) != c.code {
				t.Fatalf("CreateService = %v, want %s", err, c.code)
			}
		})
	}

	// A restart keeps them; the default first, then oldest first.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	db = as[ServiceStore](t, open(t, "services", clk.Now))
	ss, err = db.ListServices(ctx)
	if err != nil || len(ss) != 3 || ss[0].ID != simgate.DefaultServiceID || !sameService(ss[1], a) || !sameService(ss[2], b) {
		t.Fatalf("after a restart: %+v, %v; want the default, %s and %s", ss, err, a.ID, b.ID)
	}
}

// ServiceKeyStore is the contract of keys limited to services.
type ServiceKeyStore interface {
	KeyStore
	ServiceStore
}

// APIKeyServices checks that a key's service limit is kept and found with
// the key, that a key limited to a service that does not exist, or one
// whose scopes see every service anyway (read, admin), is refused, and that
// a key without a limit has none.
func APIKeyServices(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[ServiceKeyStore](t, open(t, "keyservices", clk.Now))
	a, b := &simgate.Service{FriendlyName: "A"}, &simgate.Service{FriendlyName: "B"}
	for _, s := range []*simgate.Service{a, b} {
		if err := db.CreateService(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	key := func(name string, scopes []simgate.Scope, services ...string) (*simgate.APIKey, []byte) {
		hash := sha256.Sum256([]byte(name))
		return &simgate.APIKey{Name: name, Prefix: "sg_x", Hash: hash[:], Scopes: scopes, Services: services}, hash[:]
	}
	verify := []simgate.Scope{simgate.ScopeVerify}
	limited, hash := key("limited", []simgate.Scope{simgate.ScopeVerify, simgate.ScopeSend}, b.ID, simgate.DefaultServiceID, a.ID)
	if err := db.CreateAPIKey(ctx, limited); err != nil {
		t.Fatal(err)
	}
	if got, err := db.FindAPIKeyByHash(ctx, hash); err != nil || !slices.Equal(got.Services, limited.Services) {
		t.Fatalf("found %+v, %v; want the services %q in their order", got, err, limited.Services)
	}
	clk.Advance(time.Second)
	all, hash := key("all", verify)
	if err := db.CreateAPIKey(ctx, all); err != nil {
		t.Fatal(err)
	}
	if got, err := db.FindAPIKeyByHash(ctx, hash); err != nil || got.Services != nil {
		t.Fatalf("a key without a limit: %+v, %v; want no services", got, err)
	}
	keys, err := db.ListAPIKeys(ctx)
	if err != nil || len(keys) != 2 || !slices.Equal(keys[0].Services, limited.Services) || keys[1].Services != nil {
		t.Fatalf("listed %+v, %v", keys, err)
	}

	missing := simgate.NewServiceID()
	for name, k := range map[string]*simgate.APIKey{
		"no such service": func() *simgate.APIKey { k, _ := key("missing", verify, a.ID, missing); return k }(),
		"read scope":      func() *simgate.APIKey { k, _ := key("read", []simgate.Scope{simgate.ScopeRead}, a.ID); return k }(),
		"admin scope":     func() *simgate.APIKey { k, _ := key("admin", []simgate.Scope{simgate.ScopeAdmin}, a.ID); return k }(),
		"twice":           func() *simgate.APIKey { k, _ := key("twice", verify, a.ID, a.ID); return k }(),
	} {
		t.Run(name, func(t *testing.T) {
			if err := db.CreateAPIKey(ctx, k); simgate.ErrorCode(err) != simgate.CodeInvalid {
				t.Fatalf("CreateAPIKey = %v, want invalid", err)
			}
		})
	}
	if keys, err := db.ListAPIKeys(ctx); err != nil || len(keys) != 2 {
		t.Fatalf("after the refusals: %d keys, %v; want 2", len(keys), err)
	}
}

// VerificationServiceStore is the contract of verifications in services.
type VerificationServiceStore interface {
	VerificationStore
	ServiceStore
	RecentVerifications(ctx context.Context, limit int) ([]*simgate.Verification, error)
}

// VerificationServices checks that a verification keeps its service; that
// a number has a pending verification per service, found by service and
// number, also when starts in two services run at once (one each); that
// the counts of a number's sends are of every service; and that a
// verification of a service that does not exist is refused.
func VerificationServices(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[VerificationServiceStore](t, open(t, "verservices", clk.Now))
	a := &simgate.Service{FriendlyName: "A"}
	if err := db.CreateService(ctx, a); err != nil {
		t.Fatal(err)
	}
	const number = "+4915123456789"
	inDefault := &simgate.Verification{To: number, CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(time.Hour)}
	StartVerification(t, db, inDefault, bytes.Repeat([]byte{1}, 32))
	inA := &simgate.Verification{To: number, CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(time.Hour), ServiceID: a.ID}
	StartVerification(t, db, inA, bytes.Repeat([]byte{2}, 32))
	if inDefault.ServiceID != simgate.DefaultServiceID || inA.ServiceID != a.ID {
		t.Fatalf("services: %s and %s", inDefault.ServiceID, inA.ServiceID)
	}
	if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		for _, want := range []*simgate.Verification{inDefault, inA} {
			got, _, err := tx.PendingVerification(ctx, want.ServiceID, number)
			if err != nil || got.ID != want.ID || got.ServiceID != want.ServiceID || !bytes.Equal(got.CodeHash, want.CodeHash) {
				t.Fatalf("pending of %s in %s: %+v, %v; want %s", number, want.ServiceID, got, err, want.ID)
			}
			if got, _, err := tx.FindVerification(ctx, want.ID); err != nil || got.ServiceID != want.ServiceID {
				t.Fatalf("FindVerification = %+v, %v; want the service %s", got, err, want.ServiceID)
			}
		}
		if _, _, err := tx.PendingVerification(ctx, simgate.NewServiceID(), number); simgate.ErrorCode(err) != simgate.CodeNotFound {
			t.Fatalf("pending in another service: %v, want not found", err)
		}
		if n, _, err := tx.CountSends(ctx, number, time.Time{}); err != nil || n != 2 {
			t.Fatalf("sends to the number = %d, %v; want 2, of both services", n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		v := &simgate.Verification{ID: simgate.NewID("ver", tx.Now()), To: number, CodeLength: 6, MaxAttempts: 3,
			ExpiresAt: clk.Now().Add(time.Hour), ServiceID: simgate.NewServiceID(), CodeHash: make([]byte, 32)}
		return tx.CreateVerification(ctx, v)
	}); err == nil {
		t.Fatal("a verification of a service that does not exist was stored")
	}
	if got, _, err := db.GetVerification(ctx, inA.ID); err != nil || got.ServiceID != a.ID {
		t.Fatalf("GetVerification = %+v, %v; want the service %s", got, err, a.ID)
	}
	vs, err := db.RecentVerifications(ctx, 10)
	if err != nil || len(vs) != 2 || vs[0].ServiceID == vs[1].ServiceID {
		t.Fatalf("RecentVerifications = %+v, %v; want the two, each with its service", vs, err)
	}

	// Starts of one new number in two services at once: one verification
	// each, the others resends of it.
	const other = "+4915123456780"
	created := map[string]*atomic.Int32{simgate.DefaultServiceID: {}, a.ID: {}}
	var wg sync.WaitGroup
	for i := range 20 {
		service := []string{simgate.DefaultServiceID, a.ID}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
				if _, _, err := tx.CountSends(ctx, other, tx.Now().Add(-time.Hour)); err != nil {
					return err
				}
				cur, _, err := tx.PendingVerification(ctx, service, other)
				switch {
				case simgate.ErrorCode(err) == simgate.CodeNotFound:
					pause()
					v := &simgate.Verification{ID: simgate.NewID("ver", tx.Now()), To: other, CodeHash: make([]byte, 32),
						CodeLength: 6, MaxAttempts: 3, ExpiresAt: tx.Now().Add(time.Hour), ServiceID: service}
					if err := tx.CreateVerification(ctx, v); err != nil {
						return err
					}
					created[service].Add(1)
				case err != nil:
					return err
				default:
					if err := tx.ResendVerification(ctx, cur); err != nil {
						return err
					}
				}
				return tx.AddSend(ctx, other)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for service, n := range created {
		if got := n.Load(); got != 1 {
			t.Errorf("service %s: concurrent starts created %d verifications, want 1", service, got)
		}
	}
}
