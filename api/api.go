// Package api is simgate's JSON API over HTTP, on gorilla/mux: verifications
// (one-time codes) and their services, messages, the inbox, modems and
// health checks.
//
// The package wraps no storage or hardware itself. It declares the small
// interfaces it calls (KeyStore, VerifyService, ServiceStore, MessageService,
// InboxService, ModemService, IdempotencyStore, AlertStore, BudgetStore,
// Pinger) and cmd/simgate hands it the real ones: *store.DB,
// *verify.Service, the queue's dispatcher and *modem.Pool.
//
// A key limited to services (simgate.APIKey.Services) sees the
// verifications and services of those only: the others answer 404, as
// those that do not exist do (verify applies it to verifications, the
// service routes to services).
//
// Errors are RFC 9457 problem documents (application/problem+json) with a
// stable "code" member taken from simgate.Code; one function, Error, maps a
// domain error to its status. The OpenAPI 3.1 document of every route is
// embedded and served at /v1/openapi.json.
//
// Clients authenticate with an API key in an Authorization: Bearer header,
// or, with a key made for Twilio's clients (NewTwilioKey), with HTTP Basic.
// The key is looked up on every request (by its SHA-256), so a revocation
// takes effect on the next request; a key in the query string is refused,
// since URLs end up in proxy and server logs.
//
// The routes under /v2/ are Twilio's Verify API, version 2 (twilio.go,
// docs/TWILIO.md): form-encoded requests, Twilio's fields and error codes,
// over the same services and verifications.
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/simgate/simgate"
)

// KeyStore finds API keys. *store.DB satisfies it.
type KeyStore interface {
	// FindAPIKeyByHash returns the unrevoked key with the given SHA-256; a
	// CodeNotFound error when there is none or it was revoked.
	FindAPIKeyByHash(ctx context.Context, hash []byte) (*simgate.APIKey, error)
	// TouchAPIKey records that a key was used now.
	TouchAPIKey(ctx context.Context, id string) error
}

// VerifyService creates and checks verifications. *verify.Service satisfies
// it.
type VerifyService interface {
	// Start sends a code to v.To (E.164) in the service v.ServiceID and
	// fills v; it returns the queued SMS, whose text must never be shown.
	// Errors: CodeNotFound for a service that does not exist, CodeInvalid,
	// a rate-limit error (CodeRateLimited with a RetryAfter method), the
	// queue's errors.
	Start(ctx context.Context, v *simgate.Verification, ttl time.Duration) (*simgate.Message, error)
	// StartCustom is Start with the code given (a custom code);
	// CodeForbidden when the service takes none.
	StartCustom(ctx context.Context, v *simgate.Verification, ttl time.Duration, code string) (*simgate.Message, error)
	// Check checks a code against the verification ref names. It returns
	// the verification after the check, CodeNotFound (also for one the
	// caller may not see), a *simgate.VerificationConflict when the
	// verification is not pending or is one no code approves, or a
	// rate-limit error.
	Check(ctx context.Context, ref simgate.VerificationRef, code string) (*simgate.Verification, error)
	// Get returns the verification ref.ID; CodeNotFound when missing or
	// not the caller's to see.
	Get(ctx context.Context, ref simgate.VerificationRef) (*simgate.Verification, error)
	// Cancel cancels the pending verification ref.ID; CodeNotFound, or a
	// *simgate.VerificationConflict when it is not pending.
	Cancel(ctx context.Context, ref simgate.VerificationRef) (*simgate.Verification, error)
	// Approve approves the pending verification ref.ID without a code;
	// errors as Cancel's.
	Approve(ctx context.Context, ref simgate.VerificationRef) (*simgate.Verification, error)
}

// ServiceStore creates and reads services. *verify.Service satisfies it.
type ServiceStore interface {
	// CreateService checks a service's settings and stores it with a new
	// id; CodeInvalid names the setting refused.
	CreateService(ctx context.Context, s *simgate.Service) error
	// GetService returns a service as it applies now;
	// simgate.ServiceNotFound when none.
	GetService(ctx context.Context, id string) (*simgate.Service, error)
	// ListServices returns every service as it applies now, the default
	// first.
	ListServices(ctx context.Context) ([]*simgate.Service, error)
}

// MessageService queues and reads outbound SMS. The queue's dispatcher
// satisfies it.
type MessageService interface {
	// Enqueue queues m and sets its ID and Status. It returns CodeInvalid
	// for a bad message and CodeForbidden for a number that opted out.
	Enqueue(ctx context.Context, m *simgate.Message) error
	// Cancel cancels a message still queued; CodeNotFound, or CodeConflict
	// when it is past queued.
	Cancel(ctx context.Context, id string) error
	// Message returns a message with its Parts and Events; CodeNotFound.
	Message(ctx context.Context, id string) (*simgate.Message, error)
	// ListMessages returns a page of messages, newest first, selected by
	// f, and the cursor of the next page ("" on the last). A bad cursor is
	// CodeInvalid.
	ListMessages(ctx context.Context, f simgate.MessageFilter) (ms []*simgate.Message, next string, err error)
}

// InboxService reads inbound SMS. *store.DB satisfies it.
type InboxService interface {
	// ListInboundMessages returns up to limit messages with an id above
	// afterID, oldest first.
	ListInboundMessages(ctx context.Context, afterID int64, limit int) ([]*simgate.InboundMessage, error)
}

// ModemService reports on and controls the modems. *modem.Pool satisfies it.
type ModemService interface {
	// Status returns a snapshot of every modem.
	Status() []simgate.ModemStatus
	// Ready returns how many modems take sends now.
	Ready() int
	// Enable, Disable, Drain and Reset act on the modem with that name.
	Enable(name string) error
	Disable(name string) error
	Drain(ctx context.Context, name string) error
	Reset(ctx context.Context, name string) error
	// USSD runs a USSD request on the modem: the code, or the reply to (or
	// with cancel the end of) an open session. Errors carry simgate codes.
	USSD(ctx context.Context, name, code, session string, cancel bool) (simgate.USSDResult, error)
}

// NodeService lists the nodes sharing the database. *cluster.Cluster
// satisfies it.
type NodeService interface {
	// Nodes returns every node, the answering one first.
	Nodes() []simgate.NodeStatus
}

// IdempotencyStore remembers the responses to requests sent with an
// Idempotency-Key. *store.DB satisfies it.
type IdempotencyStore interface {
	// ReserveIdempotencyKey returns "reserved" for a new key (or one whose
	// request died, past its lease, having created nothing), "replay" with
	// the stored response, "in_flight", "mismatch", or "recover" with the
	// id of the message that a request which died past its lease created
	// (the store records it when the context carries
	// simgate.WithIdempotencyKey).
	ReserveIdempotencyKey(ctx context.Context, apiKeyID, key string, requestHash []byte, ttl, lease time.Duration) (outcome simgate.IdempotencyOutcome, status int, body []byte, messageID string, err error)
	// CompleteIdempotencyKey stores the response for a reserved key.
	CompleteIdempotencyKey(ctx context.Context, apiKeyID, key string, status int, body []byte) error
	// ReleaseIdempotencyKey forgets a reserved key whose request failed.
	ReleaseIdempotencyKey(ctx context.Context, apiKeyID, key string) error
}

// AlertStore records security alerts. *store.DB satisfies it.
type AlertStore interface {
	// CreateAlertOnce records an alert unless one of the same kind and
	// subject exists within period.
	CreateAlertOnce(ctx context.Context, kind, subject, detail string, period time.Duration) (bool, error)
}

// Pinger proves the database takes writes. *store.DB satisfies it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// WebhookService reports webhook deliveries. *store.DB satisfies it.
type WebhookService interface {
	// ListWebhookDeliveries returns a page of deliveries, newest first,
	// and the cursor of the next page ("" on the last); CodeInvalid for a
	// bad status or cursor.
	ListWebhookDeliveries(ctx context.Context, f simgate.DeliveryFilter) ([]*simgate.WebhookDelivery, string, error)
}

// RateLimitObserver is told each request refused by a rate limit, with the
// rule (RulePerIP, ...), for metrics. It must not block.
type RateLimitObserver interface {
	RateLimited(rule string)
}

// Mount is a handler served beside the API on the same listener, for every
// path that starts with Prefix: metrics at "/metrics", the admin console at
// "/console/". Mounted handlers do their own authentication; the API's
// routes, limits and OpenAPI document do not cover them.
type Mount struct {
	Prefix  string
	Handler http.Handler
}

// Options configure a Server. Services left nil answer 503 on their routes,
// except Keys, which is required.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:8080" (loopback).
	Addr string
	// TLSCertFile and TLSKeyFile enable TLS (1.2 at least) when both are
	// set. ReloadCertificate reads them again.
	TLSCertFile, TLSKeyFile string

	ReadHeaderTimeout time.Duration // default 5 s
	ReadTimeout       time.Duration // default 10 s
	WriteTimeout      time.Duration // default 15 s
	IdleTimeout       time.Duration // default 60 s
	ShutdownTimeout   time.Duration // default 10 s

	Keys        KeyStore
	Verify      VerifyService
	Services    ServiceStore
	Messages    MessageService
	Inbox       InboxService
	Modems      ModemService
	Nodes       NodeService
	Idempotency IdempotencyStore
	Alerts      AlertStore
	// Budgets counts the SMS budgets of Limits (global, per prefix); it
	// is required when one is set.
	Budgets BudgetStore
	// Buckets, when set, keeps the token buckets of Limits (per API key,
	// per IP, per number) for every node sharing the database; nil keeps
	// them in this process's memory.
	Buckets  BucketStore
	DB       Pinger
	Webhooks WebhookService

	// RateLimits, when set, is told of each rate-limit refusal.
	RateLimits RateLimitObserver
	// Mounts are served beside the API; see Mount.
	Mounts []Mount

	// MinReadyModems is how many ready modems /readyz requires.
	MinReadyModems int

	// Numbers is what recipients are accepted.
	Numbers simgate.NumberPolicy
	// Limits are the rate limits and SMS budgets.
	Limits Limits
	// MaxExpiry is how far ahead a message's expires_at may be; default 7
	// days. A later one is refused rather than cut down.
	MaxExpiry time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered; default
	// and minimum 24 h.
	IdempotencyTTL time.Duration
	// IdempotencyLease is how long a request holds its Idempotency-Key
	// before a retry may take it over, which a retry after a crash must
	// wait for; default 30 s. It must be longer than a request may take.
	IdempotencyLease time.Duration

	// Now is the clock; default time.Now.
	Now simgate.Clock
	// Logger gets one line per request (never a key, a code or a body).
	Logger *slog.Logger
}

// Server is the API server. Open starts listening; Close shuts it down.
type Server struct {
	opts    Options
	log     *slog.Logger
	router  *mux.Router
	http    *http.Server
	numbers *simgate.Numbers
	limits  *limiters

	cert atomic.Pointer[tls.Certificate]

	// touched remembers when each key's last_used_at was last written, so
	// that a busy key costs one write a minute rather than one a request.
	touchMu sync.Mutex
	touched map[string]time.Time

	mu   sync.Mutex
	ln   net.Listener
	done chan struct{}
}

// NewServer returns a Server with its routes. It reads the TLS certificate
// when one is configured.
func NewServer(opts Options) (*Server, error) {
	if opts.Keys == nil {
		return nil, errors.New("cannot create api server: no key store")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:8080"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.ReadHeaderTimeout, 5*time.Second)
	def(&opts.ReadTimeout, 10*time.Second)
	def(&opts.WriteTimeout, 15*time.Second)
	def(&opts.IdleTimeout, 60*time.Second)
	def(&opts.ShutdownTimeout, 10*time.Second)
	def(&opts.MaxExpiry, 7*24*time.Hour)
	opts.IdempotencyTTL = max(opts.IdempotencyTTL, 24*time.Hour)
	def(&opts.IdempotencyLease, 30*time.Second)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
		return nil, errors.New("cannot create api server: set both TLS certificate and key, or neither")
	}
	limits := newLimiters(opts.Limits, opts.Buckets, opts.Now)
	if limits.budgeted() && opts.Budgets == nil {
		return nil, errors.New("cannot create api server: SMS budgets need a budget store")
	}
	numbers, err := simgate.NewNumbers(opts.Numbers)
	if err != nil {
		return nil, fmt.Errorf("cannot create api server: %w", err)
	}

	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		numbers: numbers,
		limits:  limits,
		touched: map[string]time.Time{},
	}
	s.router = s.routes()
	var handler http.Handler = s.router
	if len(opts.Mounts) > 0 {
		mux := http.NewServeMux()
		for _, m := range opts.Mounts {
			mux.Handle(m.Prefix, m.Handler)
		}
		mux.Handle("/", s.router)
		handler = mux
	}
	s.http = &http.Server{
		Addr:              opts.Addr,
		Handler:           handler,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	if opts.TLSCertFile != "" {
		if err := s.ReloadCertificate(); err != nil {
			return nil, err
		}
		s.http.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.cert.Load(), nil
			},
		}
	}
	return s, nil
}

// Limits on requests.
const (
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes = 64 << 10
	// MaxBodyBytes bounds a request body; larger bodies get 413.
	MaxBodyBytes = 16 << 10
)

// Handler returns the API's router, for tests and for serving on a listener
// of the caller's. It does not include Options.Mounts, which the server's own
// listener serves in front of it.
func (s *Server) Handler() http.Handler { return s.router }

// ReloadCertificate reads the TLS certificate and key files again; new
// connections use them. cmd calls it on SIGHUP. A failed reload keeps the
// certificate in use.
func (s *Server) ReloadCertificate() error {
	if s.opts.TLSCertFile == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("cannot load TLS certificate: %w", err)
	}
	s.cert.Store(&cert)
	return nil
}

// Open listens on Options.Addr and serves in a goroutine until Close.
func (s *Server) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("api server already open")
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", s.opts.Addr, err)
	}
	s.ln = ln
	s.done = make(chan struct{})
	// Read TLSConfig before Serve runs: Serve sets up HTTP/2, which writes it.
	useTLS := s.http.TLSConfig != nil
	go func() {
		defer close(s.done)
		var err error
		if useTLS {
			err = s.http.ServeTLS(ln, "", "")
		} else {
			err = s.http.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "error", err)
		}
	}()
	s.log.Info("api listening", "addr", ln.Addr().String(), "tls", useTLS)
	return nil
}

// Addr returns the address listened on, or nil before Open.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops accepting requests and waits, up to ShutdownTimeout, for
// those in flight.
func (s *Server) Close() error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if done != nil {
		<-done
	}
	if err != nil {
		return fmt.Errorf("cannot shut down api server: %w", err)
	}
	return nil
}
