package verify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/verify"
)

// CheckService holds a service to the gateway's bounds, and leaves what it
// does not set to the gateway.
func TestCheckService(t *testing.T) {
	o := verify.Options{MinCodeLength: 8, MaxTTL: 20 * time.Minute, AllowedCountries: []string{"DE", "AT"}}
	for _, ok := range []simgate.Service{
		{FriendlyName: "Shop"},
		{FriendlyName: "Shop", CodeLength: 8, TTL: 20 * time.Minute, AllowedCountries: []string{"AT"}},
		{FriendlyName: "Shop", Templates: map[string]string{"pt-BR": "Seu código {app}: {code}", "zh_Hant": "{code}"}},
	} {
		if err := o.CheckService(&ok); err != nil {
			t.Errorf("CheckService(%+v) = %v", ok, err)
		}
	}
	long := strings.Repeat("Do not share it. ", 100) + "{code}"
	for name, c := range map[string]struct {
		s    simgate.Service
		want string
	}{
		"no name":     {simgate.Service{}, "friendly_name is required"},
		"long name":   {simgate.Service{FriendlyName: strings.Repeat("x", verify.MaxAppName+1)}, "friendly_name must be 1 to 64"},
		"min length":  {simgate.Service{FriendlyName: "x", CodeLength: 6}, "code_length must be verify.min_code_length (8) to 10 digits, got 6"},
		"short ttl":   {simgate.Service{FriendlyName: "x", TTL: 30 * time.Second}, "ttl must be between 1m0s and verify.max_ttl (20m0s), got 30s"},
		"long ttl":    {simgate.Service{FriendlyName: "x", TTL: 21 * time.Minute}, "ttl must be between"},
		"no code":     {simgate.Service{FriendlyName: "x", Templates: map[string]string{"de": "Hallo {app}"}}, "templates.de must contain {code}"},
		"long text":   {simgate.Service{FriendlyName: "x", Templates: map[string]string{"de": long}}, "templates.de must fit in 10 SMS"},
		"locale":      {simgate.Service{FriendlyName: "x", Templates: map[string]string{"de.DE": "{code}"}}, "templates are keyed by locale"},
		"lower case":  {simgate.Service{FriendlyName: "x", AllowedCountries: []string{"de"}}, "allowed_countries[0] must be a two-letter ISO 3166 code"},
		"no country":  {simgate.Service{FriendlyName: "x", AllowedCountries: []string{"XX"}}, "allowed_countries[0] must be"},
		"twice":       {simgate.Service{FriendlyName: "x", AllowedCountries: []string{"DE", "DE"}}, "allowed_countries[1] names DE twice"},
		"not allowed": {simgate.Service{FriendlyName: "x", AllowedCountries: []string{"FR"}}, "allowed_countries[0] is FR, which the gateway does not send to (verify.allowed_countries: DE, AT)"},
	} {
		t.Run(name, func(t *testing.T) {
			err := o.CheckService(&c.s)
			if simgate.ErrorCode(err) != simgate.CodeInvalid || !strings.Contains(simgate.ErrorMessage(err), c.want) {
				t.Fatalf("CheckService = %v, want invalid: %q", err, c.want)
			}
		})
	}
	all := o
	all.AllowAllCountries = true
	if err := all.CheckService(&simgate.Service{FriendlyName: "x", AllowedCountries: []string{"FR"}}); err != nil {
		t.Fatalf("with every country allowed: %v", err)
	}
}

// A service's settings meet the bounds of the day at each verification:
// the operator may raise verify.min_code_length, or lower verify.max_ttl,
// after the service was made, and the error names the service.
func TestServiceBoundsOfTheDay(t *testing.T) {
	ctx := context.Background()
	r := newRulesRig(t, verify.Options{})
	svc := &simgate.Service{FriendlyName: "Shop", CodeLength: 6, TTL: 10 * time.Minute}
	if err := r.s.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s.Start(ctx, &simgate.Verification{To: "+4915123456789", ServiceID: svc.ID}, 0); err != nil {
		t.Fatal(err)
	}

	stricter, err := verify.New(r.db, r.h, verify.Options{Secret: []byte(strings.Repeat("k", 32)), Now: r.clock,
		MinCodeLength: 8, MaxTTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stricter.Start(ctx, &simgate.Verification{To: "+4915123456780", ServiceID: svc.ID}, 0)
	if want := "the code_length of service " + svc.ID + " must be at least 8 digits, got 6"; simgate.ErrorCode(err) != simgate.CodeInvalid ||
		!strings.Contains(simgate.ErrorMessage(err), want) {
		t.Fatalf("Start = %v, want invalid: %q", err, want)
	}
	_, err = stricter.Start(ctx, &simgate.Verification{To: "+4915123456780", ServiceID: svc.ID, CodeLength: 8}, 0)
	if want := "the ttl of service " + svc.ID + " must be at most 5m0s, got 10m0s"; simgate.ErrorCode(err) != simgate.CodeInvalid ||
		!strings.Contains(simgate.ErrorMessage(err), want) {
		t.Fatalf("Start = %v, want invalid: %q", err, want)
	}
	if _, err := stricter.Start(ctx, &simgate.Verification{To: "+4915123456780", ServiceID: svc.ID, CodeLength: 8}, time.Minute); err != nil {
		t.Fatalf("with the request's own length and TTL: %v", err)
	}
	if _, err := r.s.Start(ctx, &simgate.Verification{To: "+4915123456781", ServiceID: simgate.NewServiceID()}, 0); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("a service that does not exist: %v, want not found", err)
	}

	// What it applies: its own settings, else the gateway's.
	got, err := stricter.GetService(ctx, svc.ID)
	if err != nil || got.CodeLength != 6 || got.FriendlyName != "Shop" {
		t.Fatalf("GetService = %+v, %v", got, err)
	}
	def, err := stricter.GetService(ctx, simgate.DefaultServiceID)
	if err != nil || def.FriendlyName != "simgate" || def.CodeLength != 8 || def.TTL != 5*time.Minute {
		t.Fatalf("the default service = %+v, %v; want the gateway's settings", def, err)
	}
}
