package verify

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/simgate/simgate"
)

// MaxTemplateParts is the most SMS a service's template may take, filled
// with a code of MaxCodeLength digits, the service's name and a TTL of
// MaxTTL: the most one message may take (queue.MaxParts), beyond which
// every code of the service would be refused.
const MaxTemplateParts = 10

// MaxLocale is the longest locale a service's templates may be keyed by
// (such as "en", "pt-BR", "zh-Hant-TW").
const MaxLocale = 16

// CheckService returns what is wrong with the settings of svc for a
// gateway with the options o, as a CodeInvalid error that names the field
// as the API does: a friendly_name that is missing or cannot be shown in
// a code SMS (CheckAppName); a code_length outside verify.min_code_length to
// MaxCodeLength; a ttl outside MinTTL to verify.max_ttl; templates keyed by
// anything but a locale of 1 to MaxLocale letters, digits, '-' or '_', or
// without {code}, or longer than MaxTemplateParts SMS; allowed_countries
// that are not ISO 3166 codes (simgate.IsCountry), named twice, or outside
// the gateway's allow-list (which a service can narrow, not widen). A
// setting left zero is the gateway's, which its own checks (Options.Check)
// hold to the same bounds. The id and times are the store's to check.
//
// These are the bounds at creation; the gateway's may change afterwards
// (a raised min_code_length, a lowered max_ttl), and Start holds a
// service's settings to the bounds of the day, refusing with an error that
// names the service.
func (o Options) CheckService(svc *simgate.Service) error {
	o = o.withDefaults()
	bad := func(field, format string, args ...any) error {
		return simgate.Errorf(simgate.CodeInvalid, "%s %s", field, fmt.Sprintf(format, args...))
	}
	if svc.FriendlyName == "" {
		return bad("friendly_name", "is required: it names the application in its texts ({app})")
	} else if err := CheckAppName(svc.FriendlyName); err != nil {
		return bad("friendly_name", "%v", err)
	}
	if svc.CodeLength != 0 && (svc.CodeLength < o.MinCodeLength || svc.CodeLength > MaxCodeLength) {
		return bad("code_length", "must be verify.min_code_length (%d) to %d digits, got %d", o.MinCodeLength, MaxCodeLength, svc.CodeLength)
	}
	if svc.TTL != 0 && (svc.TTL < MinTTL || svc.TTL > o.MaxTTL) {
		return bad("ttl", "must be between %s and verify.max_ttl (%s), got %s", MinTTL, o.MaxTTL, svc.TTL)
	}
	name := svc.FriendlyName
	for _, loc := range slices.Sorted(maps.Keys(svc.Templates)) {
		t := svc.Templates[loc]
		switch {
		case !validLocale(loc):
			return bad("templates", "are keyed by locale (1 to %d letters, digits, '-' or '_', such as de or pt-BR), not %q", MaxLocale, loc)
		case !strings.Contains(t, "{code}"):
			return bad("templates."+loc, "must contain {code}")
		case simgate.CountParts(Render(t, strings.Repeat("0", MaxCodeLength), name, MaxTTL)) > MaxTemplateParts:
			return bad("templates."+loc, "must fit in %d SMS with the longest code, the name and TTL filled in", MaxTemplateParts)
		}
	}
	for i, cc := range svc.AllowedCountries {
		field := fmt.Sprintf("allowed_countries[%d]", i)
		switch {
		case !simgate.IsCountry(cc):
			return bad(field, "must be a two-letter ISO 3166 code in upper case such as DE, got %q", cc)
		case slices.Contains(svc.AllowedCountries[:i], cc):
			return bad(field, "names %s twice", cc)
		case !o.AllowAllCountries && !slices.Contains(o.AllowedCountries, cc):
			return bad(field, "is %s, which the gateway does not send to (verify.allowed_countries: %s): "+
				"a service can narrow the gateway's countries, not add to them", cc, cmp.Or(strings.Join(o.AllowedCountries, ", "), "none"))
		}
	}
	return nil
}

// validLocale reports whether loc can key a service's template.
func validLocale(loc string) bool {
	if loc == "" || len(loc) > MaxLocale {
		return false
	}
	for _, c := range loc {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// CreateService checks the settings of svc (Options.CheckService) and
// stores it with a new id, setting its ID and times. It returns CodeInvalid
// for settings the gateway refuses.
func (s *Service) CreateService(ctx context.Context, svc *simgate.Service) error {
	if err := s.opts.CheckService(svc); err != nil {
		return err
	}
	svc.ID = simgate.NewServiceID()
	if err := s.store.CreateService(ctx, svc); err != nil {
		return err
	}
	s.log.Info("service created", "service", svc.ID, "custom_codes", svc.CustomCodeAllowed)
	return nil
}

// GetService returns the service id as it applies now (Applied);
// simgate.ServiceNotFound when there is none.
func (s *Service) GetService(ctx context.Context, id string) (*simgate.Service, error) {
	svc, err := s.store.FindService(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.Applied(svc), nil
}

// ListServices returns every service as it applies now (Applied), the
// default first.
func (s *Service) ListServices(ctx context.Context) ([]*simgate.Service, error) {
	ss, err := s.store.ListServices(ctx)
	if err != nil {
		return nil, err
	}
	for i, svc := range ss {
		ss[i] = s.Applied(svc)
	}
	return ss, nil
}

// Applied returns a copy of svc as its verifications get it now: the
// gateway's friendly name, code length and TTL where it leaves them zero.
// Its templates and countries stay its own: a locale it has no template for
// is the gateway's, and no countries means the gateway's.
func (s *Service) Applied(svc *simgate.Service) *simgate.Service {
	c := *svc
	c.FriendlyName = cmp.Or(c.FriendlyName, s.opts.AppName)
	c.CodeLength = cmp.Or(c.CodeLength, s.opts.CodeLength)
	c.TTL = cmp.Or(c.TTL, s.opts.TTL)
	c.Templates = maps.Clone(svc.Templates)
	c.AllowedCountries = slices.Clone(svc.AllowedCountries)
	return &c
}
