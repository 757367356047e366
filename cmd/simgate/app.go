package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/cluster"
	"github.com/simgate/simgate/console"
	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/verify"
	"github.com/simgate/simgate/webhook"
)

// App is the running gateway: the store, the modem pool, the dispatcher, the
// verification service, the webhook sender and the API (with metrics and the
// admin console mounted beside it), wired from a Config. serve, demo and
// the end-to-end tests all run this one type.
//
// Open starts the parts in dependency order; Close stops them in reverse:
// the API first (no new work), then the control socket, the console's chart
// sampler, the dispatcher (in-flight submits finish), the verification
// sweeper, the webhook sender, the modems, and the database last.
type App struct {
	Config *Config
	Logger *slog.Logger
	// Now is the clock of every part (default time.Now). The demo moves it
	// to show an expired code.
	Now simgate.Clock
	// AllowAllCountries lifts the country allow-list (the demo only).
	AllowAllCountries bool
	// ModemOptions are extra settings for the modems (tests shorten backoffs).
	ModemOptions modem.Options
	// ModemWait bounds how long Open waits for min_ready_modems modems to be
	// probed before it starts the dispatcher anyway (default 15 s).
	ModemWait time.Duration

	// WebhookInterval overrides webhooks.interval (tests poll faster).
	WebhookInterval time.Duration

	DB   Store // SQLite (*store.DB) or PostgreSQL (*postgres.DB)
	Pool *modem.Pool
	// Cluster is this node's view of the nodes sharing its database: their
	// modems beside the pool's, and the queue's wake-ups from them. Alone
	// (SQLite), a cluster of one.
	Cluster  *cluster.Cluster
	Queue    *queue.Dispatcher
	Verify   *verify.Service
	Webhooks *webhook.Sender
	Metrics  *metrics.Metrics
	Console  *console.Console
	// Sampler samples the signal and the queue for the console's charts
	// (and prunes their rollups), whether or not the console is enabled.
	Sampler *console.Sampler
	API     *api.Server

	control *control // simgate apikey and simgate backup while this runs

	mu     sync.Mutex // guards closed
	closed bool
}

// Open opens the store, migrates it, starts the modems, the dispatcher, the
// verification service and the API. On error, Close undoes what was opened.
// The parts are made in dependency order, then subscribed to the pool's
// events, then started.
func (a *App) Open(ctx context.Context) (err error) {
	cfg := a.Config
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.Logger == nil {
		a.Logger = slog.New(slog.DiscardHandler)
	}
	if a.ModemWait == 0 {
		a.ModemWait = 15 * time.Second
	}

	if a.DB, err = openDatabase(ctx, cfg.Database, a.Now, a.component("store"), false); err != nil {
		return err
	}
	for _, m := range a.DB.Applied() {
		a.Logger.Info("applied migration", "migration", m.String())
	}
	// The SQLite file is locked to this process: other commands reach it
	// through the control socket. PostgreSQL takes their connections itself.
	// A service created through it is held to this gateway's settings, as
	// one created through the API is.
	if db, ok := a.DB.(*store.DB); ok {
		if a.control, err = openControl(controlSocketPath(cfg.Database.Path), db, a.verifyOptions().CheckService,
			a.component("control")); err != nil {
			return err
		}
	}
	secret, err := verifySecret(cfg, a.component("verify"))
	if err != nil {
		return err
	}
	a.Pool = modem.NewPool(a.poolOptions(secret))
	// The cluster wakes the dispatcher, made just after it, when another
	// node queues a message.
	if a.Cluster, err = cluster.New(cluster.Options{Store: sharedStore(a.DB), NodeID: cfg.Node.ID,
		Version: simgate.Version, Modems: a.Pool, Wake: func() { a.Queue.Wake() },
		Timeout: cfg.Queue.Lease, Now: a.Now, Logger: a.component("cluster")}); err != nil {
		return err
	}
	if a.Queue, err = queue.New(a.queueOptions(secret)); err != nil {
		return err
	}
	a.Metrics = metrics.New(metrics.Options{
		Modems: a.Pool, Queue: a.Queue, Store: a.DB, Now: a.Now, Logger: a.component("metrics"),
	})
	if a.Webhooks, err = webhook.New(a.webhookOptions()); err != nil {
		return err
	}
	if a.Sampler, err = console.NewSampler(console.SamplerOptions{
		Modems: a.Pool, Queue: a.Queue, Store: a.DB, Interval: console.SampleInterval, Logger: a.component("sampler"),
	}); err != nil {
		return err
	}
	vopts := a.verifyOptions()
	// Missed calls go to this node's own SIMs: a call reaches the node
	// that drives the SIM, which approves the verification in the shared
	// database.
	vopts.Secret, vopts.Now, vopts.Logger, vopts.Callees = secret, a.Now, a.component("verify"), a.Pool
	if a.Verify, err = verify.New(a.DB, a.Queue, vopts); err != nil {
		return err
	}
	mounts, err := a.mounts()
	if err != nil {
		return err
	}
	if a.API, err = api.NewServer(a.apiOptions(mounts)); err != nil {
		return err
	}

	// Who hears what the modems and the queue do.
	a.Queue.Observe(a.Metrics)
	a.Pool.ObserveSubmits(a.Metrics)
	a.Pool.ObserveStates(modemIdentities{db: a.DB, logger: a.Logger})
	a.Pool.ObserveStates(a.Webhooks)
	a.Pool.ObserveStates(modemsBack{queue: a.Queue, logger: a.Logger})

	if err := a.Webhooks.Open(ctx); err != nil {
		return err
	}
	// The modems connect in the background; give them a moment before the
	// dispatcher starts handing out work, so that the queue left by the last
	// run does not meet an empty pool. The dispatcher recovers what a crash
	// left in "sending" before it sends anything.
	if err := a.Pool.Open(ctx, modemConfigs(cfg.Modems)); err != nil {
		return err
	}
	if want := min(len(cfg.Modems), max(1, cfg.Pool.MinReadyModems)); want > 0 {
		wctx, cancel := context.WithTimeout(ctx, a.ModemWait)
		if err := a.Pool.WaitReady(wctx, want); err != nil {
			a.Logger.Warn("modems not ready yet; starting anyway", "ready", a.Pool.Ready(), "want", want)
		}
		cancel()
	}
	if err := a.Cluster.Open(ctx); err != nil {
		return err
	}
	if err := a.Queue.Open(ctx); err != nil {
		return err
	}
	if err := a.Sampler.Open(); err != nil {
		return err
	}
	if err := a.Verify.Open(); err != nil {
		return err
	}
	return a.API.Open()
}

// component returns the logger of one part of the gateway.
func (a *App) component(name string) *slog.Logger { return a.Logger.With("component", name) }

// poolOptions are the modems' settings from the configuration.
func (a *App) poolOptions(secret []byte) modem.PoolOptions {
	cfg := a.Config.Pool
	o := a.ModemOptions
	o.Logger = a.component("modem")
	o.CommandTimeout, o.USSDTimeout = cfg.CommandTimeout, cfg.USSDTimeout
	// PINs a SIM rejected are remembered by a fingerprint keyed with a key
	// derived from the verification secret, which is not in the database.
	o.PINs, o.PINKey = a.DB, derivedKey(secret, "simgate modem PIN fingerprints v1")
	o.MaxResetsPerDay, o.ProbeInterval = cfg.MaxResetsPerDay, cfg.ProbeInterval
	o.Now = a.Now
	o.Subscriber = modem.SubscriberFunc(a.handleModemEvent)
	return modem.PoolOptions{Options: o, Usage: a.DB}
}

// queueOptions are the dispatcher's settings from the configuration.
func (a *App) queueOptions(secret []byte) queue.Options {
	q := a.Config.Queue
	// On a database shared with other nodes, a node whose modems are all
	// out leaves the queue to the others, and a resend to the node of the
	// modem that sent the first code.
	var ready func() bool
	var elsewhere func() []string
	if sharedStore(a.DB) != nil {
		ready, elsewhere = a.Pool.CanSend, a.Cluster.Elsewhere
	}
	return queue.Options{
		Ready:         ready,
		Elsewhere:     elsewhere,
		Store:         a.DB,
		Sender:        a.Pool,
		Logger:        a.component("queue"),
		NodeID:        a.Config.Node.ID,
		Now:           a.Now,
		Workers:       max(1, len(a.Config.Modems)),
		MaxAttempts:   q.MaxAttempts,
		RetryBackoff:  q.RetryBackoff,
		MaxBackoff:    q.MaxBackoff,
		SweepInterval: q.SweepInterval,
		Lease:         q.Lease,
		ResendUnknown: q.ResendUnknown,
		ReportWindow:  q.ReportWindow,
		DefaultExpiry: q.DefaultExpiry,
		SealKey:       derivedKey(secret, "simgate queue seal key v1"),
	}
}

// webhookOptions are the webhook sender's settings from the configuration.
func (a *App) webhookOptions() webhook.Options {
	wh := a.Config.Webhooks
	interval := wh.Interval
	if a.WebhookInterval > 0 {
		interval = a.WebhookInterval
	}
	return webhook.Options{
		Store: a.DB, Endpoints: webhookEndpoints(wh), Timeout: wh.Timeout, MinBackoff: wh.MinBackoff, MaxBackoff: wh.MaxBackoff,
		RetryFor: wh.RetryFor, Retention: wh.Retention, Interval: interval,
		Now: a.Now, Logger: a.component("webhook"),
	}
}

// webhookEndpoints are the configured endpoints.
func webhookEndpoints(wh WebhooksConfig) []webhook.Endpoint {
	var eps []webhook.Endpoint
	for _, ep := range wh.Endpoints {
		eps = append(eps, webhook.Endpoint{Name: ep.Name, URL: ep.URL, Secret: []byte(ep.Secret), Events: ep.Events})
	}
	return eps
}

// verifyOptions are the verification service's settings from the
// configuration, without the secret (verifySecret finds it).
func verifyOptions(v VerifyConfig) verify.Options {
	return verify.Options{
		AppName: v.AppName, AppNames: v.AppNames,
		MinCodeLength: v.MinCodeLength, CodeLength: v.CodeLength, MaxTTL: v.MaxTTL, TTL: v.TTL,
		MaxChecks: v.MaxChecks, MaxSends: v.MaxSends, SendWindow: v.SendWindow, FailureCap: v.FailureCap,
		NotifyOwner: v.NotifyOwner, NotifyTemplate: v.NotifyTemplate,
		DefaultLocale: v.DefaultLocale, Templates: v.Templates,
		AllowedCountries: v.AllowedCountries,
		SweepInterval:    time.Minute,
	}
}

// verifyOptions are this gateway's verification settings (the package
// function's), with its country allow-list lifted as the API's is.
func (a *App) verifyOptions() verify.Options {
	o := verifyOptions(a.Config.Verify)
	o.AllowAllCountries = a.AllowAllCountries
	return o
}

// mounts are the handlers served beside the API: metrics and the console,
// when enabled.
func (a *App) mounts() ([]api.Mount, error) {
	cfg := a.Config
	var mounts []api.Mount
	if cfg.Metrics.Enabled {
		mounts = append(mounts, api.Mount{Prefix: "/metrics", Handler: bearer(cfg.Metrics.Token, a.Metrics.Handler())})
	}
	if cfg.Console.Enabled {
		var err error
		if a.Console, err = console.New(console.Options{
			Keys: a.DB, Sessions: a.DB, Modems: a.Cluster, Nodes: a.Cluster, Messages: a.Queue, Records: a.DB, History: a.DB,
			SessionTTL: cfg.Console.SessionTTL, Refresh: cfg.Console.Refresh,
			Now: a.Now, Logger: a.component("console"),
		}); err != nil {
			return nil, err
		}
		mounts = append(mounts, api.Mount{Prefix: "/console/", Handler: a.Console})
	}
	return mounts, nil
}

// apiOptions are the API's settings from the configuration.
func (a *App) apiOptions(mounts []api.Mount) api.Options {
	h, l, v := a.Config.HTTP, a.Config.Limits, a.Config.Verify
	return api.Options{
		Addr: h.Listen, TLSCertFile: h.TLSCert, TLSKeyFile: h.TLSKey,
		ReadHeaderTimeout: h.ReadHeaderTimeout, ReadTimeout: h.ReadTimeout, WriteTimeout: h.WriteTimeout,
		IdleTimeout: h.IdleTimeout, ShutdownTimeout: h.ShutdownTimeout,
		Keys: a.DB, Verify: a.Verify, Services: a.Verify, Messages: a.Queue, Inbox: a.DB, Modems: a.Cluster, Nodes: a.Cluster,
		Idempotency: a.DB, Alerts: a.DB, Budgets: a.DB, Buckets: sharedBuckets(a.DB), DB: a.DB, Webhooks: a.DB,
		RateLimits: a.Metrics, Mounts: mounts,
		MinReadyModems: a.Config.Pool.MinReadyModems,
		MaxExpiry:      a.Config.Queue.MaxExpiry,
		Numbers: simgate.NumberPolicy{
			DefaultRegion: v.DefaultRegion, AllowedCountries: v.AllowedCountries, AllowAllCountries: a.AllowAllCountries,
			AllowedNumberTypes: v.AllowedNumberTypes,
		},
		Limits: api.Limits{
			PerAPIKey:     api.Rate{PerSecond: l.PerAPIKey.Rate, Burst: l.PerAPIKey.Burst},
			PerIP:         api.Rate{PerSecond: l.PerIP.Rate, Burst: l.PerIP.Burst},
			PerNumber:     api.Rate{PerSecond: l.PerNumber.Rate, Burst: l.PerNumber.Burst},
			GlobalPerHour: l.GlobalPerHour, GlobalPerDay: l.GlobalPerDay,
			PrefixLength: v.PrefixVelocityLen, PrefixPerHour: v.PrefixVelocityHour,
		},
		Now:    a.Now,
		Logger: a.component("api"),
	}
}

// handleModemEvent hands a modem's status report, inbound SMS or late
// submit answer to the dispatcher, and records its balance readings (with
// the modem.balance_low event when one crosses the low mark) and calls; a
// call then goes to the missed-call verifications (verify.HandleCall). It
// runs on the modem's goroutine; an error keeps a stored message on the SIM
// for the next start.
func (a *App) handleModemEvent(ctx context.Context, ev modem.Event) error {
	switch ev.Kind {
	case modem.EventBalance:
		b := ev.Balance
		if err := a.DB.RecordBalance(ctx, b.ModemID, b.At, b.Amount, b.Text); err != nil {
			return err
		}
		if b.CrossedLow {
			a.Logger.Warn("SIM balance low", "modem", b.ModemID, "amount", *b.Amount)
			_, err := a.DB.RecordBalanceLow(ctx, map[string]any{"modem_id": b.ModemID, "amount": *b.Amount, "text": b.Text,
				"at": b.At.UTC().Format(time.RFC3339Nano)})
			return err
		}
		return nil
	case modem.EventCall:
		if err := a.DB.CreateInboundCall(ctx, ev.Call); err != nil {
			return err
		}
		// The call is recorded: a failure here is logged, not handed back
		// to the modem as a call not recorded.
		if _, err := a.Verify.HandleCall(ctx, ev.Call); err != nil {
			a.Logger.Error("cannot apply a call to missed-call verifications", "modem", ev.ModemID, "error", err)
		}
		return nil
	case modem.EventReport:
		return a.Queue.HandleReport(ctx, ev.Report)
	case modem.EventInbound:
		return a.Queue.HandleInbound(ctx, ev.Inbound)
	case modem.EventLateSubmit:
		return a.Queue.HandleLateSubmit(ctx, ev.Late)
	}
	return nil
}

// Reload applies a changed configuration without dropping queued messages:
// modems are added, removed or changed in place, and the TLS certificate is
// read again. Other changes need a restart; Reload says which.
func (a *App) Reload(ctx context.Context, cfg *Config) error {
	var errs []error
	if err := a.Pool.Reload(ctx, modemConfigs(cfg.Modems)); err != nil {
		errs = append(errs, fmt.Errorf("cannot reload modems: %w", err))
	} else {
		a.Queue.SetWorkers(max(1, len(cfg.Modems)))
		a.Config.Modems = cfg.Modems
	}
	if cfg.HTTP.TLSCert != "" {
		if err := a.API.ReloadCertificate(); err != nil {
			errs = append(errs, fmt.Errorf("cannot reload the TLS certificate: %w", err))
		}
	}
	var restart []string
	if cfg.Database != a.Config.Database {
		restart = append(restart, "database")
	}
	if cfg.Node != a.Config.Node {
		restart = append(restart, "node")
	}
	if cfg.HTTP.Listen != a.Config.HTTP.Listen || cfg.HTTP.TLSCert != a.Config.HTTP.TLSCert || cfg.HTTP.TLSKey != a.Config.HTTP.TLSKey {
		restart = append(restart, "http")
	}
	// The sections are compared by value, maps and slices by their contents.
	for _, sec := range []struct {
		name     string
		now, was any
	}{
		{"limits", cfg.Limits, a.Config.Limits}, {"verify", cfg.Verify, a.Config.Verify}, {"queue", cfg.Queue, a.Config.Queue},
		{"metrics", cfg.Metrics, a.Config.Metrics}, {"console", cfg.Console, a.Config.Console}, {"webhooks", cfg.Webhooks, a.Config.Webhooks},
	} {
		if !reflect.DeepEqual(sec.now, sec.was) {
			restart = append(restart, sec.name)
		}
	}
	if len(restart) > 0 {
		a.Logger.Warn("configuration changes that take effect only after a restart", "sections", strings.Join(restart, ", "))
	}
	return errors.Join(errs...)
}

// Close stops everything in order and is safe to call after a failed Open.
func (a *App) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()

	var errs []error
	if a.API != nil {
		errs = append(errs, a.API.Close())
	}
	if a.control != nil {
		errs = append(errs, a.control.close())
	}
	if a.Sampler != nil {
		errs = append(errs, a.Sampler.Close())
	}
	if a.Queue != nil {
		errs = append(errs, a.Queue.Close())
	}
	if a.Cluster != nil {
		errs = append(errs, a.Cluster.Close())
	}
	if a.Verify != nil {
		errs = append(errs, a.Verify.Close())
	}
	if a.Webhooks != nil {
		errs = append(errs, a.Webhooks.Close())
	}
	if a.Pool != nil {
		errs = append(errs, a.Pool.Close())
	}
	if a.DB != nil {
		errs = append(errs, a.DB.Close())
	}
	return errors.Join(errs...)
}

// Healthy reports whether the loops the watchdog vouches for work: the
// database takes a write and the dispatcher can read its queue.
func (a *App) Healthy(ctx context.Context) error {
	if err := a.DB.Ping(ctx); err != nil {
		return err
	}
	_, err := a.Queue.Stats(ctx)
	return err
}

// The real implementations fit the interfaces the parts declare.
var (
	_ modem.SubmitObserver  = (*metrics.Metrics)(nil)
	_ api.RateLimitObserver = (*metrics.Metrics)(nil)
	_ modem.StateObserver   = (*webhook.Sender)(nil)
	_ webhook.Store         = (*store.DB)(nil)
	_ metrics.StoreSource   = (*store.DB)(nil)
	_ metrics.QueueSource   = (*queue.Dispatcher)(nil)
	_ queue.Observer        = (*metrics.Metrics)(nil)
	_ metrics.ModemSource   = (*modem.Pool)(nil)
	_ api.WebhookService    = (*store.DB)(nil)
	_ console.Sessions      = (*store.DB)(nil)
	_ console.Keys          = (*store.DB)(nil)
	_ console.Records       = (*store.DB)(nil)
	_ console.History       = (*store.DB)(nil)
	_ console.SampleStore   = (*store.DB)(nil)
	_ console.ModemSource   = (*modem.Pool)(nil)
	_ console.QueueSource   = (*queue.Dispatcher)(nil)
	_ console.Messages      = (*queue.Dispatcher)(nil)
	_ console.Modems        = (*modem.Pool)(nil)
)

// modemIdentities records who a modem that comes up is, so that its
// history stays bound to its IMEI.
type modemIdentities struct {
	db     Store
	logger *slog.Logger
}

func (m modemIdentities) ModemStateChanged(ctx context.Context, s simgate.ModemStatus) {
	if s.State == simgate.ModemReady && s.Identity.IMEI != "" {
		if err := m.db.UpsertModem(ctx, s.ID, s.Identity); err != nil {
			m.logger.Warn("cannot record modem identity", "modem", s.ID, "error", err)
		}
	}
}

// modemsBack wakes the messages that wait for a modem when one becomes
// usable: they go now, not after their backoff.
type modemsBack struct {
	queue  *queue.Dispatcher
	logger *slog.Logger
}

func (m modemsBack) ModemStateChanged(ctx context.Context, s simgate.ModemStatus) {
	if s.State == simgate.ModemReady || s.State == simgate.ModemDegraded {
		if err := m.queue.ModemReady(ctx); err != nil {
			m.logger.Warn("cannot wake messages waiting for a modem", "modem", s.ID, "error", err)
		}
	}
}

// bearer requires "Authorization: Bearer <token>" when token is set.
func bearer(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="simgate metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// modemConfigs copies the modem entries of the configuration.
func modemConfigs(ms []ModemConfig) []modem.Config {
	out := make([]modem.Config, len(ms))
	for i, m := range ms {
		out[i] = modem.Config{
			Name: m.Name, Device: m.Device, IMEI: m.IMEI, ICCID: m.ICCID, Baud: m.Baud, PIN: m.PIN, SMSC: m.SMSC, Number: m.Number,
			SubmitTimeout: m.SubmitTimeout, Validity: m.Validity, Prefixes: m.Prefixes,
			PerMinute: m.PerMinute, PerHour: m.PerHour, PerDay: m.PerDay, Disabled: m.Disabled,
			IgnoreCalls: m.Calls == "ignore", ResetCommand: m.ResetCommand, USBReset: m.USBReset,
		}
		if b := m.Balance; b != nil {
			// validate compiled the pattern already.
			w := &modem.BalanceWatch{Code: b.USSD, Every: b.Every, Pattern: regexp.MustCompile(b.Pattern)}
			if b.Low != nil {
				w.Low, w.LowSet = *b.Low, true
			}
			out[i].Balance = w
		}
	}
	return out
}

// Where the verification secret comes from when verify.secret is empty.
const (
	verifySecretEnv        = "SIMGATE_VERIFY_SECRET"
	verifySecretCredential = "verify-secret" // LoadCredential=verify-secret:...
	verifySecretFile       = "simgate.secret"
)

// verifySecret returns the key for the code HMACs (and the keys derived from
// it), from the first of: verify.secret; $SIMGATE_VERIFY_SECRET (both at
// least 32 characters, used as they are); the systemd credential
// verify-secret, $CREDENTIALS_DIRECTORY/verify-secret (a hex key of at least
// 32 bytes; blank counts as not given, since the shipped unit sets a blank
// default with SetCredential= so that it starts without the file); else
// simgate.secret beside the database (the same form), created on first use
// with mode 0600.
//
// The key is kept out of the data directory when it can be: a copy of the
// database holds the HMACs of pending codes, and with the key a 6-digit code
// falls to a million HMACs, about a second. So the file beside the database
// comes with a warning at every start.
func verifySecret(cfg *Config, log *slog.Logger) ([]byte, error) {
	old := filepath.Join(filepath.Dir(cfg.Database.Path), verifySecretFile)
	source, key, err := func() (string, []byte, error) {
		if s := cfg.Verify.Secret; s != "" {
			if s == os.Getenv(verifySecretEnv) { // the shipped configuration: ${SIMGATE_VERIFY_SECRET:-}
				return verifySecretEnv, []byte(s), nil
			}
			return "verify.secret", []byte(s), nil
		}
		if s := os.Getenv(verifySecretEnv); s != "" {
			if len(s) < 32 {
				return "", nil, fmt.Errorf("%s must be at least 32 characters, got %d", verifySecretEnv, len(s))
			}
			return verifySecretEnv, []byte(s), nil
		}
		if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
			path := filepath.Join(dir, verifySecretCredential)
			key, err := readHexKey(path)
			if err == nil {
				return "credential " + verifySecretCredential, key, nil
			} else if !errors.Is(err, os.ErrNotExist) {
				return "", nil, err
			}
		}
		key, err := readHexKey(old)
		if _, serr := os.Stat(old); errors.Is(err, os.ErrNotExist) && errors.Is(serr, os.ErrNotExist) &&
			cfg.Database.Driver == driverPostgres {
			// A new file on each host would give each node its own key: a
			// code sent by one node would fail its check on another. One
			// copied to every host (from a SQLite install moved to
			// PostgreSQL) is used.
			err = fmt.Errorf("database.driver postgres: every node needs the same verification secret; give it in "+
				"%s, verify.secret or the systemd credential %s, or copy one host's %s to the others "+
				"(a new key per host would make codes fail on the other hosts)", verifySecretEnv, verifySecretCredential, old)
		} else if errors.Is(err, os.ErrNotExist) && errors.Is(serr, os.ErrNotExist) {
			key, err = createHexKey(old)
		} else if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%s is empty; remove it to make a new key (pending codes stop working)", old)
		}
		return old, key, err
	}()
	if err != nil {
		return nil, err
	}
	if source == old {
		log.Warn("the verification secret is kept beside the database, so a copy of the data directory holds "+
			"both the code hashes and their key and reveals pending codes; give the key in "+verifySecretEnv+
			" or as the systemd credential "+verifySecretCredential+" (see README, Operations)", "path", old)
		return key, nil
	}
	log.Info("verification secret loaded", "source", source)
	if _, err := os.Stat(old); err == nil {
		log.Warn("a verification secret file beside the database is not used (the key comes from "+source+
			"); remove it and its copies in backups once no pending code needs it", "path", old)
	}
	return key, nil
}

// readHexKey reads a hex key of at least 32 bytes from path. A missing or
// empty file is an os.ErrNotExist error.
func readHexKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("cannot read the verification secret: %w", err)
	}
	text := strings.TrimSpace(string(b))
	if text == "" {
		return nil, fmt.Errorf("%s is empty: %w", path, os.ErrNotExist)
	}
	key, err := hex.DecodeString(text)
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("%s is not a hex key of at least 32 bytes (make one with: openssl rand -hex 32); "+
			"a new key makes pending codes stop working", path)
	}
	return key, nil
}

// createHexKey writes a new random 32-byte key to path, hex-encoded, mode
// 0600; it fails when path exists.
func createHexKey(path string) ([]byte, error) {
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot create the verification secret: %w", err)
	}
	if _, err := fmt.Fprintln(f, hex.EncodeToString(key)); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write the verification secret: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write the verification secret: %w", err)
	}
	return key, f.Close()
}

// newLogger returns the slog logger the configuration asks for.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// derivedKey is a key for purpose derived from secret (HMAC-SHA256), so that
// one secret serves several uses without one use's key giving another's.
func derivedKey(secret []byte, purpose string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(purpose))
	return h.Sum(nil)
}
