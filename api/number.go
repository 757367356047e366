package api

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/simgate/simgate"
)

// NumberPolicy says which recipients the API accepts.
type NumberPolicy struct {
	// DefaultRegion (ISO 3166, e.g. "DE") reads numbers given without
	// +country code; empty requires E.164.
	DefaultRegion string
	// AllowedCountries (ISO 3166) may receive SMS. Empty allows none,
	// unless AllowAllCountries.
	AllowedCountries []string
	// AllowAllCountries lifts the country allow-list, for the demo.
	AllowAllCountries bool
}

type numberPolicy struct {
	region  string
	allowed map[string]bool
	all     bool
}

func newNumberPolicy(p NumberPolicy) (*numberPolicy, error) {
	np := &numberPolicy{region: strings.ToUpper(p.DefaultRegion), allowed: map[string]bool{}, all: p.AllowAllCountries}
	for _, cc := range p.AllowedCountries {
		if len(cc) != 2 {
			return nil, fmt.Errorf("allowed country %q is not a two-letter ISO 3166 code", cc)
		}
		np.allowed[strings.ToUpper(cc)] = true
	}
	return np, nil
}

// noSMS are the number types that cannot receive an SMS, or that an SMS
// pumping fraud targets (premium and shared-cost numbers pay their owner).
var noSMS = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.FIXED_LINE:   "a fixed line",
	phonenumbers.TOLL_FREE:    "a toll-free number",
	phonenumbers.PREMIUM_RATE: "a premium-rate number",
	phonenumbers.SHARED_COST:  "a shared-cost number",
	phonenumbers.UAN:          "a company (UAN) number",
	phonenumbers.VOICEMAIL:    "a voicemail access number",
}

// normalize returns s in E.164, or a CodeInvalid error that says why it is
// refused: unparsable, invalid, a type that cannot receive SMS (where the
// numbering plan tells), or a country not allowed.
func (p *numberPolicy) normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", simgate.Errorf(simgate.CodeInvalid, "to is required")
	}
	if len(s) > 32 {
		return "", simgate.Errorf(simgate.CodeInvalid, "to is not a phone number")
	}
	if !strings.HasPrefix(s, "+") && p.region == "" {
		return "", simgate.Errorf(simgate.CodeInvalid, "to must be in E.164 form, such as +4915123456789")
	}
	num, err := phonenumbers.Parse(s, p.region)
	if err != nil {
		return "", simgate.Errorf(simgate.CodeInvalid, "to is not a phone number: %v", err)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", simgate.Errorf(simgate.CodeInvalid, "to is not a valid phone number")
	}
	if what, ok := noSMS[phonenumbers.GetNumberType(num)]; ok {
		return "", simgate.Errorf(simgate.CodeInvalid, "to is %s, which cannot receive SMS", what)
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if !p.all && !p.allowed[region] {
		return "", simgate.Errorf(simgate.CodeInvalid, "SMS to country %s is not allowed", region)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}
