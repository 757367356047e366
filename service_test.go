package simgate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// Service ids are written as Twilio's ServiceSids, and new ones differ.
func TestServiceIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := simgate.NewServiceID()
		if !simgate.IsServiceID(id) || seen[id] {
			t.Fatalf("NewServiceID = %q: not an id, or twice", id)
		}
		seen[id] = true
	}
	if !simgate.IsServiceID(simgate.DefaultServiceID) {
		t.Fatalf("the default service's id %q is not an id", simgate.DefaultServiceID)
	}
	for _, bad := range []string{"", "VA", "va0123456789abcdef0123456789abcdef", "VA0123456789ABCDEF0123456789abcdef",
		"VA0123456789abcdef0123456789abcde", "VA0123456789abcdef0123456789abcdef0", "MG0123456789abcdef0123456789abcdef",
		"VA0123456789abcdeg0123456789abcdef"} {
		if simgate.IsServiceID(bad) {
			t.Errorf("IsServiceID(%q) = true", bad)
		}
	}
}

func TestServiceCheckCreate(t *testing.T) {
	ok := simgate.Service{ID: simgate.NewServiceID(), CodeLength: 8, TTL: 5 * time.Minute}
	if err := ok.CheckCreate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		s    simgate.Service
		code simgate.Code
	}{
		"no id":          {simgate.Service{}, simgate.CodeInvalid},
		"upper case id":  {simgate.Service{ID: strings.ToUpper(ok.ID)}, simgate.CodeInvalid},
		"default":        {simgate.Service{ID: simgate.DefaultServiceID}, simgate.CodeConflict},
		"short code":     {simgate.Service{ID: ok.ID, CodeLength: 3}, simgate.CodeInvalid},
		"long code":      {simgate.Service{ID: ok.ID, CodeLength: 11}, simgate.CodeInvalid},
		"negative ttl":   {simgate.Service{ID: ok.ID, TTL: -time.Minute}, simgate.CodeInvalid},
		"ttl below a ms": {simgate.Service{ID: ok.ID, TTL: time.Minute + time.Microsecond}, simgate.CodeInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			if got := simgate.ErrorCode(c.s.CheckCreate()); got != c.code {
				t.Fatalf("CheckCreate = %s, want %s", got, c.code)
			}
		})
	}
}

// A key's service limit: kept only on verify and send keys, ids once each;
// the service a request is about, and what a limited key may use.
func TestAPIKeyServices(t *testing.T) {
	a, b := simgate.NewServiceID(), simgate.NewServiceID()
	k := &simgate.APIKey{Scopes: []simgate.Scope{simgate.ScopeVerify, simgate.ScopeSend}, Services: []string{a, b}}
	if got, err := k.StoredServices(); err != nil || got != a+","+b {
		t.Fatalf("StoredServices = %q, %v", got, err)
	}
	if got := simgate.ParseServices(a + "," + b); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("ParseServices = %q", got)
	}
	if got := simgate.ParseServices(""); got != nil {
		t.Fatalf("ParseServices(\"\") = %q, want nil", got)
	}
	for name, bad := range map[string]*simgate.APIKey{
		"read":   {Scopes: []simgate.Scope{simgate.ScopeVerify, simgate.ScopeRead}, Services: []string{a}},
		"admin":  {Scopes: []simgate.Scope{simgate.ScopeAdmin}, Services: []string{a}},
		"not id": {Scopes: []simgate.Scope{simgate.ScopeVerify}, Services: []string{"VAxyz"}},
		"twice":  {Scopes: []simgate.Scope{simgate.ScopeVerify}, Services: []string{a, a}},
	} {
		if _, err := bad.StoredServices(); simgate.ErrorCode(err) != simgate.CodeInvalid {
			t.Errorf("%s: StoredServices = %v, want invalid", name, err)
		}
	}
	unlimited := &simgate.APIKey{Scopes: []simgate.Scope{simgate.ScopeAdmin}}
	if got, err := unlimited.StoredServices(); err != nil || got != "" {
		t.Fatalf("an unlimited key: StoredServices = %q, %v", got, err)
	}

	one := &simgate.APIKey{Services: []string{a}}
	for _, c := range []struct {
		k      *simgate.APIKey
		named  string
		want   string
		code   simgate.Code
		allowB bool
	}{
		{unlimited, "", simgate.DefaultServiceID, "", true},
		{unlimited, b, b, "", true},
		{one, "", a, "", false},
		{one, a, a, "", false},
		{one, b, "", simgate.CodeNotFound, false},
		{one, simgate.DefaultServiceID, "", simgate.CodeNotFound, false},
		{k, "", "", simgate.CodeInvalid, true},
		{k, b, b, "", true},
		{unlimited, "VA", "", simgate.CodeInvalid, true},
	} {
		got, err := c.k.ServiceFor(c.named)
		if got != c.want || simgate.ErrorCode(err) != c.code {
			t.Errorf("key limited to %q: ServiceFor(%q) = %q, %v; want %q, %q", c.k.Services, c.named, got, err, c.want, c.code)
		}
		if c.k.AllowsService(b) != c.allowB {
			t.Errorf("key limited to %q: AllowsService(b) = %v", c.k.Services, !c.allowB)
		}
	}
	// Not found says the same for a service that exists and is not the
	// key's as for one that does not exist.
	_, err := one.ServiceFor(b)
	if got, want := simgate.ErrorMessage(err), simgate.ServiceNotFound(b).Message; got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
}
