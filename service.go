package simgate

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Service is one application's verification settings: the name its texts
// show, the length and lifetime of its codes, its texts by locale, the
// countries its codes may go to, and whether a request may give its own
// code. Every verification belongs to a service, and an API key may be
// limited to services (APIKey.Services), so that the keys of one
// application neither see nor check another's verifications.
//
// A zero setting is the gateway's (the configuration's verify section),
// read at each verification: a service follows the operator's changes to
// what it does not set itself. The default service (DefaultServiceID) sets
// nothing: it is the gateway's settings under an id, which the requests
// that name no service use, so that they work as they did before services
// existed. The rules (bounds, defaults, what a request may ask) are
// verify's (verify.Options.CheckService, verify.Service.Start).
type Service struct {
	// ID is "VA" and 32 lowercase hex digits (NewServiceID): the form of a
	// Twilio Verify ServiceSid, so that a Twilio client can name it.
	ID string
	// FriendlyName fills {app} in the texts; "": verify.app_name.
	FriendlyName string
	// CodeLength is the digits of a code when a request asks for no
	// length; 0: verify.code_length.
	CodeLength int
	// TTL is how long a code is valid when a request asks for no
	// lifetime; 0: verify.ttl.
	TTL time.Duration
	// Templates are texts by locale, with {code}, {app} and
	// {ttl_minutes}. A locale they have is taken from them, any other from
	// verify.templates.
	Templates map[string]string
	// AllowedCountries (ISO 3166, such as DE) narrow the gateway's country
	// allow-list for this service's codes; empty: the gateway's list.
	AllowedCountries []string
	// CustomCodeAllowed lets a request give the code (a custom code)
	// instead of having one drawn.
	CustomCodeAllowed bool
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// DefaultServiceID is the id of the default service. The migrations create
// it: it is the service of every verification made before services
// existed, and of every request that names none.
const DefaultServiceID = "VA00000000000000000000000000000000"

// NewServiceID returns a new service id: "VA" and 128 random bits in
// lowercase hex, as Twilio's ServiceSids are written.
func NewServiceID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return "VA" + hex.EncodeToString(b[:])
}

// IsServiceID reports whether s is written as a service id: "VA" and 32
// lowercase hex digits.
func IsServiceID(s string) bool { return IsSID("VA", s) }

// IsSID reports whether s is written as a Twilio SID with the two letters:
// the letters and 32 lowercase hex digits, as simgate writes its SIDs
// (service ids, and the credentials made for Twilio's clients).
func IsSID(letters, s string) bool {
	h, found := strings.CutPrefix(s, letters)
	if !found || len(h) != 32 {
		return false
	}
	for _, c := range []byte(h) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ServiceAllowed reports whether a caller limited to services (empty:
// limited to none, so every service) may use the service id.
func ServiceAllowed(services []string, id string) bool {
	return len(services) == 0 || slices.Contains(services, id)
}

// CheckCreate checks s before a store creates it: an id written as one
// (IsServiceID), not the default service's (the migrations made it), and
// settings a store can hold (a code length of 0 or 4 to 10, a TTL of whole
// milliseconds, not negative). Whether the settings suit the gateway is
// verify's to say (verify.Options.CheckService). Its errors have
// CodeInvalid or, for the default service's id, CodeConflict.
func (s *Service) CheckCreate() error {
	switch {
	case !IsServiceID(s.ID):
		return Errorf(CodeInvalid, "service id %q is not \"VA\" and 32 lowercase hex digits", s.ID)
	case s.ID == DefaultServiceID:
		return Errorf(CodeConflict, "service %s exists: it is the default service", s.ID)
	case s.CodeLength != 0 && (s.CodeLength < 4 || s.CodeLength > 10):
		return Errorf(CodeInvalid, "code_length must be 4 to 10 digits, got %d", s.CodeLength)
	case s.TTL < 0 || s.TTL%time.Millisecond != 0:
		return Errorf(CodeInvalid, "ttl must be a positive number of milliseconds, got %s", s.TTL)
	}
	return nil
}
