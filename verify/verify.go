// Package verify runs one-time-code verifications: it draws a code, keeps only
// its keyed hash, sends it by SMS through the queue and checks it.
//
// The rules follow NIST SP 800-63B §5.1.3 (out-of-band authenticators): codes
// come from crypto/rand, are compared in constant time, are used at most
// once, expire, and a number's failed checks are capped across
// verifications (§5.2.2). Only HMAC-SHA256(secret, id ":" code) is stored, so
// neither the database nor its backups reveal a code.
//
// A new request for a number that has a pending verification resends that
// verification, as Twilio Verify does, but with a new code: the old code
// cannot be recovered from its hash, so it is replaced and stops working,
// and the expiry restarts with the new SMS. The attempts left do not reset.
//
// The text of a code SMS comes from the options alone: a request picks a
// locale (a configured template) and an app name by its key in AppNames, but
// cannot write text, so a stolen or careless verify key cannot turn the code
// SMS into a phishing message. Codes are at least MinCodeLength digits
// (default 6) and valid at most MaxTTL (default 10 minutes), as NIST SP
// 800-63B asks of out-of-band secrets, unless the operator allows otherwise.
//
// A missed-call verification (simgate.ChannelMissedCall) sends nothing: the
// user calls a SIM of the pool from the number, and that call, rejected
// unanswered, approves it (HandleCall). It proves only the caller ID the
// network presents, which can be spoofed.
//
// Every verification belongs to a service (simgate.Service): one
// application's name, code length, lifetime, texts, countries and whether
// its requests may give their own code. What a service leaves zero is the
// gateway's (these Options); the default service sets nothing, so the
// requests that name no service work as they did before services existed.
// A number has a pending verification per service, but the limits on the
// sends to a number (code SMS and missed-call starts) and on the failed
// checks of its codes count every service's: more services must not mean
// more SMS to one victim, nor more guesses at one number's codes. A caller
// whose API key is limited to services finds the verifications of no other
// service (simgate.VerificationRef): by id and by number they are not
// found, the answer for those that do not exist. A service's texts are
// written by an admin key (or the operator's command line), never by a
// request, so the rule above on texts holds for them too.
//
// The package does not import the store, the queue or the modems: it
// declares the Store, Enqueuer and Callees it needs, and cmd/simgate wires
// *store.DB, the dispatcher and the modem pool.
package verify

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/simgate/simgate"
)

// Store keeps verifications. *store.DB satisfies it. The rules are the
// service's: the store only reads and writes, in a transaction the service
// runs its rules in (UpdateVerifications) or alone.
type Store interface {
	// UpdateVerifications runs fn in one write transaction, committed when
	// fn returns nil and rolled back otherwise.
	UpdateVerifications(ctx context.Context, fn func(simgate.VerificationTx) error) error
	// GetVerification returns a verification without its code hash, and the
	// status of its newest SMS; CodeNotFound when missing.
	GetVerification(ctx context.Context, id string) (*simgate.Verification, simgate.MessageStatus, error)
	// ExpireVerifications erases the hashes of expired verifications.
	ExpireVerifications(ctx context.Context) (int64, error)
	// PurgeVerificationCounters deletes send and failure records older than
	// before.
	PurgeVerificationCounters(ctx context.Context, before time.Time) error
	// CreateAlertOnce records an alert unless one of the same kind and
	// subject exists within period, and reports whether it did.
	CreateAlertOnce(ctx context.Context, kind, subject, detail string, period time.Duration) (bool, error)
	// RunExclusive runs fn unless another node sharing the database runs
	// the duty of the same name, and reports whether fn ran.
	RunExclusive(ctx context.Context, duty string, fn func(context.Context) error) (bool, error)

	// CreateService stores a service as it is, with a new id when it has
	// none, created and updated now; CodeInvalid for one the store cannot
	// hold, CodeConflict for an id that exists.
	CreateService(ctx context.Context, s *simgate.Service) error
	// FindService returns the service with the given id as it is stored;
	// simgate.ServiceNotFound when none.
	FindService(ctx context.Context, id string) (*simgate.Service, error)
	// ListServices returns every service as stored, the default first.
	ListServices(ctx context.Context) ([]*simgate.Service, error)
}

// Enqueuer queues SMS. The queue's dispatcher satisfies it.
type Enqueuer interface {
	// Enqueue queues m and sets its ID and Status. It returns a
	// CodeForbidden error for a number that opted out.
	Enqueue(ctx context.Context, m *simgate.Message) error
	// Cancel cancels a message that has not been sent yet; CodeNotFound or
	// CodeConflict otherwise.
	Cancel(ctx context.Context, id string) error
	// Prepare validates a verification's SMS, plans its parts, seals its
	// text and gives it the state a new message starts in, for the store to
	// save with the verification (simgate.VerificationTx.CreateMessage);
	// CodeInvalid.
	Prepare(m *simgate.Message) error
	// Wake tells the dispatcher that a prepared message was stored.
	Wake()
}

// Callees picks the SIM that the call of a missed-call verification goes
// to. The modem pool satisfies it (modem.Pool.PickCallee).
type Callees interface {
	// PickCallee returns the modem, and its SIM's own number in E.164,
	// that a call from the number to should go to: prefer when that modem
	// can take it, else the best of those that can. It returns a
	// CodeUnavailable error when none can.
	PickCallee(to, prefer string) (modemID, number string, err error)
}

// Limits on requests. MinCodeLength and MaxTTL are the bounds that
// Options.MinCodeLength and Options.MaxTTL may be set to.
const (
	MinCodeLength = 4
	MaxCodeLength = 10
	MinTTL        = time.Minute
	MaxTTL        = 24 * time.Hour
	MaxReference  = 128
	MaxAppName    = 64
)

// DefaultTemplate is the English message: with a 6-digit code, a 7-letter
// app name and a 2-digit TTL it is 67 GSM-7 characters, one SMS part.
const DefaultTemplate = "Your {app} code is {code}. It expires in {ttl_minutes} min. Do not share it."

// DefaultNotifyTemplate is the text NotifyOwner sends.
const DefaultNotifyTemplate = "Someone tried to verify this number with {app} and failed. If this was not you, ignore this message."

// Options configure a Service. Zero values take the defaults noted.
type Options struct {
	// Secret keys the code HMAC; at least 32 bytes. Required.
	Secret []byte
	// AppName fills {app} when a request names none; default "simgate".
	AppName string
	// AppNames are the other names {app} may show, by the key a request
	// gives as app_name. A request naming anything else is refused.
	AppNames map[string]string
	// MinCodeLength is the fewest digits a request may ask for; default 6
	// (NIST SP 800-63B), at least 4.
	MinCodeLength int
	CodeLength    int // default 6
	// MaxTTL is the longest lifetime a request may ask for; default 10
	// minutes (NIST SP 800-63B), at most 24 hours.
	MaxTTL     time.Duration
	TTL        time.Duration // default 10 minutes, or MaxTTL when shorter
	MaxChecks  int           // failed checks per verification; default 5
	MaxSends   int           // sends per number per SendWindow (code SMS and missed-call starts); default 5
	SendWindow time.Duration // default 10 minutes
	// FailureCap is the failed checks per number per 24 h; default 100.
	FailureCap int
	// NotifyOwner texts a number, at most once a day, when a verification
	// of it ran out of attempts.
	NotifyOwner bool
	// NotifyTemplate is that text (default DefaultNotifyTemplate).
	NotifyTemplate string
	// DefaultLocale is used when a request names no locale or one without a
	// template; default "en".
	DefaultLocale string
	// Templates by locale, with {code}, {app} and {ttl_minutes}; default
	// {"en": DefaultTemplate}.
	Templates map[string]string
	// Callees picks the SIM of each missed-call verification; nil refuses
	// that channel (CodeUnavailable).
	Callees Callees
	// AllowedCountries is the gateway's country allow-list (ISO 3166), which
	// the API applies to every number (simgate.NumberPolicy) and a service
	// may only narrow: CheckService refuses a service country outside it,
	// unless AllowAllCountries (the demo) lifts the list.
	AllowedCountries  []string
	AllowAllCountries bool
	// Now is the clock; default time.Now.
	Now simgate.Clock
	// Logger gets alerts and errors, never a code; default discards.
	Logger *slog.Logger
	// SweepInterval is how often Run expires verifications and purges
	// counters; 0 turns the loop off (tests call RunOnce).
	SweepInterval time.Duration
}

// Service creates and checks verifications. It is safe for concurrent use.
type Service struct {
	store Store
	queue Enqueuer
	opts  Options
	log   *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service. It returns an error when the options are invalid.
func New(st Store, q Enqueuer, opts Options) (*Service, error) {
	if len(opts.Secret) < 32 {
		return nil, fmt.Errorf("cannot start verify: secret must be at least 32 bytes, got %d", len(opts.Secret))
	}
	opts = opts.withDefaults()
	if ps := opts.Check(); len(ps) > 0 {
		return nil, fmt.Errorf("cannot start verify: %s: %s", ps[0].Field, ps[0].Text)
	}
	return &Service{store: st, queue: q, opts: opts, log: opts.Logger}, nil
}

// withDefaults returns o with the defaults of its zero fields (see Options).
func (o Options) withDefaults() Options {
	if o.AppName == "" {
		o.AppName = "simgate"
	}
	if o.MinCodeLength == 0 {
		o.MinCodeLength = 6
	}
	if o.CodeLength == 0 {
		o.CodeLength = max(6, o.MinCodeLength)
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = 10 * time.Minute
	}
	if o.TTL == 0 {
		o.TTL = min(10*time.Minute, o.MaxTTL)
	}
	if o.MaxChecks <= 0 {
		o.MaxChecks = 5
	}
	if o.MaxSends <= 0 {
		o.MaxSends = 5
	}
	if o.SendWindow <= 0 {
		o.SendWindow = 10 * time.Minute
	}
	if o.FailureCap <= 0 {
		o.FailureCap = 100
	}
	if o.DefaultLocale == "" {
		o.DefaultLocale = "en"
	}
	if len(o.Templates) == 0 {
		o.Templates = map[string]string{"en": DefaultTemplate}
	}
	if o.NotifyTemplate == "" {
		o.NotifyTemplate = DefaultNotifyTemplate
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Problem is what is wrong with one setting of Options. Field names it as
// the configuration's verify section does ("code_length", "templates.de").
type Problem struct {
	Field string
	Text  string
}

// Check returns what is wrong with the settings of o that are given (zero
// fields take their defaults), in a stable order: New refuses the first,
// and simgate check-config reports them all with the configuration's keys.
// The secret is New's to check: the configuration may leave it to a file.
func (o Options) Check() []Problem {
	var ps []Problem
	bad := func(field, format string, args ...any) {
		ps = append(ps, Problem{field, fmt.Sprintf(format, args...)})
	}
	if o.AppName != "" {
		if err := CheckAppName(o.AppName); err != nil {
			bad("app_name", "%v", err)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(o.AppNames)) {
		if !ValidAppNameKey(key) {
			bad("app_names."+key, "the key (what requests give as app_name) must be 1 to %d letters, digits, '.', '_' or '-'", MaxAppName)
		} else if err := CheckAppName(o.AppNames[key]); err != nil {
			bad("app_names."+key, "%v", err)
		}
	}
	// NIST SP 800-63B: out-of-band secrets of at least 6 digits, valid for
	// at most 10 minutes; the operator may allow less.
	o = o.withDefaults()
	if o.MinCodeLength < MinCodeLength || o.MinCodeLength > MaxCodeLength {
		bad("min_code_length", "must be %d to %d digits, got %d", MinCodeLength, MaxCodeLength, o.MinCodeLength)
	} else if o.CodeLength < o.MinCodeLength || o.CodeLength > MaxCodeLength {
		bad("code_length", "must be verify.min_code_length (%d) to %d digits, got %d", o.MinCodeLength, MaxCodeLength, o.CodeLength)
	}
	if o.MaxTTL < MinTTL || o.MaxTTL > MaxTTL {
		bad("max_ttl", "must be between 1m and 24h, got %s", o.MaxTTL)
	} else if o.TTL < MinTTL || o.TTL > o.MaxTTL {
		bad("ttl", "must be between 1m and at most verify.max_ttl (%s), got %s", o.MaxTTL, o.TTL)
	}
	if _, ok := o.Templates[o.DefaultLocale]; !ok {
		bad("default_locale", "no template for locale %q", o.DefaultLocale)
	}
	for _, loc := range slices.Sorted(maps.Keys(o.Templates)) {
		if !strings.Contains(o.Templates[loc], "{code}") {
			bad("templates."+loc, "must contain {code}")
		}
	}
	return ps
}

// Start sends a code to v.To, which the caller has normalised to E.164, or,
// for a missed-call verification, picks the SIM the user must call. From
// v it reads To, ServiceID ("": the default service), Channel ("" is SMS),
// Locale, AppName (empty or a key of Options.AppNames; Start replaces it
// with the name shown), Reference, CodeLength (0: the service's; none for a
// missed call) and APIKeyID; ttl 0 means the service's. It fills in the
// rest of v and returns the queued SMS, whose text is sealed, or nil for a
// missed-call verification (see startCall). The verification and its SMS
// are stored in one transaction; a resend (a pending verification of the
// number in the same service and channel) cancels the still-queued SMS with
// the old code. A pending verification of the number in the same service
// by the other channel is canceled, not taken over. It returns
// simgate.ServiceNotFound for a service that does not exist, CodeInvalid
// for bad parameters (a number outside the service's countries among
// them), a rate-limit error when the number has had too many sends or
// failures, in any service, and CodeUnavailable when no SIM can take a
// missed call.
func (s *Service) Start(ctx context.Context, v *simgate.Verification, ttl time.Duration) (*simgate.Message, error) {
	return s.start(ctx, v, ttl, "")
}

// StartCustom is Start with code, given by the caller, as the code instead
// of one drawn: a custom code, which only a service that allows them takes
// (CodeForbidden otherwise). It must be digits, as many as a code of the
// service may have (CodeInvalid), and sets v.CodeLength. Like a drawn code
// it is kept only as its HMAC, and is never logged nor answered; what it
// does not have is a drawn code's unpredictability, which is the caller's
// to give it.
func (s *Service) StartCustom(ctx context.Context, v *simgate.Verification, ttl time.Duration, code string) (*simgate.Message, error) {
	if code == "" {
		return nil, simgate.Errorf(simgate.CodeInvalid, "custom_code is empty")
	}
	return s.start(ctx, v, ttl, code)
}

// start is Start with a custom code, or none ("").
func (s *Service) start(ctx context.Context, v *simgate.Verification, ttl time.Duration, custom string) (*simgate.Message, error) {
	svc, err := s.service(ctx, v.ServiceID)
	if err != nil {
		return nil, err
	}
	template, err := s.prepare(v, &ttl, svc, custom)
	if err != nil {
		return nil, err
	}
	if v.Channel == simgate.ChannelMissedCall {
		return nil, s.startCall(ctx, v, ttl)
	}
	code := custom
	if code == "" {
		if code, err = NewCode(v.CodeLength); err != nil {
			return nil, err
		}
	}
	v.ExpiresAt = s.opts.Now().Add(ttl)
	v.MaxAttempts = s.opts.MaxChecks
	// The verification and its SMS are stored in one transaction: a code is
	// never recorded without the SMS that carries it, and a create costs one
	// commit. A refusal by a limit commits the alert it raised.
	var m *simgate.Message
	var resent bool
	var refused error
	err = s.store.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		var err error
		if refused, err = s.sendRefusal(ctx, tx, v.To); err != nil || refused != nil {
			return err // a refusal commits, with its alert
		}
		if resent, err = s.startOrResend(ctx, tx, v, code); err != nil {
			return err
		}
		m = &simgate.Message{
			To:             v.To,
			Text:           Render(template, code, v.AppName, ttl),
			Priority:       simgate.PriorityVerification,
			ExpiresAt:      v.ExpiresAt,
			VerificationID: v.ID,
			APIKeyID:       v.APIKeyID,
		}
		if err := s.queue.Prepare(m); err != nil {
			return err
		}
		if resent {
			// The SMS still queued carry the replaced code.
			if err := tx.CancelQueuedMessages(ctx, v.ID, "replaced by a resend with a new code"); err != nil {
				return err
			}
		}
		if err := tx.CreateMessage(ctx, m); err != nil {
			return err
		}
		v.MessageID = m.ID
		return nil
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return nil, err
	}
	s.queue.Wake()
	v.CodeHash = nil
	s.log.Info("verification sent", "verification", v.ID, "service", v.ServiceID, "message", m.ID, "resent", resent,
		"send_count", v.SendCount, "custom_code", custom != "")
	return m, nil
}

// startCall stores the missed-call verification v: the limits on sends
// apply as to a code SMS, since a start could otherwise probe numbers
// without limit (a start counts as a send), and a pending missed-call
// verification of the number is taken over as a resend is (same id, the
// same SIM while it can take the call). Nothing is sent: the SMS budgets
// of the API do not apply.
func (s *Service) startCall(ctx context.Context, v *simgate.Verification, ttl time.Duration) error {
	if s.opts.Callees == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "missed-call verifications are not available: no modems")
	}
	v.ExpiresAt = s.opts.Now().Add(ttl)
	v.MaxAttempts = s.opts.MaxChecks
	var resent bool
	var refused error
	err := s.store.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		var err error
		if refused, err = s.sendRefusal(ctx, tx, v.To); err != nil || refused != nil {
			return err // a refusal commits, with its alert
		}
		resent, err = s.startOrResend(ctx, tx, v, "")
		return err
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return err
	}
	s.log.Info("missed-call verification started", "verification", v.ID, "modem", v.CallModem, "resent", resent, "send_count", v.SendCount)
	return nil
}

// FailureWindow is the period over which failed checks of one number are
// counted against the failure cap: NIST SP 800-63B §5.2.2 limits consecutive
// failed attempts on one account, and a day is the period its guidance uses.
const FailureWindow = 24 * time.Hour

// rateLimited is a refusal by the service's limit rule, to be retried no
// sooner than in a second.
func rateLimited(rule string, after time.Duration, format string, args ...any) error {
	return simgate.RateLimited(rule, max(after, time.Second), format, args...)
}

// sendRefusal applies the limits on verifications sent to number:
// FailureCap failed checks within FailureWindow, and MaxSends sends (code
// SMS and missed-call starts) within SendWindow. It
// returns the refusal, a *simgate.RateLimitError, or nil; the first refusal
// by the send limit in a window records an alert. err is the store's.
func (s *Service) sendRefusal(ctx context.Context, tx simgate.VerificationTx, number string) (refusal, err error) {
	now := tx.Now()
	n, oldest, err := tx.CountFailures(ctx, number, now.Add(-FailureWindow))
	if err != nil {
		return nil, err
	} else if n >= s.opts.FailureCap {
		return rateLimited(simgate.RuleVerificationChecks, oldest.Add(FailureWindow).Sub(now), "too many failed checks for this number; try again later"), nil
	}
	window := s.opts.SendWindow
	n, oldest, err = tx.CountSends(ctx, number, now.Add(-window))
	if err != nil {
		return nil, err
	} else if n >= s.opts.MaxSends {
		// One alert per window per number, however often the limit is hit.
		if _, err := tx.CreateAlertOnce(ctx, simgate.AlertSendLimit, number,
			fmt.Sprintf("%d verification sends (code SMS or missed-call starts) within %s", n, window), window); err != nil {
			return nil, err
		}
		return rateLimited(simgate.RuleVerificationSends, oldest.Add(window).Sub(now),
			"at most %d verification sends (code SMS or missed-call starts) per number within %s; try again later", s.opts.MaxSends, window), nil
	}
	return nil, nil
}

// startOrResend stores v with a hash of code (none for a missed-call
// verification, whose SIM it picks) and counts a send. When the number has
// a pending verification in v's service of v's channel that has not
// expired, v takes it over (a resend: v gets its id, creation time and
// attempts; its code, expiry, length, locale and app name replace the old
// ones, its reference only when v has one; a missed call goes to the same
// SIM while it can take it) and resent is true. A pending one that has
// expired is marked expired first, and one of the other channel canceled,
// with its queued SMS: its code, or a call, must not approve what replaced
// it. Then v is created with a new id. The pending verifications of other
// services are left alone.
func (s *Service) startOrResend(ctx context.Context, tx simgate.VerificationTx, v *simgate.Verification, code string) (resent bool, err error) {
	cur, _, err := tx.PendingVerification(ctx, v.ServiceID, v.To)
	if err != nil && simgate.ErrorCode(err) != simgate.CodeNotFound {
		return false, err
	}
	if cur != nil && !tx.Now().Before(cur.ExpiresAt) {
		if err := tx.SetVerificationStatus(ctx, cur, simgate.VerificationExpired); err != nil {
			return false, err
		}
		cur = nil
	}
	if cur != nil && cur.Channel != v.Channel {
		if err := tx.SetVerificationStatus(ctx, cur, simgate.VerificationCanceled); err != nil {
			return false, err
		}
		if err := tx.CancelQueuedMessages(ctx, cur.ID, "replaced by a verification by "+channelName(v.Channel)); err != nil {
			return false, err
		}
		cur = nil
	}
	if v.Channel == simgate.ChannelMissedCall {
		prefer := ""
		if cur != nil {
			prefer = cur.CallModem
		}
		if v.CallModem, v.CallTo, err = s.opts.Callees.PickCallee(v.To, prefer); err != nil {
			return false, err
		}
	}
	if cur == nil {
		v.ID = simgate.NewID("ver", tx.Now())
		v.CodeHash = s.codeHash(v, code)
		if err := tx.CreateVerification(ctx, v); err != nil {
			return false, err
		}
	} else {
		if v.Reference == "" {
			v.Reference = cur.Reference
		}
		if v.APIKeyID == "" {
			v.APIKeyID = cur.APIKeyID
		}
		v.ID, v.CreatedAt, v.Attempts, v.MaxAttempts = cur.ID, cur.CreatedAt, cur.Attempts, cur.MaxAttempts
		v.CodeHash = s.codeHash(v, code)
		if err := tx.ResendVerification(ctx, v); err != nil {
			return false, err
		}
		v.Status, v.SendCount, v.ApprovedAt = simgate.VerificationPending, cur.SendCount+1, time.Time{}
	}
	return cur != nil, tx.AddSend(ctx, v.To)
}

// channelName is a channel as errors and reasons name it.
func channelName(c simgate.VerificationChannel) string {
	if c == simgate.ChannelMissedCall {
		return "missed call"
	}
	return "SMS"
}

// prepare checks v, a request to start a verification in the service svc
// with the custom code custom (or none), fills in what it leaves to the
// service and the gateway (channel, code length, TTL, app name, locale,
// service), and returns the template of its text. A missed-call
// verification has no code: it takes neither a custom code nor a
// code_length, and keeps the configured default length (see
// simgate.Verification.CodeLength).
func (s *Service) prepare(v *simgate.Verification, ttl *time.Duration, svc *simgate.Service, custom string) (string, error) {
	if !simgate.IsE164(v.To) {
		return "", simgate.Errorf(simgate.CodeInvalid, "to must be an E.164 number such as +4915123456789")
	}
	switch v.Channel {
	case "":
		v.Channel = simgate.ChannelSMS
	case simgate.ChannelSMS:
	case simgate.ChannelMissedCall:
		if custom != "" {
			return "", simgate.Errorf(simgate.CodeInvalid, "custom_code does not apply to a missed_call verification: it has no code")
		}
		if v.CodeLength != 0 {
			return "", simgate.Errorf(simgate.CodeInvalid, "code_length does not apply to a missed_call verification: it has no code")
		}
		if s.opts.Callees == nil {
			return "", simgate.Errorf(simgate.CodeUnavailable, "missed-call verifications are not available: no modems")
		}
		// The configured default, not the service's: the length means
		// nothing here, and the stores require one.
		v.CodeLength = s.opts.CodeLength
	default:
		return "", simgate.Errorf(simgate.CodeInvalid, "channel must be %q or %q, got %q", simgate.ChannelSMS, simgate.ChannelMissedCall, v.Channel)
	}
	v.CallTo, v.CallModem = "", ""
	v.ServiceID = svc.ID
	if len(svc.AllowedCountries) > 0 {
		if cc := simgate.CountryOf(v.To); !slices.Contains(svc.AllowedCountries, cc) {
			return "", simgate.Errorf(simgate.CodeInvalid, "service %s sends codes to %s only; to is a number of %s",
				svc.ID, strings.Join(svc.AllowedCountries, ", "), cmp.Or(cc, "no country"))
		}
	}
	lengthField := "code_length"
	if custom != "" {
		// Refused before its form is looked at: a service that takes no
		// custom codes says so whatever the code.
		if !svc.CustomCodeAllowed {
			return "", simgate.Errorf(simgate.CodeForbidden, "service %s does not allow custom codes; "+
				"create a service with custom codes allowed to give codes of your own", svc.ID)
		}
		if !validCode(custom) || len(custom) < s.opts.MinCodeLength {
			return "", simgate.Errorf(simgate.CodeInvalid, "custom_code must be %d to %d digits", s.opts.MinCodeLength, MaxCodeLength)
		}
		if v.CodeLength != 0 && v.CodeLength != len(custom) {
			return "", simgate.Errorf(simgate.CodeInvalid, "code_length is %d, but custom_code has %d digits; give one or the other", v.CodeLength, len(custom))
		}
		v.CodeLength = len(custom)
	}
	if v.CodeLength == 0 && svc.CodeLength != 0 {
		v.CodeLength, lengthField = svc.CodeLength, "the code_length of service "+svc.ID
	} else if v.CodeLength == 0 {
		v.CodeLength = s.opts.CodeLength
	}
	if v.CodeLength < s.opts.MinCodeLength && v.CodeLength >= MinCodeLength {
		return "", simgate.Errorf(simgate.CodeInvalid, "%s must be at least %d digits, got %d; "+
			"the operator can allow shorter codes with verify.min_code_length (NIST SP 800-63B asks for at least 6)", lengthField, s.opts.MinCodeLength, v.CodeLength)
	}
	if v.CodeLength < s.opts.MinCodeLength || v.CodeLength > MaxCodeLength {
		return "", simgate.Errorf(simgate.CodeInvalid, "%s must be %d to %d, got %d", lengthField, s.opts.MinCodeLength, MaxCodeLength, v.CodeLength)
	}
	ttlField := "ttl"
	if *ttl == 0 && svc.TTL != 0 {
		*ttl, ttlField = svc.TTL, "the ttl of service "+svc.ID
	} else if *ttl == 0 {
		*ttl = s.opts.TTL
	}
	if *ttl > s.opts.MaxTTL && *ttl <= MaxTTL {
		return "", simgate.Errorf(simgate.CodeInvalid, "%s must be at most %s, got %s; "+
			"the operator can allow longer lifetimes with verify.max_ttl (NIST SP 800-63B asks for at most 10m)", ttlField, s.opts.MaxTTL, *ttl)
	}
	if *ttl < MinTTL || *ttl > s.opts.MaxTTL {
		return "", simgate.Errorf(simgate.CodeInvalid, "%s must be between %s and %s, got %s", ttlField, MinTTL, s.opts.MaxTTL, *ttl)
	}
	if len([]rune(v.Reference)) > MaxReference || len(v.Reference) > 4*MaxReference {
		return "", simgate.Errorf(simgate.CodeInvalid, "reference must be at most %d characters", MaxReference)
	}
	// app_name is a key, never text: the SMS shows only names the operator
	// configured.
	switch name, ok := s.opts.AppNames[v.AppName]; {
	case v.AppName == "":
		v.AppName = cmp.Or(svc.FriendlyName, s.opts.AppName)
	case ok:
		v.AppName = name
	case !ValidAppNameKey(v.AppName):
		return "", simgate.Errorf(simgate.CodeInvalid, "app_name must be the key of a configured app name "+
			"(1 to %d letters, digits, '.', '_' or '-'), not text; the operator adds names under verify.app_names", MaxAppName)
	default:
		return "", simgate.Errorf(simgate.CodeInvalid, "app_name %q is not a configured app name (configured: %s); "+
			"the operator adds it as a key under verify.app_names, with the name to show as its value", v.AppName, s.appNameKeys())
	}
	template, ok := s.template(svc, v.Locale)
	if !ok {
		v.Locale = s.opts.DefaultLocale
		template, _ = s.template(svc, v.Locale)
	}
	return template, nil
}

// template returns the template of locale: the service's, or else the
// gateway's; ok is false when neither has one.
func (s *Service) template(svc *simgate.Service, locale string) (t string, ok bool) {
	if t, ok = svc.Templates[locale]; ok {
		return t, true
	}
	t, ok = s.opts.Templates[locale]
	return t, ok
}

// service returns the service id ("": the default service) as stored. The
// default service is not read: its row holds no settings (the schema
// keeps it so), so it is the gateway's settings alone.
func (s *Service) service(ctx context.Context, id string) (*simgate.Service, error) {
	if id == "" || id == simgate.DefaultServiceID {
		return &simgate.Service{ID: simgate.DefaultServiceID}, nil
	}
	if !simgate.IsServiceID(id) {
		return nil, simgate.ServiceNotFound(id)
	}
	return s.store.FindService(ctx, id)
}

// appNameKeys lists the configured app name keys for an error message.
func (s *Service) appNameKeys() string {
	if len(s.opts.AppNames) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(s.opts.AppNames)), ", ")
}

// ValidAppNameKey reports whether key can name an app name: 1 to
// MaxAppName ASCII letters, digits, '.', '_' or '-'.
func ValidAppNameKey(key string) bool {
	if key == "" || len(key) > MaxAppName {
		return false
	}
	for _, c := range key {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CheckAppName returns an error unless name can be shown in a code SMS: 1
// to MaxAppName characters without control, format (such as bidi
// overrides) or line-breaking characters.
func CheckAppName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > MaxAppName || !utf8.ValidString(name) {
		return fmt.Errorf("must be 1 to %d characters of valid UTF-8", MaxAppName)
	}
	for i, r := range []rune(name) {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Errorf("character %d is U+%04X, a control or format character", i+1, r)
		}
	}
	return nil
}

// Check checks code against the verification ref names (by id, or the
// newest pending verification of a number in a service). It returns the
// verification after the check: approved when this check approved it,
// pending with attempts left after a wrong code, max_attempts_reached when
// this wrong code was the last allowed. It returns CodeNotFound when there is
// no such verification or it is of a service the caller may not see (no
// attempt is counted then), a *simgate.VerificationConflict when it was not
// pending (already approved, canceled, expired or failed: even the right
// code fails), is a missed-call verification (no code approves it: a call
// does; nothing is counted), or, for a check by number with no pending
// verification, when the number's newest verification that had its last
// check has not expired (spent), and a rate-limit error when the number
// reached its failure cap.
func (s *Service) Check(ctx context.Context, ref simgate.VerificationRef, code string) (*simgate.Verification, error) {
	if ref.ID == "" && ref.To == "" {
		return nil, simgate.Errorf(simgate.CodeInvalid, "give id or to")
	}
	if !validCode(code) {
		return nil, simgate.Errorf(simgate.CodeInvalid, "code must be %d to %d digits", MinCodeLength, MaxCodeLength)
	}
	var v *simgate.Verification
	var changed bool
	var failures int
	err := s.store.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		var err error
		v, changed, failures, err = s.check(ctx, tx, ref, code)
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case v.Status == simgate.VerificationApproved && changed:
		s.log.Info("verification approved", "verification", v.ID)
		return v, nil
	case v.Status == simgate.VerificationPending:
		return v, nil
	case v.Status == simgate.VerificationMaxAttemptsReached && changed:
		s.log.Warn("verification reached its maximum attempts", "verification", v.ID, "failures_24h", failures)
		s.notifyOwner(ctx, v)
		return v, nil
	}
	return nil, v.Conflict("verification %s is %s", v.ID, v.Status)
}

// verificationNotFound is the answer for a verification that does not
// exist and for one of a service the caller may not see alike (the
// stores' words).
func verificationNotFound() error {
	return simgate.Errorf(simgate.CodeNotFound, "verification not found")
}

// find returns the verification ref names by its id, in tx, when the
// caller may see it (visible); CodeNotFound otherwise.
func find(ctx context.Context, tx simgate.VerificationTx, ref simgate.VerificationRef) (*simgate.Verification, simgate.MessageStatus, error) {
	v, msgStatus, err := tx.FindVerification(ctx, ref.ID)
	if err != nil {
		return nil, "", err
	} else if !visible(ref, v) {
		return nil, "", verificationNotFound()
	}
	return v, msgStatus, nil
}

// visible reports whether the caller of ref may see v: v is of a service
// the caller may use, and of the service ref names, when it names one.
func visible(ref simgate.VerificationRef, v *simgate.Verification) bool {
	return simgate.ServiceAllowed(ref.Services, v.ServiceID) && (ref.ServiceID == "" || ref.ServiceID == v.ServiceID)
}

// check compares code with the verification that ref names, in tx. A
// pending verification past its expiry becomes expired, and one whose last
// SMS failed becomes failed; neither is compared. Otherwise a match
// approves it; a mismatch counts an attempt and a failure of the number (an
// alert when the number reaches FailureCap), and the attempt that reaches
// MaxAttempts makes it max_attempts_reached (with an alert). changed
// reports whether this check moved it out of pending; failures is the
// number's failed checks within FailureWindow after it. A number at its
// FailureCap is refused without a comparison. The returned verification
// has no code hash. A verification the caller may not see is not found
// before anything is written.
func (s *Service) check(ctx context.Context, tx simgate.VerificationTx, ref simgate.VerificationRef, code string) (v *simgate.Verification, changed bool, failures int, err error) {
	var msgStatus simgate.MessageStatus
	if ref.ID != "" {
		v, msgStatus, err = find(ctx, tx, ref)
	} else {
		serviceID := cmp.Or(ref.ServiceID, simgate.DefaultServiceID)
		err = simgate.Errorf(simgate.CodeNotFound, "no pending verification for this number")
		if simgate.ServiceAllowed(ref.Services, serviceID) {
			v, msgStatus, err = tx.PendingVerification(ctx, serviceID, ref.To)
			if simgate.ErrorCode(err) == simgate.CodeNotFound {
				err = spent(ctx, tx, serviceID, ref.To)
			}
		}
	}
	if err != nil {
		return nil, false, 0, err
	}
	hash := v.CodeHash
	v.CodeHash = nil
	if v.Channel == simgate.ChannelMissedCall {
		return nil, false, 0, v.Conflict("verification %s is a missed_call verification (%s): "+
			"a call from its number to %s approves it, not a code; read its status with GET /v1/verifications/%s", v.ID, v.Status, v.CallTo, v.ID)
	}
	if v.Status != simgate.VerificationPending {
		return v, false, 0, nil
	}
	if st := pendingStatus(v, msgStatus, tx.Now()); st != simgate.VerificationPending {
		return v, true, 0, tx.SetVerificationStatus(ctx, v, st)
	}

	now := tx.Now()
	failures, oldest, err := tx.CountFailures(ctx, v.To, now.Add(-FailureWindow))
	if err != nil {
		return nil, false, 0, err
	}
	if failures >= s.opts.FailureCap {
		return nil, false, failures, rateLimited(simgate.RuleVerificationChecks, oldest.Add(FailureWindow).Sub(now),
			"too many failed checks for this number; try again later")
	}

	if hmac.Equal(s.hash(v.ID, code), hash) {
		v.ApprovedAt = now
		return v, true, failures, tx.SetVerificationStatus(ctx, v, simgate.VerificationApproved)
	}

	if err := tx.AddFailure(ctx, v.To); err != nil {
		return nil, false, 0, err
	}
	failures++
	if failures == s.opts.FailureCap {
		if err := tx.CreateAlert(ctx, simgate.AlertFailureCap, v.To,
			fmt.Sprintf("%d failed checks within %s", failures, FailureWindow)); err != nil {
			return nil, false, 0, err
		}
	}
	v.Attempts++
	if err := tx.SetVerificationAttempts(ctx, v); err != nil {
		return nil, false, 0, err
	}
	if v.Attempts >= v.MaxAttempts {
		if err := tx.CreateAlert(ctx, simgate.AlertMaxAttempts, v.To, "verification "+v.ID); err != nil {
			return nil, false, 0, err
		}
		return v, true, failures, tx.SetVerificationStatus(ctx, v, simgate.VerificationMaxAttemptsReached)
	}
	return v, false, failures, nil
}

// spent is the answer to a check by number when the number has no pending
// verification in the service: a conflict naming the newest of its
// verifications that had its last allowed check, while that one has not
// expired, so that its caller learns that the checks are spent (the Twilio
// surface's 60202); CodeNotFound otherwise.
func spent(ctx context.Context, tx simgate.VerificationTx, serviceID, number string) error {
	v, err := tx.SpentVerification(ctx, serviceID, number)
	switch {
	case simgate.ErrorCode(err) == simgate.CodeNotFound:
		return simgate.Errorf(simgate.CodeNotFound, "no pending verification for this number")
	case err != nil:
		return err
	}
	return v.Conflict("verification %s of this number is %s: it had its last allowed check; start a new one", v.ID, v.Status)
}

// HandleCall applies an incoming call to the missed-call verifications: the
// newest pending one of the caller's number (call.FromE164) whose SIM
// (CallModem) took the call (call.ModemID) is approved when the call came
// (call.At, or now when unset) within its life, from its creation to its
// expiry, and marked expired when it came later. One call approves at most
// one verification. It reports whether it approved one. A call whose number
// cannot be read as E.164 (withheld, alphanumeric, or national without the
// called SIM's number: FromE164 is "") or that matches no pending
// missed-call verification changes nothing. Whether the call was rejected
// does not matter: what approves is the caller ID, which the network
// presents and which can be spoofed.
//
// The lookup is by number and SIM, whatever the service: a call says
// nothing of the application it is for. When the number has pending
// missed-call verifications in several services on the same SIM, the call
// approves the newest, and the others stay pending until a later call or
// their expiry.
func (s *Service) HandleCall(ctx context.Context, call *simgate.InboundCall) (approved bool, err error) {
	if call == nil || call.FromE164 == "" || call.ModemID == "" {
		return false, nil
	}
	var v *simgate.Verification
	var status simgate.VerificationStatus
	err = s.store.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		var err error
		v, err = tx.PendingCallVerification(ctx, call.FromE164, call.ModemID)
		if simgate.ErrorCode(err) == simgate.CodeNotFound {
			v = nil
			return nil
		} else if err != nil {
			return err
		}
		at := call.At
		if at.IsZero() {
			at = tx.Now()
		}
		if status = callStatus(v, call, at); status == simgate.VerificationPending {
			return nil
		}
		if status == simgate.VerificationApproved {
			v.ApprovedAt = tx.Now()
		}
		return tx.SetVerificationStatus(ctx, v, status)
	})
	if err != nil {
		return false, fmt.Errorf("cannot apply a call to missed-call verifications: %w", err)
	}
	switch {
	case v == nil:
		return false, nil
	case status == simgate.VerificationApproved:
		s.log.Info("verification approved by a missed call", "verification", v.ID, "modem", call.ModemID)
		return true, nil
	case status == simgate.VerificationExpired:
		s.log.Info("missed call after the verification expired", "verification", v.ID, "modem", call.ModemID)
	}
	return false, nil
}

// callStatus is what the call to v's SIM at makes of v: approved when it is
// a pending missed-call verification of the caller's number on the modem
// that took the call and at is within its life (from its creation to its
// expiry), expired when at is past it, pending (unchanged) when the call is
// not for v or rang before v was made.
func callStatus(v *simgate.Verification, call *simgate.InboundCall, at time.Time) simgate.VerificationStatus {
	switch {
	case v.Channel != simgate.ChannelMissedCall || v.Status != simgate.VerificationPending,
		call.FromE164 == "" || v.To != call.FromE164 || v.CallModem != call.ModemID,
		at.Before(v.CreatedAt):
		return simgate.VerificationPending
	case !at.Before(v.ExpiresAt):
		return simgate.VerificationExpired
	}
	return simgate.VerificationApproved
}

// pendingStatus is what the pending verification v is at now: expired past
// its expiry, failed when its last SMS failed, else pending.
func pendingStatus(v *simgate.Verification, msgStatus simgate.MessageStatus, now time.Time) simgate.VerificationStatus {
	switch {
	case !now.Before(v.ExpiresAt):
		return simgate.VerificationExpired
	case msgStatus == simgate.StatusFailed:
		return simgate.VerificationFailed
	}
	return simgate.VerificationPending
}

// Get returns the verification ref.ID; CodeNotFound when there is none or
// the caller of ref may not see it. A pending verification past its expiry
// is returned as expired, and one whose last SMS failed as failed, before a
// check or a sweep writes that down.
func (s *Service) Get(ctx context.Context, ref simgate.VerificationRef) (*simgate.Verification, error) {
	v, msgStatus, err := s.store.GetVerification(ctx, ref.ID)
	if err != nil {
		return nil, err
	} else if !visible(ref, v) {
		return nil, verificationNotFound()
	}
	if v.Status == simgate.VerificationPending {
		v.Status = pendingStatus(v, msgStatus, s.opts.Now().UTC().Truncate(time.Millisecond))
	}
	return v, nil
}

// Cancel cancels the pending verification ref.ID, erasing its hash, and,
// best effort, its queued SMS. It returns CodeNotFound when there is none
// or the caller of ref may not see it (nothing is written then) and a
// *simgate.VerificationConflict when it is not pending (one past its expiry
// is marked expired first).
func (s *Service) Cancel(ctx context.Context, ref simgate.VerificationRef) (*simgate.Verification, error) {
	return s.settle(ctx, ref, simgate.VerificationCanceled)
}

// Approve approves the pending verification ref.ID without a code or a
// call: the caller has proved the number some other way (Twilio's
// update with Status=approved). Otherwise it is Cancel: the hash is
// erased, the queued SMS canceled, and the errors are Cancel's.
func (s *Service) Approve(ctx context.Context, ref simgate.VerificationRef) (*simgate.Verification, error) {
	return s.settle(ctx, ref, simgate.VerificationApproved)
}

// settle moves the pending verification ref.ID to status, canceled or
// approved, for Cancel and Approve.
func (s *Service) settle(ctx context.Context, ref simgate.VerificationRef, status simgate.VerificationStatus) (*simgate.Verification, error) {
	var v *simgate.Verification
	var conflict error
	err := s.store.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		var err error
		if v, _, err = find(ctx, tx, ref); err != nil {
			return err
		}
		v.CodeHash = nil
		if v.Status == simgate.VerificationPending && !tx.Now().Before(v.ExpiresAt) {
			// Written down, and committed with the refusal.
			if err := tx.SetVerificationStatus(ctx, v, simgate.VerificationExpired); err != nil {
				return err
			}
		}
		if v.Status != simgate.VerificationPending {
			conflict = v.Conflict("verification %s is %s", v.ID, v.Status)
			return nil
		}
		if status == simgate.VerificationApproved {
			v.ApprovedAt = tx.Now()
		}
		return tx.SetVerificationStatus(ctx, v, status)
	})
	if err == nil {
		err = conflict
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("verification "+string(status)+" by request", "verification", v.ID)
	if v.MessageID != "" {
		// The SMS may be gone already; its code no longer works either way.
		if err := s.queue.Cancel(ctx, v.MessageID); err != nil && simgate.ErrorCode(err) == simgate.CodeInternal {
			s.log.Warn("cannot cancel verification SMS", "verification", v.ID, "message", v.MessageID, "error", err)
		}
	}
	return v, nil
}

// notifyOwner texts the number, at most once a day, that someone failed to
// verify with it. Errors are logged: the check's answer does not depend on
// it.
func (s *Service) notifyOwner(ctx context.Context, v *simgate.Verification) {
	if !s.opts.NotifyOwner {
		return
	}
	ctx = context.WithoutCancel(ctx)
	ok, err := s.store.CreateAlertOnce(ctx, simgate.AlertOwnerNotified, v.To, "verification "+v.ID, 24*time.Hour)
	if err != nil {
		s.log.Error("cannot record owner notice", "verification", v.ID, "error", err)
		return
	} else if !ok {
		return
	}
	text := strings.NewReplacer("{app}", v.AppName).Replace(s.opts.NotifyTemplate)
	if err := s.queue.Enqueue(ctx, &simgate.Message{To: v.To, Text: text, Priority: simgate.PriorityHigh,
		ExpiresAt: s.opts.Now().Add(24 * time.Hour)}); err != nil {
		s.log.Error("cannot queue owner notice", "verification", v.ID, "error", err)
	}
}

// RunOnce expires pending verifications past their expiry (erasing their
// hashes) and deletes send and failure records no window needs any more,
// unless another node sharing the database is doing it (the duty
// "verification sweep").
func (s *Service) RunOnce(ctx context.Context) error {
	_, err := s.store.RunExclusive(ctx, "verification sweep", func(ctx context.Context) error {
		if _, err := s.store.ExpireVerifications(ctx); err != nil {
			return err
		}
		keep := max(s.opts.SendWindow, 24*time.Hour)
		return s.store.PurgeVerificationCounters(ctx, s.opts.Now().Add(-keep))
	})
	return err
}

// Open starts the sweep loop when SweepInterval is positive.
func (s *Service) Open() error {
	if s.opts.SweepInterval <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("verify: already open")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.opts.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
					s.log.Error("cannot sweep verifications", "error", err)
				}
			}
		}
	}()
	return nil
}

// Close stops the sweep loop and waits for it.
func (s *Service) Close() error {
	s.mu.Lock()
	cancel := s.cancel
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	return nil
}

// codeHash is the hash of v's code, nil for a missed-call verification,
// which has none.
func (s *Service) codeHash(v *simgate.Verification, code string) []byte {
	if v.Channel == simgate.ChannelMissedCall {
		return nil
	}
	return s.hash(v.ID, code)
}

// hash is HMAC-SHA256(secret, id ":" code). The id binds a hash to its
// verification, so a hash copied onto another row matches nothing.
func (s *Service) hash(id, code string) []byte {
	m := hmac.New(sha256.New, s.opts.Secret)
	m.Write([]byte(id))
	m.Write([]byte{':'})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// Render fills {code}, {app} and {ttl_minutes} in template t. A TTL that is
// not a whole number of minutes is rounded up.
func Render(t, code, app string, ttl time.Duration) string {
	minutes := int((ttl + time.Minute - 1) / time.Minute)
	return strings.NewReplacer("{code}", code, "{app}", app, "{ttl_minutes}", strconv.Itoa(minutes)).Replace(t)
}

// NewCode returns n decimal digits drawn uniformly with crypto/rand.
func NewCode(n int) (string, error) {
	if n < MinCodeLength || n > MaxCodeLength {
		return "", simgate.Errorf(simgate.CodeInvalid, "code length must be %d to %d, got %d", MinCodeLength, MaxCodeLength, n)
	}
	// rand.Int draws uniformly in [0, 10^n) by rejection, so no digit value
	// is favoured, unlike a modulo of random bytes.
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	x, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("cannot draw code: %w", err)
	}
	return fmt.Sprintf("%0*d", n, x.Int64()), nil
}

func validCode(code string) bool {
	if len(code) < MinCodeLength || len(code) > MaxCodeLength {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
