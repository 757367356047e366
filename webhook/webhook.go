// Package webhook delivers simgate's events to HTTP endpoints from a durable
// outbox in the store.
//
// # Outbox
//
// Events are written to the outbox in the same transaction as the change
// they report (SQLite triggers on messages, verifications, alerts and inbound
// SMS; Store.RecordModemState for modem.up and modem.down), so an event is
// neither lost when simgate crashes after a change nor sent for a change that
// was rolled back. Only events of a type some endpoint subscribes to are
// written (Sender.Open tells the store which), so a gateway without webhooks
// pays nothing for them. A Sender fans new events out into one delivery per
// subscribed endpoint, then POSTs the due deliveries.
//
// # Delivery
//
// Each delivery is a POST of a JSON envelope:
//
//	{"id": "evt_...", "type": "message.delivered", "created_at": "...", "data": {...}}
//
// with the headers Simgate-Event-Id, Simgate-Event-Type and
//
//	Simgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>
//
// A 2xx answer delivers it; anything else (redirects are not followed), or
// no answer within Options.Timeout, is retried with exponential backoff from
// Options.MinBackoff up to Options.MaxBackoff until Options.RetryFor after the
// event was created, when the delivery fails for good. Delivery is at least
// once: a crash during a POST sends it again after a lease, and receivers
// deduplicate by event id. Events of one endpoint may arrive out of order.
//
// Delivered and failed events are purged after Options.Retention.
//
// No event carries a verification code, the text of a verification SMS or
// an API key.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/simgate/simgate"
)

// Defaults of Options fields left zero.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultMinBackoff = 30 * time.Second
	DefaultMaxBackoff = time.Hour
	DefaultRetryFor   = 72 * time.Hour
	DefaultRetention  = 7 * 24 * time.Hour
	DefaultWorkers    = 4
	DefaultInterval   = time.Second // what cmd should use; the zero value means off
)

// Store is the outbox. *store.DB satisfies it.
type Store interface {
	// FanOutWebhookEvents creates the deliveries of up to limit new events
	// and returns how many events it handled.
	FanOutWebhookEvents(ctx context.Context, subscribers map[string][]string, limit int) (int, error)
	// ClaimWebhookDeliveries takes up to limit due deliveries and pushes
	// their next attempt out by lease.
	ClaimWebhookDeliveries(ctx context.Context, limit int, lease time.Duration) ([]*simgate.WebhookAttempt, error)
	// FinishWebhookDeliveries records the outcomes of attempts.
	FinishWebhookDeliveries(ctx context.Context, os []simgate.WebhookOutcome) error
	// PurgeWebhookEvents deletes finished events created before before.
	PurgeWebhookEvents(ctx context.Context, before time.Time) (int64, error)
	// RecordModemState writes modem.up or modem.down when the state changed.
	RecordModemState(ctx context.Context, modemID string, up bool, data any) (bool, error)
	// SetWebhookSubscriptions makes the outbox record only events of types.
	SetWebhookSubscriptions(ctx context.Context, types []string) error
}

// Endpoint is one receiver.
type Endpoint struct {
	Name   string   // names the endpoint in deliveries, logs and metrics
	URL    string   // http or https
	Secret []byte   // key of the signature; never logged
	Events []string // the event types it subscribes to
}

// Options configure a Sender. Store is required.
type Options struct {
	Store     Store
	Endpoints []Endpoint
	// Client sends the POSTs (default: a client that follows no redirects).
	Client *http.Client
	// Timeout bounds each POST (default DefaultTimeout).
	Timeout time.Duration
	// MinBackoff is the wait after the first failed attempt, doubled after
	// each further one up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// RetryFor is how long after its event a delivery is retried before it
	// fails (default DefaultRetryFor).
	RetryFor time.Duration
	// Retention is how long finished events are kept (default
	// DefaultRetention).
	Retention time.Duration
	// Interval is how often the outbox is polled; 0 switches the loop off
	// (tests call RunOnce).
	Interval time.Duration
	// Workers bounds the POSTs in flight (default DefaultWorkers).
	Workers int
	Now     simgate.Clock
	Logger  *slog.Logger
}

// Sender delivers the outbox. Open starts its loop; Close stops it.
type Sender struct {
	opts      Options
	log       *slog.Logger
	endpoints map[string]Endpoint
	subs      map[string][]string // event type -> endpoint names

	mu        sync.Mutex // serialises RunOnce
	lastPurge time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Sender. It fails for an endpoint without a name, a URL that
// is not http(s), a duplicate name, an empty secret or an unknown event type.
func New(opts Options) (*Sender, error) {
	if opts.Store == nil {
		return nil, errors.New("cannot create webhook sender: no store")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Timeout, DefaultTimeout)
	def(&opts.MinBackoff, DefaultMinBackoff)
	def(&opts.MaxBackoff, DefaultMaxBackoff)
	def(&opts.RetryFor, DefaultRetryFor)
	def(&opts.Retention, DefaultRetention)
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	s := &Sender{opts: opts, log: opts.Logger, endpoints: map[string]Endpoint{}, subs: map[string][]string{}}
	if ps := CheckEndpoints(opts.Endpoints); len(ps) > 0 {
		return nil, fmt.Errorf("cannot create webhook sender: %s: %s", ps[0].Field, ps[0].Text)
	}
	for _, ep := range opts.Endpoints {
		for _, ev := range ep.Events {
			if !slices.Contains(s.subs[ev], ep.Name) {
				s.subs[ev] = append(s.subs[ev], ep.Name)
			}
		}
		s.endpoints[ep.Name] = ep
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// MinSecret is the shortest secret an endpoint may have: it keys the
// signature that tells the receiver the event is simgate's.
const MinSecret = 16

// validName is what an endpoint may be called: it names it in the store and
// in the API's delivery lists.
var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Problem is what is wrong with one setting of the endpoints. Field names
// it as the configuration's webhooks section does ("endpoints[0].url").
type Problem struct {
	Field string
	Text  string
}

// CheckEndpoints returns what is wrong with eps, in order: New refuses the
// first, and simgate check-config reports them all with the configuration's
// keys. A URL is not echoed: it may hold a token.
func CheckEndpoints(eps []Endpoint) []Problem {
	var ps []Problem
	bad := func(field, format string, args ...any) {
		ps = append(ps, Problem{field, fmt.Sprintf(format, args...)})
	}
	names := map[string]bool{}
	for i, ep := range eps {
		k := fmt.Sprintf("endpoints[%d]", i)
		switch {
		case !validName.MatchString(ep.Name):
			bad(k+".name", "must be 1 to 32 letters, digits, '-' or '_', got %q", ep.Name)
		case names[ep.Name]:
			bad(k+".name", "%q is used by another endpoint", ep.Name)
		}
		names[ep.Name] = true
		if u, err := url.Parse(ep.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(k+".url", "must be an http:// or https:// URL")
		}
		if len(ep.Secret) < MinSecret {
			bad(k+".secret", "must be at least %d characters; use ${NAME} to take it from the environment", MinSecret)
		}
		if len(ep.Events) == 0 {
			bad(k+".events", "must list at least one event type")
		}
		for j, ev := range ep.Events {
			if !slices.Contains(simgate.EventTypes, ev) {
				bad(fmt.Sprintf("%s.events[%d]", k, j), "unknown event type %q (want one of %s)", ev, strings.Join(simgate.EventTypes, ", "))
			}
		}
	}
	return ps
}

// Open tells the store which event types the endpoints subscribe to, so that
// the outbox records only those, then starts the delivery loop unless
// Options.Interval is 0 (the caller then runs RunOnce). It must be called
// before the changes that events report begin.
func (s *Sender) Open(ctx context.Context) error {
	if err := s.opts.Store.SetWebhookSubscriptions(ctx, slices.Sorted(maps.Keys(s.subs))); err != nil {
		return fmt.Errorf("cannot open webhook sender: %w", err)
	}
	if s.opts.Interval <= 0 {
		return nil
	}
	s.wg.Add(1)
	go s.loop()
	return nil
}

// Close stops the loop and waits for the POSTs in flight (each bounded by
// Options.Timeout). Deliveries not finished stay pending in the outbox.
func (s *Sender) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Sender) loop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		// Keep going while there is work, so that a backlog drains at the
		// speed of the endpoints rather than one batch per tick.
		for s.ctx.Err() == nil {
			n, err := s.RunOnce(s.ctx)
			if err != nil && s.ctx.Err() == nil {
				s.log.Error("cannot deliver webhooks", "error", err)
			}
			if err != nil || n == 0 {
				break
			}
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce fans out new events, attempts one batch of due deliveries and,
// once an hour, purges old events. It returns how many deliveries it
// attempted.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		n, err := s.opts.Store.FanOutWebhookEvents(ctx, s.subs, 500)
		if err != nil {
			return 0, err
		}
		if n < 500 {
			break
		}
	}
	now := s.opts.Now()
	if now.Sub(s.lastPurge) >= time.Hour {
		n, err := s.opts.Store.PurgeWebhookEvents(ctx, now.Add(-s.opts.Retention))
		if err != nil {
			return 0, err
		}
		if n > 0 {
			s.log.Info("purged old webhook events", "events", n)
		}
		s.lastPurge = now
	}

	lease := s.opts.Timeout + time.Minute
	as, err := s.opts.Store.ClaimWebhookDeliveries(ctx, 4*s.opts.Workers, lease)
	if err != nil || len(as) == 0 {
		return 0, err
	}
	outcomes := make([]simgate.WebhookOutcome, len(as))
	sem := make(chan struct{}, s.opts.Workers)
	var wg sync.WaitGroup
	for i, a := range as {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outcomes[i] = s.attempt(ctx, a)
		}()
	}
	wg.Wait()
	// Record even when ctx ended during the POSTs: what was delivered stays
	// delivered.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.opts.Store.FinishWebhookDeliveries(fctx, outcomes); err != nil {
		return 0, err
	}
	return len(as), nil
}

// envelope is the JSON body of a delivery.
type envelope struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// attempt POSTs one delivery and decides what becomes of it.
func (s *Sender) attempt(ctx context.Context, a *simgate.WebhookAttempt) simgate.WebhookOutcome {
	d := a.Delivery
	o := simgate.WebhookOutcome{EventID: d.EventID, Endpoint: d.Endpoint}
	ep, ok := s.endpoints[d.Endpoint]
	if !ok {
		o.Status, o.Error = simgate.DeliveryFailed, "endpoint no longer configured"
		return o
	}
	body, err := json.Marshal(envelope{ID: a.Event.ID, Type: a.Event.Type, CreatedAt: a.Event.CreatedAt, Data: a.Event.Data})
	if err != nil {
		o.Status, o.Error = simgate.DeliveryFailed, "cannot encode event: "+err.Error()
		return o
	}
	err = s.post(ctx, ep, a.Event, body)
	log := s.log.With("endpoint", ep.Name, "event", a.Event.ID, "type", a.Event.Type, "attempt", d.Attempts)
	if err == nil {
		log.Debug("webhook delivered")
		o.Status = simgate.DeliveryDelivered
		return o
	}
	o.Error = err.Error()
	now := s.opts.Now()
	deadline := a.Event.CreatedAt.Add(s.opts.RetryFor)
	if !now.Before(deadline) {
		log.Warn("webhook failed for good", "error", err)
		o.Status = simgate.DeliveryFailed
		return o
	}
	o.Status = simgate.DeliveryPending
	o.NextAttemptAt = now.Add(simgate.Backoff(s.opts.MinBackoff, s.opts.MaxBackoff, d.Attempts))
	if o.NextAttemptAt.After(deadline) {
		o.NextAttemptAt = deadline
	}
	log.Info("webhook attempt failed; will retry", "error", err, "retry_at", o.NextAttemptAt)
	return o
}

func (s *Sender) post(ctx context.Context, ep Endpoint, ev simgate.WebhookEvent, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("cannot make request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "simgate-webhook/"+simgate.Version)
	req.Header.Set("Simgate-Event-Id", ev.ID)
	req.Header.Set("Simgate-Event-Type", ev.Type)
	req.Header.Set(SignatureHeader, Sign(ep.Secret, s.opts.Now(), body))
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		// The URL may carry a token: report the cause without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// ModemStateChanged records a modem going down or coming back up, which
// writes a modem.down or modem.up event when that differs from the last one
// reported. Ready and degraded modems are up; down modems are down; starting
// and disabled ones (an admin's doing) change nothing. modem.Pool calls it.
func (s *Sender) ModemStateChanged(ctx context.Context, st simgate.ModemStatus) {
	var up bool
	switch st.State {
	case simgate.ModemReady, simgate.ModemDegraded:
		up = true
	case simgate.ModemDown:
	default:
		return
	}
	data := map[string]any{
		"modem_id": st.ID, "state": st.State, "reason": st.Reason, "operator": st.Operator,
		"registration": st.Registration, "signal_dbm": st.SignalDBm, "imei": st.Identity.IMEI, "iccid": st.Identity.ICCID,
		"at": s.opts.Now().UTC(),
	}
	if _, err := s.opts.Store.RecordModemState(ctx, st.ID, up, data); err != nil {
		s.log.Error("cannot record modem state for webhooks", "modem", st.ID, "error", err)
	}
}

// SignatureHeader is the header that carries a delivery's signature.
const SignatureHeader = "Simgate-Signature"

// Sign returns the Simgate-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under secret>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is returned by Verify for a missing, malformed, wrong or
// stale signature.
var ErrBadSignature = errors.New("webhook signature does not verify")

// Verify checks a Simgate-Signature header against body, for receivers
// written in Go: the HMAC must match under secret and t must lie within
// tolerance of now (which bounds replays; 0 skips the check).
func Verify(secret []byte, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for _, f := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignature
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return ErrBadSignature
		}
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	want := m.Sum(nil)
	for _, sig := range sigs {
		got, err := hex.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}
