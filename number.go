package simgate

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// IsE164 reports whether s is written as an E.164 number: "+", a first
// digit 1-9 (no country code starts with 0), then 6 to 14 more digits (ITU-T
// E.164 allows 15 in all). It checks the form only; a recipient from a
// request goes through Numbers, which also knows the numbering plans.
func IsE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range []byte(s[1:]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CountryOf returns the country (ISO 3166, such as DE) of the E.164 number
// s by its numbering plan, or "" when the plan names none.
func CountryOf(s string) string {
	num, err := phonenumbers.Parse(s, "")
	if err != nil {
		return ""
	}
	if region := phonenumbers.GetRegionCodeForNumber(num); region != "ZZ" {
		return region
	}
	return ""
}

// IsCountry reports whether cc is a country as NumberPolicy and Service
// name them: an ISO 3166 code in upper case, such as DE, of a numbering
// plan that phonenumbers knows.
func IsCountry(cc string) bool {
	return len(cc) == 2 && strings.ToUpper(cc) == cc && phonenumbers.GetCountryCodeForRegion(cc) != 0
}

// NumberPolicy says which recipients are accepted (see Numbers).
type NumberPolicy struct {
	// DefaultRegion (ISO 3166, e.g. "DE") reads numbers given without
	// +country code; empty requires E.164.
	DefaultRegion string
	// AllowedCountries (ISO 3166) may receive SMS. Empty allows none,
	// unless AllowAllCountries.
	AllowedCountries []string
	// AllowAllCountries lifts the country allow-list, for the demo.
	AllowAllCountries bool
	// AllowedNumberTypes are the number types, besides mobile, that may
	// receive SMS: any of NumberTypes' keys. Empty allows mobile numbers
	// only (and fixed_line_or_mobile, where a country's plan does not tell
	// them apart). SMS pumping fraud sends to personal, pager, VoIP and
	// premium numbers whose owner is paid per message.
	AllowedNumberTypes []string
}

// NumberTypes names the phone number types, as NumberPolicy.AllowedNumberTypes
// takes them, with what the API calls them in errors.
var NumberTypes = map[string]string{
	"mobile":               "a mobile number",
	"fixed_line_or_mobile": "a fixed-line or mobile number",
	"fixed_line":           "a fixed line",
	"toll_free":            "a toll-free number",
	"premium_rate":         "a premium-rate number",
	"shared_cost":          "a shared-cost number",
	"voip":                 "a VoIP number",
	"personal_number":      "a personal number",
	"pager":                "a pager",
	"uan":                  "a company (UAN) number",
	"voicemail":            "a voicemail access number",
	"unknown":              "a number of unknown type",
}

// numberTypeKey maps phonenumbers' types to NumberTypes' keys.
var numberTypeKey = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.MOBILE:               "mobile",
	phonenumbers.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
	phonenumbers.FIXED_LINE:           "fixed_line",
	phonenumbers.TOLL_FREE:            "toll_free",
	phonenumbers.PREMIUM_RATE:         "premium_rate",
	phonenumbers.SHARED_COST:          "shared_cost",
	phonenumbers.VOIP:                 "voip",
	phonenumbers.PERSONAL_NUMBER:      "personal_number",
	phonenumbers.PAGER:                "pager",
	phonenumbers.UAN:                  "uan",
	phonenumbers.VOICEMAIL:            "voicemail",
	phonenumbers.UNKNOWN:              "unknown",
}

// numberTypesKey is the configuration key of AllowedNumberTypes, named in
// errors so that an operator knows what to change.
const numberTypesKey = "verify.allowed_number_types"

// Numbers reads and checks the numbers a request gives, with the numbering
// plans of github.com/nyaruka/phonenumbers and a NumberPolicy: the one place
// where a recipient is accepted or refused. Its results are E.164 (IsE164).
type Numbers struct {
	region  string
	allowed map[string]bool
	all     bool
	types   map[string]bool
}

// NewNumbers returns the Numbers of p, or an error naming a setting of p
// that is not valid.
func NewNumbers(p NumberPolicy) (*Numbers, error) {
	np := &Numbers{region: strings.ToUpper(p.DefaultRegion), allowed: map[string]bool{}, all: p.AllowAllCountries,
		types: map[string]bool{"mobile": true, "fixed_line_or_mobile": true}}
	for _, cc := range p.AllowedCountries {
		if len(cc) != 2 {
			return nil, fmt.Errorf("allowed country %q is not a two-letter ISO 3166 code", cc)
		}
		np.allowed[strings.ToUpper(cc)] = true
	}
	for _, t := range p.AllowedNumberTypes {
		if _, ok := NumberTypes[t]; !ok {
			return nil, fmt.Errorf("allowed number type %q is not one of %s", t, strings.Join(slices.Sorted(maps.Keys(NumberTypes)), ", "))
		}
		np.types[t] = true
	}
	return np, nil
}

// Recipient returns s, a number to send to, in E.164, or a CodeInvalid
// error that says why it is refused: see parse, and a number type not
// allowed.
func (p *Numbers) Recipient(s string) (string, error) {
	num, err := p.parse(s)
	if err != nil {
		return "", err
	}
	if key := numberTypeKey[phonenumbers.GetNumberType(num)]; !p.types[key] {
		nsn := phonenumbers.GetNationalSignificantNumber(num)
		return "", Errorf(CodeInvalid, "to is %s (+%d %s...), which is not allowed; allow the type %s with %s",
			NumberTypes[key], num.GetCountryCode(), nsn[:min(len(nsn), 2)], key, numberTypesKey)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// Lookup returns s, a number to look for, in E.164, or a CodeInvalid error
// (see parse). The number type is not checked: the messages to a type
// refused now must still be found.
func (p *Numbers) Lookup(s string) (string, error) {
	num, err := p.parse(s)
	if err != nil {
		return "", err
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// parse reads s, which must be written as + and digits (or digits alone
// with a DefaultRegion), or returns a CodeInvalid error that says why it is
// refused: another character (phonenumbers would read letters as keypad
// digits and drop spaces, punctuation and extensions), unparsable, invalid,
// or a country not allowed.
func (p *Numbers) parse(s string) (*phonenumbers.PhoneNumber, error) {
	if s == "" {
		return nil, Errorf(CodeInvalid, "to is required")
	}
	if len(s) > 32 {
		return nil, Errorf(CodeInvalid, "to is not a phone number: it is over 32 characters")
	}
	form := "+ and digits only, such as +4915123456789"
	if p.region != "" {
		form = "+ and digits only, such as +4915123456789, or digits only in the national form"
	}
	for i, r := range s {
		if r == '+' && i == 0 || '0' <= r && r <= '9' {
			continue
		}
		lower := strings.ToLower(s)
		switch {
		case strings.ContainsAny(s, ";,") || strings.Contains(lower, "ext") || strings.ContainsRune(lower, 'x') || strings.Contains(s, "#"):
			return nil, Errorf(CodeInvalid, "to is not a phone number: it has an extension or dialling suffix, which is refused: a phone number is written as %s", form)
		case unicode.IsLetter(r):
			return nil, Errorf(CodeInvalid, "to is not a phone number: it has the letter %q at character %d: a phone number is written as %s", r, utf8.RuneCountInString(s[:i])+1, form)
		case r == ' ' && i == 0:
			return nil, Errorf(CodeInvalid, "to is not a phone number: it starts with a space; a phone number is written as %s (in a URL, write + as %%2B)", form)
		default:
			return nil, Errorf(CodeInvalid, "to is not a phone number: it has %q at character %d: a phone number is written as %s", r, utf8.RuneCountInString(s[:i])+1, form)
		}
	}
	if !strings.HasPrefix(s, "+") && p.region == "" {
		return nil, Errorf(CodeInvalid, "to must be in E.164 form, such as +4915123456789")
	}
	num, err := phonenumbers.Parse(s, p.region)
	if err != nil {
		return nil, Errorf(CodeInvalid, "to is not a phone number: %v", err)
	}
	if !phonenumbers.IsValidNumber(num) {
		return nil, Errorf(CodeInvalid, "to is not a valid phone number")
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if !p.all && !p.allowed[region] {
		return nil, Errorf(CodeInvalid, "SMS to country %s is not allowed; allow it with verify.allowed_countries", region)
	}
	return num, nil
}

// AddressE164 returns a number that a modem prints with its type of
// address, as in +CLIP, the caller of an incoming call (TS 27.007 §7.6:
// <number>,<type>), and +CNUM, the SIM's own number (§7.1), in E.164, or ""
// when it cannot be read as one. <type> is the type-of-address octet of
// TS 24.008 §10.5.4.7, whose bits 7 to 5 are the type of number: 001
// international (145 with the ISDN numbering plan), 010 national (161), 000
// unknown (129). An international number counts with or without its "+". A
// national number, and one of unknown type without "+", is read in the
// numbering plan of the country of home, the E.164 number of the SIM that
// printed it (its trunk prefix, "0" in most countries, and its
// international prefix, such as "00", are understood there), and must be a
// valid number there; one of unknown type that is not is read as
// international when that is a valid number. With home unknown these give
// "". Any other type (network-specific, subscriber, alphanumeric,
// abbreviated), a <type> that is not an octet with bit 8 set but for 0
// (none printed, read as unknown), and an empty number (a withheld caller)
// give "".
func AddressE164(number string, typ int, home string) string {
	n := strings.TrimSpace(number)
	if strings.HasPrefix(n, "+") {
		if IsE164(n) {
			return n
		}
		return ""
	}
	if n == "" || strings.Trim(n, "0123456789") != "" {
		return ""
	}
	ton := 0
	switch {
	case typ == 0:
	case typ >= 0x80 && typ <= 0xFF:
		ton = (typ >> 4) & 7
	default:
		return ""
	}
	switch ton {
	case 1:
		if IsE164("+" + n) {
			return "+" + n
		}
		return ""
	case 0, 2:
		region := countryRegion(home)
		if region == "" {
			return ""
		}
		if num, err := phonenumbers.Parse(n, region); err == nil && phonenumbers.IsValidNumber(num) {
			return phonenumbers.Format(num, phonenumbers.E164)
		}
		// Some networks give an international number without "+" as of
		// unknown type: read so when the national reading is no number.
		if num, err := phonenumbers.Parse("+"+n, ""); ton == 0 && err == nil && phonenumbers.IsValidNumber(num) {
			return phonenumbers.Format(num, phonenumbers.E164)
		}
	}
	return ""
}

// countryRegion returns the main region (ISO 3166) of the country code of
// the E.164 number n, whose numbering plan national numbers of that
// country follow; "" when n is not E.164 or its country code is unknown.
func countryRegion(n string) string {
	if !IsE164(n) {
		return ""
	}
	num, err := phonenumbers.Parse(n, "")
	if err != nil {
		return ""
	}
	if r := phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode())); r != "ZZ" {
		return r
	}
	return ""
}
