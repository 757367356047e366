package api

// The Twilio Verify v2 surface: the routes under /v2/ take the requests
// that Twilio's client libraries send to verify.twilio.com (form-encoded,
// with HTTP Basic credentials) and answer with Twilio's field names,
// formats and error codes, over simgate's own services and verifications.
// An application that uses Twilio Verify moves to its own SIMs by pointing
// its client at simgate. docs/TWILIO.md lists every difference.
//
// Twilio's SIDs are simgate's ids written otherwise: a service's id is
// already a ServiceSid ("VA" and 32 hex digits), and the 128 bits of a
// verification's, an API key's and a message's id (simgate.IDBits) are the
// hex digits of its VerificationSid ("VE"), AccountSid ("AC") and
// attempt SID ("VL"). Nothing is stored twice.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/simgate/simgate"
)

// twilioPrefix starts the path of every route of the Twilio surface; the
// errors of a request under it are Twilio's JSON (Server.Error).
const twilioPrefix = "/v2/"

// isTwilio reports whether r is a request to the Twilio surface.
func isTwilio(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, twilioPrefix) }

// twilioRoutes registers the Twilio surface on r.
func (s *Server) twilioRoutes(r *mux.Router) {
	verify := routeOpts{scope: simgate.ScopeVerify}
	s.handle(r, "POST", "/v2/Services", routeOpts{scope: simgate.ScopeAdmin}, s.twilioCreateService)
	s.handle(r, "GET", "/v2/Services", verify, s.twilioListServices)
	s.handle(r, "GET", "/v2/Services/{service}", verify, s.twilioFetchService)
	s.handle(r, "POST", "/v2/Services/{service}/Verifications", verify, s.twilioCreateVerification)
	s.handle(r, "GET", "/v2/Services/{service}/Verifications/{sid}", verify, s.twilioFetchVerification)
	s.handle(r, "POST", "/v2/Services/{service}/Verifications/{sid}", verify, s.twilioUpdateVerification)
	s.handle(r, "POST", "/v2/Services/{service}/VerificationCheck", verify, s.twilioCheck)
}

// SIDs.

// twilioSID writes the id, of the kind prefix ("ver", "key", "msg"), as a
// Twilio SID: letters and the id's 128 bits in lowercase hex.
func twilioSID(letters, prefix, id string) (string, error) {
	bits, ok := simgate.IDBits(prefix, id)
	if !ok {
		return "", fmt.Errorf("cannot write %q as a Twilio SID: it is not a %s_ id", id, prefix)
	}
	return letters + hex.EncodeToString(bits[:]), nil
}

// twilioID reads the SID sid, letters and 32 hex digits of either case, as
// the id of the kind prefix; ok is false when sid is not written so.
func twilioID(letters, prefix, sid string) (id string, ok bool) {
	h, found := strings.CutPrefix(sid, letters)
	if !found || len(h) != 32 {
		return "", false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return "", false
	}
	return simgate.IDFromBits(prefix, [16]byte(b)), true
}

// Credentials.

// TwilioCredential is an API key made for Twilio's clients (NewTwilioKey),
// to show once. Username and Secret are the HTTP Basic credentials the
// clients send.
type TwilioCredential struct {
	// AccountSID is "AC" and the 32 hex digits of the key's id: the
	// account_sid of every answer to the key.
	AccountSID string
	// Username is AccountSID, or for an API key its SID ("SK" and the same
	// digits).
	Username string
	// Secret is the auth token or API key secret: 32 letters and digits.
	Secret string
}

// Env returns the credential as the environment variables that Twilio's
// clients and examples read, NAME=value each.
func (c TwilioCredential) Env() []string {
	if strings.HasPrefix(c.Username, "SK") {
		return []string{"TWILIO_ACCOUNT_SID=" + c.AccountSID, "TWILIO_API_KEY=" + c.Username, "TWILIO_API_SECRET=" + c.Secret}
	}
	return []string{"TWILIO_ACCOUNT_SID=" + c.AccountSID, "TWILIO_AUTH_TOKEN=" + c.Secret}
}

// secretAlphabet is what a Twilio secret is written with: twilio-go
// refuses credentials with any other character.
const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewTwilioKey makes a key named name with the given scopes whose
// credentials Twilio's clients take: an account SID and auth token, or with
// apiKey an API key SID and secret. Only the SHA-256 of "username:secret"
// is stored, as every key's hash; Prefix holds the username, which is no
// secret, so that lists show which key is which.
func NewTwilioKey(name string, scopes []simgate.Scope, apiKey bool, now time.Time) (TwilioCredential, *simgate.APIKey, error) {
	if len(scopes) == 0 {
		return TwilioCredential{}, nil, simgate.Errorf(simgate.CodeInvalid, "an api key needs at least one scope")
	}
	id := simgate.NewID("key", now)
	account, err := twilioSID("AC", "key", id)
	if err != nil {
		return TwilioCredential{}, nil, err
	}
	c := TwilioCredential{AccountSID: account, Username: account}
	if apiKey {
		c.Username = "SK" + strings.TrimPrefix(account, "AC")
	}
	// 32 characters of 62, drawn without bias: 190 bits.
	secret := make([]byte, 0, 32)
	for len(secret) < cap(secret) {
		var b [64]byte
		rand.Read(b[:]) // never fails (crypto/rand)
		for _, x := range b {
			if x < 248 && len(secret) < cap(secret) { // 248 = 4 × 62
				secret = append(secret, secretAlphabet[x%62])
			}
		}
	}
	c.Secret = string(secret)
	sum := twilioHash(c.Username, c.Secret)
	return c, &simgate.APIKey{
		ID: id, Name: name, Prefix: c.Username, Hash: sum[:],
		Scopes: append([]simgate.Scope(nil), scopes...),
	}, nil
}

// twilioHash is what a key for Twilio's clients is looked up by.
func twilioHash(username, secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte(username + ":" + secret))
}

// basicCredential returns the hash of the HTTP Basic credentials of r, a
// SID of an account or API key and its secret, or why they are refused.
func basicCredential(r *http.Request) ([sha256.Size]byte, error) {
	user, secret, ok := r.BasicAuth()
	switch {
	case !ok:
		return [sha256.Size]byte{}, simgate.Errorf(simgate.CodeUnauthorized, "the Basic credentials are not base64 of username:secret")
	case !simgate.IsSID("AC", user) && !simgate.IsSID("SK", user):
		return [sha256.Size]byte{}, simgate.Errorf(simgate.CodeUnauthorized,
			"the Basic username must be an account SID (AC and 32 hex digits) or an API key SID (SK ...): see simgate apikey create --twilio")
	case secret == "" || len(secret) > 128 || strings.Trim(secret, secretAlphabet) != "":
		return [sha256.Size]byte{}, simgate.Errorf(simgate.CodeUnauthorized, "the Basic secret must be 1 to 128 letters and digits")
	}
	return twilioHash(user, secret), nil
}

// Errors.

// twilioCoded is an error that the Twilio surface answers with a code of
// Twilio's own rather than the one its simgate code maps to
// (twilioCodeOf).
type twilioCoded struct {
	err  *simgate.Error
	code int
}

func (e *twilioCoded) Error() string { return e.err.Error() }
func (e *twilioCoded) Unwrap() error { return e.err }

// Twilio's error codes that simgate answers.
const (
	twilioAuthenticate      = 20003
	twilioMethodNotAllowed  = 20004
	twilioForbidden         = 20403
	twilioNotFound          = 20404
	twilioConflictCode      = 20409
	twilioTooManyRequests   = 20429
	twilioInternal          = 20500
	twilioUnavailable       = 20503
	twilioInvalidParameter  = 60200
	twilioMaxCheckAttempts  = 60202
	twilioMaxSendAttempts   = 60203
	twilioChannelDisabled   = 60223
	twilioMoreInfo          = "https://www.twilio.com/docs/errors/"
	twilioMaxCheckText      = "Max check attempts reached"
	twilioNotFoundTextStart = "The requested resource "
)

// twilioCodeOf is the Twilio error code of err: the one it carries
// (twilioCoded), else the one of its simgate code; for a rate limit, the
// limit on sends to a number is 60203 and the limit on failed checks 60202,
// as Twilio's own limits on a verification's sends and checks are, and
// the others 20429.
func twilioCodeOf(err error) int {
	var tc *twilioCoded
	if errors.As(err, &tc) {
		return tc.code
	}
	switch simgate.ErrorCode(err) {
	case simgate.CodeInvalid, CodeTooLarge, CodeUnsupportedMediaType:
		return twilioInvalidParameter
	case simgate.CodeUnauthorized:
		return twilioAuthenticate
	case simgate.CodeForbidden:
		return twilioForbidden
	case simgate.CodeNotFound:
		return twilioNotFound
	case simgate.CodeConflict, CodeIdempotencyMismatch:
		return twilioConflictCode
	case simgate.CodeRateLimited:
		var re *simgate.RateLimitError
		if errors.As(err, &re) {
			switch re.Rule {
			case simgate.RuleVerificationSends, RulePerNumber:
				return twilioMaxSendAttempts
			case simgate.RuleVerificationChecks:
				return twilioMaxCheckAttempts
			}
		}
		return twilioTooManyRequests
	case simgate.CodeUnavailable:
		return twilioUnavailable
	}
	return twilioInternal
}

// twilioErrorJSON is an error as Twilio answers it.
type twilioErrorJSON struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// writeTwilioError writes an error of the Twilio surface: Twilio's code
// and, for a resource not found, Twilio's words, which name the path.
func writeTwilioError(w http.ResponseWriter, r *http.Request, status, code int, message string) {
	if code == twilioNotFound {
		message = twilioNotFoundTextStart + strings.TrimPrefix(r.URL.Path, "/v2") + " was not found"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(twilioErrorJSON{Code: code, Message: message, MoreInfo: twilioMoreInfo + strconv.Itoa(code), Status: status})
}

// notFoundHere is the error for a SID that names nothing the caller may
// see.
func notFoundHere() error { return simgate.Errorf(simgate.CodeNotFound, "not found") }

// Requests.

// twilioForm reads a form-encoded body of Twilio parameters: names and
// values valid UTF-8 once unescaped, each parameter at most once, and none
// but known. Twilio's parameters that simgate does not implement are
// refused by name rather than ignored, so that no request is taken to mean
// what simgate does not do. Of several faults, the one of the first name in
// sort order is told.
func twilioForm(body []byte, known ...string) (map[string]string, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, simgate.Errorf(simgate.CodeInvalid, "the request body is not a form: %v", err)
	}
	out := make(map[string]string, len(vals))
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		vs := vals[name]
		switch {
		case !utf8.ValidString(name) || slices.ContainsFunc(vs, func(v string) bool { return !utf8.ValidString(v) }):
			return nil, simgate.Errorf(simgate.CodeInvalid, "parameter %s is not valid UTF-8", strconv.QuoteToASCII(name))
		case !slices.Contains(known, name):
			return nil, simgate.Errorf(simgate.CodeInvalid, "parameter %s is not supported by simgate (it takes %s; see docs/TWILIO.md)",
				strconv.Quote(name), strings.Join(known, ", "))
		case len(vs) > 1:
			return nil, simgate.Errorf(simgate.CodeInvalid, "parameter %s is given %d times", name, len(vs))
		}
		out[name] = vs[0]
	}
	return out, nil
}

// required returns the parameter name of form, or an error naming it.
func required(form map[string]string, name string) (string, error) {
	v := form[name]
	if v == "" {
		return "", simgate.Errorf(simgate.CodeInvalid, "Missing required parameter %s in the post body", name)
	}
	return v, nil
}

// formBool reads the boolean parameter name ("true" or "false", as
// Twilio's clients write them); false when absent.
func formBool(form map[string]string, name string) (bool, error) {
	switch v, ok := form[name]; {
	case !ok || v == "false":
		return false, nil
	case v == "true":
		return true, nil
	default:
		return false, simgate.Errorf(simgate.CodeInvalid, "Invalid parameter %s: %q is not true or false", name, v)
	}
}

// twilioCall is what a handler of the Twilio surface needs of its
// request: the caller's key and account SID, and the service of the path
// ("" for a route without one), which the key may use.
type twilioCall struct {
	key     *simgate.APIKey
	account string
	service string
}

// twilioCallOf reads r's key and service. A service that is not written as
// a ServiceSid, or that the key may not use, is not found, as one that
// does not exist is.
func twilioCallOf(r *http.Request) (twilioCall, error) {
	k := apiKeyFrom(r.Context())
	account, err := twilioSID("AC", "key", k.ID)
	if err != nil {
		return twilioCall{}, err
	}
	c := twilioCall{key: k, account: account}
	if sid, ok := mux.Vars(r)["service"]; ok {
		c.service = "VA" + strings.ToLower(strings.TrimPrefix(sid, "VA"))
		if !simgate.IsServiceID(c.service) || !k.AllowsService(c.service) {
			return twilioCall{}, notFoundHere()
		}
	}
	return c, nil
}

// twilioVerifyCall is twilioCallOf for a route of verifications, which
// need the verification service.
func (s *Server) twilioVerifyCall(r *http.Request) (twilioCall, error) {
	if s.opts.Verify == nil {
		return twilioCall{}, simgate.Errorf(simgate.CodeUnavailable, "verifications are not available")
	}
	return twilioCallOf(r)
}

// twilioServicesCall is twilioCallOf for a route of services, which need
// the service store.
func (s *Server) twilioServicesCall(r *http.Request) (twilioCall, error) {
	if s.opts.Services == nil {
		return twilioCall{}, simgate.Errorf(simgate.CodeUnavailable, "services are not available")
	}
	return twilioCallOf(r)
}

// baseURL is where r was sent, for the answers' url fields.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Answers.

// twilioTime and twilioAttemptTime are how Twilio writes the times of
// resources and of send attempts.
const (
	twilioTime        = "2006-01-02T15:04:05Z"
	twilioAttemptTime = "2006-01-02T15:04:05.000Z"
)

// twilioServiceJSON is a service as Twilio shows one. The features simgate
// has not (lookups, PSD2, voice, push, TOTP, WhatsApp, passkeys, event
// streams) are off.
type twilioServiceJSON struct {
	SID                            string            `json:"sid"`
	AccountSID                     string            `json:"account_sid"`
	FriendlyName                   string            `json:"friendly_name"`
	CodeLength                     int               `json:"code_length"`
	LookupEnabled                  bool              `json:"lookup_enabled"`
	Psd2Enabled                    bool              `json:"psd2_enabled"`
	SkipSmsToLandlines             bool              `json:"skip_sms_to_landlines"`
	DtmfInputRequired              bool              `json:"dtmf_input_required"`
	TTSName                        *string           `json:"tts_name"`
	DoNotShareWarningEnabled       bool              `json:"do_not_share_warning_enabled"`
	CustomCodeEnabled              bool              `json:"custom_code_enabled"`
	Push                           *struct{}         `json:"push"`
	Totp                           *struct{}         `json:"totp"`
	DefaultTemplateSID             *string           `json:"default_template_sid"`
	Whatsapp                       *struct{}         `json:"whatsapp"`
	Passkeys                       *struct{}         `json:"passkeys"`
	VerifyEventSubscriptionEnabled bool              `json:"verify_event_subscription_enabled"`
	DateCreated                    string            `json:"date_created"`
	DateUpdated                    string            `json:"date_updated"`
	URL                            string            `json:"url"`
	Links                          map[string]string `json:"links"`
}

func toTwilioService(r *http.Request, account string, svc *simgate.Service) twilioServiceJSON {
	u := baseURL(r) + "/v2/Services/" + svc.ID
	return twilioServiceJSON{
		SID: svc.ID, AccountSID: account, FriendlyName: svc.FriendlyName, CodeLength: svc.CodeLength,
		CustomCodeEnabled: svc.CustomCodeAllowed,
		DateCreated:       svc.CreatedAt.UTC().Format(twilioTime), DateUpdated: svc.UpdatedAt.UTC().Format(twilioTime),
		URL:   u,
		Links: map[string]string{"verifications": u + "/Verifications", "verification_checks": u + "/VerificationCheck"},
	}
}

// twilioAttempt is one send of a verification's code: one of its SMS.
type twilioAttempt struct {
	Time       string `json:"time"`
	Channel    string `json:"channel"`
	AttemptSID string `json:"attempt_sid"`
}

// twilioVerdict is what a verification and a check (a VerificationCheck,
// whose SID is the verification's) both show of a verification.
type twilioVerdict struct {
	SID         string  `json:"sid"`
	ServiceSID  string  `json:"service_sid"`
	AccountSID  string  `json:"account_sid"`
	To          string  `json:"to"`
	Channel     string  `json:"channel"`
	Status      string  `json:"status"`
	Valid       bool    `json:"valid"`
	Amount      *string `json:"amount"`
	Payee       *string `json:"payee"`
	DateCreated string  `json:"date_created"`
	DateUpdated string  `json:"date_updated"`
}

// verdictOf is what c may see of v.
func verdictOf(c twilioCall, v *simgate.Verification) (twilioVerdict, error) {
	sid, err := twilioSID("VE", "ver", v.ID)
	return twilioVerdict{
		SID: sid, ServiceSID: v.ServiceID, AccountSID: c.account, To: v.To, Channel: string(v.Channel), Status: string(v.Status),
		Valid: v.Status == simgate.VerificationApproved, DateCreated: v.CreatedAt.UTC().Format(twilioTime),
		DateUpdated: v.UpdatedAt.UTC().Format(twilioTime),
	}, err
}

// twilioVerificationJSON is a verification as Twilio shows one.
type twilioVerificationJSON struct {
	twilioVerdict
	Lookup           struct{}        `json:"lookup"`
	SendCodeAttempts []twilioAttempt `json:"send_code_attempts"`
	SNA              *struct{}       `json:"sna"`
	URL              string          `json:"url"`
}

// twilioCheckJSON is the answer to a check.
type twilioCheckJSON struct {
	twilioVerdict
	SNAAttemptsErrorCodes *[]string `json:"sna_attempts_error_codes"`
}

// maxTwilioAttempts is the most sends a verification shows: the newest.
// The limits allow 5 in 10 minutes, so only a verification that lives
// for days can have more.
const maxTwilioAttempts = 1000

// toTwilioVerification returns v as Twilio shows it, with its sends: the
// SMS sent for it, oldest first. first, when not nil, is v's SMS when v
// has had one send (it was just created), which saves reading it back.
func (s *Server) toTwilioVerification(r *http.Request, c twilioCall, v *simgate.Verification, first *simgate.Message) (twilioVerificationJSON, error) {
	verdict, err := verdictOf(c, v)
	if err != nil {
		return twilioVerificationJSON{}, err
	}
	j := twilioVerificationJSON{twilioVerdict: verdict, SendCodeAttempts: []twilioAttempt{},
		URL: baseURL(r) + "/v2/Services/" + v.ServiceID + "/Verifications/" + verdict.SID}
	var ms []*simgate.Message
	switch {
	case v.Channel == simgate.ChannelMissedCall || s.opts.Messages == nil:
		return j, nil
	case first != nil && v.SendCount == 1:
		ms = []*simgate.Message{first}
	default:
		if ms, _, err = s.opts.Messages.ListMessages(r.Context(), simgate.MessageFilter{VerificationID: v.ID, Limit: maxTwilioAttempts}); err != nil {
			return twilioVerificationJSON{}, err
		}
	}
	for _, m := range slices.Backward(ms) {
		attempt, err := twilioSID("VL", "msg", m.ID)
		if err != nil {
			return twilioVerificationJSON{}, err
		}
		j.SendCodeAttempts = append(j.SendCodeAttempts, twilioAttempt{
			Time: m.CreatedAt.UTC().Format(twilioAttemptTime), Channel: string(simgate.ChannelSMS), AttemptSID: attempt})
	}
	return j, nil
}

// twilioGone reports whether a verification in status that expires at
// expires is gone for the Twilio surface at now: Twilio deletes a
// verification once it is approved, canceled or expired, and answers 20404
// for it from then on. One that had its last check is expired too once its
// lifetime is over.
func twilioGone(status simgate.VerificationStatus, expires, now time.Time) bool {
	return status == simgate.VerificationApproved || status == simgate.VerificationCanceled ||
		status == simgate.VerificationExpired || !now.Before(expires)
}

// Handlers.

// twilioCreateService answers POST /v2/Services (admin scope).
func (s *Server) twilioCreateService(w http.ResponseWriter, r *http.Request, body []byte) error {
	c, err := s.twilioServicesCall(r)
	if err != nil {
		return err
	}
	form, err := twilioForm(body, "FriendlyName", "CodeLength", "CustomCodeEnabled")
	if err != nil {
		return err
	}
	svc := &simgate.Service{}
	if svc.FriendlyName, err = required(form, "FriendlyName"); err != nil {
		return err
	}
	if n, ok := form["CodeLength"]; ok {
		if svc.CodeLength, err = strconv.Atoi(n); err != nil || svc.CodeLength == 0 {
			return simgate.Errorf(simgate.CodeInvalid, "Invalid parameter CodeLength: %q is not a number of digits", n)
		}
	}
	if svc.CustomCodeAllowed, err = formBool(form, "CustomCodeEnabled"); err != nil {
		return err
	}
	if err := s.opts.Services.CreateService(r.Context(), svc); err != nil {
		return err
	}
	applied, err := s.opts.Services.GetService(r.Context(), svc.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toTwilioService(r, c.account, applied))
	return nil
}

// twilioFetchService answers GET /v2/Services/{ServiceSid}.
func (s *Server) twilioFetchService(w http.ResponseWriter, r *http.Request, _ []byte) error {
	c, err := s.twilioServicesCall(r)
	if err != nil {
		return err
	}
	svc, err := s.opts.Services.GetService(r.Context(), c.service)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTwilioService(r, c.account, svc))
	return nil
}

// twilioPageJSON is the meta of a page of a Twilio list: where the page
// is, and the URLs of the first, previous and next pages (null when none).
type twilioPageJSON struct {
	Page            int     `json:"page"`
	PageSize        int     `json:"page_size"`
	FirstPageURL    string  `json:"first_page_url"`
	PreviousPageURL *string `json:"previous_page_url"`
	URL             string  `json:"url"`
	NextPageURL     *string `json:"next_page_url"`
	Key             string  `json:"key"`
}

// Twilio's page sizes: the default, and the largest a request may ask.
const (
	twilioPageSize    = 50
	twilioMaxPageSize = 1000
)

// twilioListServices answers GET /v2/Services: the services the key may
// use, the default first, a page at a time (PageSize, Page; Twilio's
// PageToken is taken and not needed: the pages are numbered).
func (s *Server) twilioListServices(w http.ResponseWriter, r *http.Request, _ []byte) error {
	c, err := s.twilioServicesCall(r)
	if err != nil {
		return err
	}
	q, err := twilioForm([]byte(r.URL.RawQuery), "PageSize", "Page", "PageToken")
	if err != nil {
		return err
	}
	size, page := twilioPageSize, 0
	if v, ok := q["PageSize"]; ok {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > twilioMaxPageSize {
			return simgate.Errorf(simgate.CodeInvalid, "Invalid parameter PageSize: %q is not 1 to %d", v, twilioMaxPageSize)
		}
	}
	if v, ok := q["Page"]; ok {
		if page, err = strconv.Atoi(v); err != nil || page < 0 {
			return simgate.Errorf(simgate.CodeInvalid, "Invalid parameter Page: %q is not a page number (0 or more)", v)
		}
	}
	all, err := s.opts.Services.ListServices(r.Context())
	if err != nil {
		return err
	}
	all = slices.DeleteFunc(all, func(svc *simgate.Service) bool { return !c.key.AllowsService(svc.ID) })
	out := struct {
		Services []twilioServiceJSON `json:"services"`
		Meta     twilioPageJSON      `json:"meta"`
	}{Services: []twilioServiceJSON{}}
	start := len(all)
	if page <= len(all)/size { // and page*size cannot overflow
		start = page * size
	}
	for _, svc := range all[start:min(start+size, len(all))] {
		out.Services = append(out.Services, toTwilioService(r, c.account, svc))
	}
	pageURL := func(p int) string { return fmt.Sprintf("%s/v2/Services?PageSize=%d&Page=%d", baseURL(r), size, p) }
	out.Meta = twilioPageJSON{Page: page, PageSize: size, FirstPageURL: pageURL(0), URL: pageURL(page), Key: "services"}
	if page > 0 {
		prev := pageURL(page - 1)
		out.Meta.PreviousPageURL = &prev
	}
	if start+size < len(all) {
		next := pageURL(page + 1)
		out.Meta.NextPageURL = &next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// twilioChannels are Twilio's channels that simgate does not send by.
var twilioChannels = []string{"call", "email", "whatsapp", "sna", "auto", "rbm"}

// twilioCreateVerification answers POST
// /v2/Services/{ServiceSid}/Verifications: a code by SMS to To, or a
// resend of the pending verification of To.
func (s *Server) twilioCreateVerification(w http.ResponseWriter, r *http.Request, body []byte) error {
	c, err := s.twilioVerifyCall(r)
	if err != nil {
		return err
	}
	form, err := twilioForm(body, "To", "Channel", "Locale", "CustomCode")
	if err != nil {
		return err
	}
	rawTo, err := required(form, "To")
	if err != nil {
		return err
	}
	channel, err := required(form, "Channel")
	if err != nil {
		return err
	}
	switch {
	case slices.Contains(twilioChannels, channel):
		return &twilioCoded{simgate.Errorf(simgate.CodeInvalid, "Delivery channel disabled: %s (simgate sends codes by SMS only)",
			strings.ToUpper(channel)), twilioChannelDisabled}
	case channel != string(simgate.ChannelSMS):
		return simgate.Errorf(simgate.CodeInvalid, "Invalid parameter Channel: %q is not a channel", channel)
	}
	to, err := s.numbers.Recipient(rawTo)
	if err != nil {
		return err
	}
	if err := s.allowSMS(r.Context(), to); err != nil {
		return err
	}
	v := &simgate.Verification{To: to, Channel: simgate.ChannelSMS, Locale: form["Locale"], APIKeyID: c.key.ID, ServiceID: c.service}
	var m *simgate.Message
	if code, ok := form["CustomCode"]; ok {
		m, err = s.opts.Verify.StartCustom(r.Context(), v, 0, code)
	} else {
		m, err = s.opts.Verify.Start(r.Context(), v, 0)
	}
	if err != nil {
		return err
	}
	j, err := s.toTwilioVerification(r, c, v, m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, j)
	return nil
}

// twilioRef is the verification of the path, as the caller may see it.
func twilioRef(r *http.Request, c twilioCall) (simgate.VerificationRef, error) {
	id, ok := twilioID("VE", "ver", mux.Vars(r)["sid"])
	if !ok {
		return simgate.VerificationRef{}, notFoundHere()
	}
	return simgate.VerificationRef{ID: id, ServiceID: c.service, Services: c.key.Services}, nil
}

// twilioFetchVerification answers GET
// /v2/Services/{ServiceSid}/Verifications/{Sid}.
func (s *Server) twilioFetchVerification(w http.ResponseWriter, r *http.Request, _ []byte) error {
	c, err := s.twilioVerifyCall(r)
	if err != nil {
		return err
	}
	ref, err := twilioRef(r, c)
	if err != nil {
		return err
	}
	v, err := s.opts.Verify.Get(r.Context(), ref)
	if err != nil {
		return err
	} else if twilioGone(v.Status, v.ExpiresAt, s.opts.Now()) {
		return notFoundHere()
	}
	j, err := s.toTwilioVerification(r, c, v, nil)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

// twilioUpdateVerification answers POST
// /v2/Services/{ServiceSid}/Verifications/{Sid} with Status canceled or
// approved.
func (s *Server) twilioUpdateVerification(w http.ResponseWriter, r *http.Request, body []byte) error {
	c, err := s.twilioVerifyCall(r)
	if err != nil {
		return err
	}
	form, err := twilioForm(body, "Status")
	if err != nil {
		return err
	}
	status, err := required(form, "Status")
	if err != nil {
		return err
	}
	ref, err := twilioRef(r, c)
	if err != nil {
		return err
	}
	var v *simgate.Verification
	switch simgate.VerificationStatus(status) {
	case simgate.VerificationCanceled:
		v, err = s.opts.Verify.Cancel(r.Context(), ref)
	case simgate.VerificationApproved:
		v, err = s.opts.Verify.Approve(r.Context(), ref)
	default:
		return simgate.Errorf(simgate.CodeInvalid, "Invalid parameter Status: %q is not canceled or approved", status)
	}
	if err != nil {
		return s.twilioConflict(err)
	}
	j, err := s.toTwilioVerification(r, c, v, nil)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

// twilioConflict is the answer to a check or an update that verify
// refused with conflict (a *simgate.VerificationConflict): 20404 for a
// verification that is gone for Twilio (twilioGone), 60202 for one that had
// its last check (found by its SID, or by number when the number has no
// pending one), and the conflict, which says why, otherwise (a failed SMS;
// a missed-call verification, which no code approves).
func (s *Server) twilioConflict(err error) error {
	var vc *simgate.VerificationConflict
	switch {
	case !errors.As(err, &vc):
		return err
	case twilioGone(vc.Status, vc.ExpiresAt, s.opts.Now()):
		return notFoundHere()
	case vc.Status == simgate.VerificationMaxAttemptsReached:
		return &twilioCoded{simgate.Errorf(simgate.CodeRateLimited, "%s: start a new verification", twilioMaxCheckText), twilioMaxCheckAttempts}
	}
	return err
}

// twilioCheck answers POST /v2/Services/{ServiceSid}/VerificationCheck: a
// code for the pending verification of To, or of VerificationSid. A wrong
// code answers 200 with status pending (or max_attempts_reached, for the
// check that used the last attempt) and valid false.
func (s *Server) twilioCheck(w http.ResponseWriter, r *http.Request, body []byte) error {
	c, err := s.twilioVerifyCall(r)
	if err != nil {
		return err
	}
	form, err := twilioForm(body, "Code", "To", "VerificationSid")
	if err != nil {
		return err
	}
	code, err := required(form, "Code")
	if err != nil {
		return err
	}
	ref := simgate.VerificationRef{ServiceID: c.service, Services: c.key.Services}
	switch to, sid := form["To"], form["VerificationSid"]; {
	case (to == "") == (sid == ""):
		return simgate.Errorf(simgate.CodeInvalid, "Invalid parameter: give either To or VerificationSid")
	case to != "":
		if ref.To, err = s.numbers.Lookup(to); err != nil {
			return err
		}
	default:
		id, ok := twilioID("VE", "ver", sid)
		if !ok {
			return notFoundHere()
		}
		ref.ID = id
	}
	v, err := s.opts.Verify.Check(r.Context(), ref, code)
	if err != nil {
		return s.twilioConflict(err)
	}
	verdict, err := verdictOf(c, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, twilioCheckJSON{twilioVerdict: verdict})
	return nil
}
