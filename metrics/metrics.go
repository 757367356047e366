// Package metrics exposes simgate's state and activity to Prometheus, on a
// registry of its own (no global registry, no init-time registration).
//
// Most metrics are read at scrape time from the parts that own the state:
// the modem pool's snapshot, the queue's statistics and a few cheap store
// queries (message and verification counts kept by triggers). What cannot be
// read later is counted as it happens, through the hooks the other packages
// declare: the submit latency (modem.SubmitObserver), rate-limit
// rejections (api.RateLimitObserver), and the sent messages closed without a
// status report (queue.Observer). Those hooks only touch an atomic counter or
// histogram bucket, so the hot path stays cheap.
//
// No metric carries a phone number, a code or a key: labels are modem names,
// statuses, priorities, rule names and webhook endpoint names.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/simgate/simgate"
)

// ModemSource reports the modems. *modem.Pool satisfies it.
type ModemSource interface {
	Status() []simgate.ModemStatus
}

// QueueSource reports the queue's depth and status report matching.
// *queue.Dispatcher satisfies it.
type QueueSource interface {
	Stats(ctx context.Context) (simgate.QueueStats, error)
}

// StoreSource answers the queries metrics need. *store.DB satisfies it.
type StoreSource interface {
	// StatusCounts returns the messages and verifications by status.
	StatusCounts(ctx context.Context) (map[simgate.MessageStatus]int, map[simgate.VerificationStatus]int, error)
	// OldestQueued returns when the oldest queued message of each priority
	// was created.
	OldestQueued(ctx context.Context) (map[simgate.Priority]time.Time, error)
	// WebhookBacklog returns the pending deliveries per endpoint and the
	// events not yet fanned out.
	WebhookBacklog(ctx context.Context) (map[string]int, int, error)
}

// Options configure Metrics. Sources left nil are left out of the scrape.
type Options struct {
	Modems ModemSource
	Queue  QueueSource
	Store  StoreSource
	// ScrapeTimeout bounds the queries of one scrape (default 5 s).
	ScrapeTimeout time.Duration
	Now           simgate.Clock
	Logger        *slog.Logger
}

// Metrics is simgate's Prometheus registry and the hooks that feed it.
type Metrics struct {
	opts           Options
	reg            *prometheus.Registry
	submit         *prometheus.HistogramVec
	rateLimited    *prometheus.CounterVec
	reportsMissing prometheus.Counter
}

// SubmitBuckets are the bounds of the submit latency histogram, in seconds:
// real modems take 2-15 s for AT+CMGS, up to a minute on LTE.
var SubmitBuckets = []float64{0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120}

// New returns Metrics with simgate's collectors, and the Go runtime and
// process collectors, registered on a new registry.
func New(opts Options) *Metrics {
	if opts.ScrapeTimeout <= 0 {
		opts.ScrapeTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{opts: opts, reg: prometheus.NewRegistry()}
	m.submit = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "simgate", Name: "submit_duration_seconds",
		Help:    "Time a modem took to submit a message (AT+CMGS, all parts), by modem and result (ok, error).",
		Buckets: SubmitBuckets,
	}, []string{"modem", "result"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "simgate", Name: "rate_limited_total",
		Help: "Requests refused by a rate limit or budget, by rule.",
	}, []string{"rule"})
	m.reportsMissing = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "simgate", Name: "reports_missing_total",
		Help: "Sent messages closed because no status report came within the report window; they stay sent.",
	})
	m.reg.MustRegister(
		m.submit, m.rateLimited, m.reportsMissing, &state{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	bi := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "simgate", Name: "build_info", Help: "simgate's version.",
		ConstLabels: prometheus.Labels{"version": simgate.Version},
	})
	bi.Set(1)
	m.reg.MustRegister(bi)
	return m
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats. A source
// that fails leaves its metrics out of that scrape (and is logged) rather
// than failing the whole scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slogPrinter{m.opts.Logger},
		Registry:      m.reg, // promhttp_metric_handler_errors_total
	})
}

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Error("metrics scrape", "error", v) }

// ObserveSubmit records a submit's duration; it makes Metrics a
// modem.SubmitObserver.
func (m *Metrics) ObserveSubmit(modem string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.submit.WithLabelValues(modem, result).Observe(d.Seconds())
}

// RateLimited counts a refusal by rule; it makes Metrics an
// api.RateLimitObserver.
func (m *Metrics) RateLimited(rule string) {
	m.rateLimited.WithLabelValues(rule).Inc()
}

// ReportsMissing counts sent messages closed without a status report; it
// makes Metrics a queue.Observer.
func (m *Metrics) ReportsMissing(n int) {
	m.reportsMissing.Add(float64(n))
}

// Descriptions of the metrics read at scrape time.
var (
	descMessages      = desc("messages", "Messages in the database, by status.", "status")
	descVerifications = desc("verifications", "Verifications in the database, by status (outcome).", "status")
	descQueueDepth    = desc("queue_depth", "Messages not yet final, by status and priority.", "status", "priority")
	descQueueOldest   = desc("queue_oldest_age_seconds", "Age of the oldest queued message, by priority; 0 when none is queued.", "priority")
	descReports       = desc("status_reports_window", "Status reports received in the last 24 h, by whether they were matched to a message part.", "matched")
	descMatchRatio    = desc("status_report_match_ratio", "Share of the status reports of the last 24 h that were matched to a part (1 without reports).")
	descReportLatency = desc("status_report_latency_seconds", "Time from a part's submit to its final status report over the last 24 h, by quantile.", "quantile")
	descLateSubmits   = desc("late_submits_window", "+CMGS answers that came after their submit timed out, in the last 24 h, by whether they were matched to a message part.", "matched")
	descModemState    = desc("modem_state", "1 for the modem's current state, 0 for the others.", "modem", "state")
	descModemUp       = desc("modem_up", "1 when the modem takes sends (ready or degraded).", "modem")
	descSignal        = desc("modem_signal_dbm", "Received signal strength; absent while unknown.", "modem")
	descBars          = desc("modem_signal_bars", "Signal as 0-4 bars.", "modem")
	descRegistration  = desc("modem_registration", "1 for the modem's network registration state.", "modem", "registration")
	descResets        = desc("modem_resets_total", "Resets of a modem that stopped answering, by kind (soft: AT+CFUN=1,1 or the configured command; usb: USBDEVFS_RESET).", "modem", "kind")
	descBalance       = desc("sim_balance", "The SIM's balance, as last read by USSD; absent while unknown.", "modem")
	descSentToday     = desc("modem_sent_today", "SMS sent by the SIM today (parts, reserved sends included).", "modem")
	descDailyCap      = desc("modem_daily_cap", "The SIM's daily cap; 0 when it has none.", "modem")
	descCapRatio      = desc("modem_daily_cap_used_ratio", "Share of the SIM's daily cap used today; absent without a cap.", "modem")
	descModemSent     = desc("modem_sent_total", "SMS submitted by the modem since it was first seen in this process.", "modem")
	descModemFailed   = desc("modem_failed_total", "Submits that failed on the modem.", "modem")
	descModemReports  = desc("modem_reports_total", "Status reports received by the modem.", "modem")
	descModemInbound  = desc("modem_inbound_total", "SMS received by the modem.", "modem")
	descWebhookQueue  = desc("webhook_pending_deliveries", "Webhook deliveries not yet delivered nor given up, by endpoint.", "endpoint")
	descWebhookNew    = desc("webhook_undispatched_events", "Outbox events not yet fanned out to endpoints.")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("simgate_"+name, help, labels, nil)
}

var (
	messageStatuses = []simgate.MessageStatus{simgate.StatusScheduled, simgate.StatusAccepted, simgate.StatusQueued, simgate.StatusSending,
		simgate.StatusSent, simgate.StatusDelivered, simgate.StatusFailed, simgate.StatusExpired, simgate.StatusCanceled, simgate.StatusUnknown}
	verificationStatuses = []simgate.VerificationStatus{simgate.VerificationPending, simgate.VerificationApproved,
		simgate.VerificationCanceled, simgate.VerificationExpired, simgate.VerificationMaxAttemptsReached, simgate.VerificationFailed}
	activeStatuses = []simgate.MessageStatus{simgate.StatusScheduled, simgate.StatusAccepted, simgate.StatusQueued, simgate.StatusSending, simgate.StatusSent}
	priorities     = []simgate.Priority{simgate.PriorityLow, simgate.PriorityNormal, simgate.PriorityHigh, simgate.PriorityVerification}
	modemStates    = []simgate.ModemState{simgate.ModemStarting, simgate.ModemReady, simgate.ModemDegraded, simgate.ModemDown, simgate.ModemDisabled}
)

// state is the collector of everything read at scrape time.
type state struct{ m *Metrics }

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descVerifications, descQueueDepth, descQueueOldest, descReports,
		descMatchRatio, descReportLatency, descLateSubmits, descModemState, descModemUp, descSignal, descBars, descRegistration,
		descResets, descBalance, descSentToday, descDailyCap, descCapRatio, descModemSent, descModemFailed, descModemReports, descModemInbound,
		descWebhookQueue, descWebhookNew} {
		ch <- d
	}
}

func (s *state) Collect(ch chan<- prometheus.Metric) {
	o := s.m.opts
	ctx, cancel := context.WithTimeout(context.Background(), o.ScrapeTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}

	if o.Store != nil {
		if ms, vs, err := o.Store.StatusCounts(ctx); err != nil {
			ch <- prometheus.NewInvalidMetric(descMessages, err)
		} else {
			for _, st := range messageStatuses {
				gauge(descMessages, float64(ms[st]), string(st))
			}
			for _, st := range verificationStatuses {
				gauge(descVerifications, float64(vs[st]), string(st))
			}
		}
		if oldest, err := o.Store.OldestQueued(ctx); err != nil {
			ch <- prometheus.NewInvalidMetric(descQueueOldest, err)
		} else {
			now := o.Now()
			for _, p := range priorities {
				age := 0.0
				if at, ok := oldest[p]; ok {
					age = max(0, now.Sub(at).Seconds())
				}
				gauge(descQueueOldest, age, p.String())
			}
		}
		if pending, undispatched, err := o.Store.WebhookBacklog(ctx); err != nil {
			ch <- prometheus.NewInvalidMetric(descWebhookQueue, err)
		} else {
			for ep, n := range pending {
				gauge(descWebhookQueue, float64(n), ep)
			}
			gauge(descWebhookNew, float64(undispatched))
		}
	}

	if o.Queue != nil {
		if st, err := o.Queue.Stats(ctx); err != nil {
			ch <- prometheus.NewInvalidMetric(descQueueDepth, err)
		} else {
			for _, status := range activeStatuses {
				for _, p := range priorities {
					gauge(descQueueDepth, float64(st.Depth[status][p]), string(status), p.String())
				}
			}
			gauge(descReports, float64(st.MatchedReports), "true")
			gauge(descReports, float64(st.Reports-st.MatchedReports), "false")
			gauge(descMatchRatio, st.MatchRatio())
			gauge(descReportLatency, st.ReportLatencyP50.Seconds(), "0.5")
			gauge(descReportLatency, st.ReportLatencyP99.Seconds(), "0.99")
			gauge(descLateSubmits, float64(st.MatchedLateSubmits), "true")
			gauge(descLateSubmits, float64(st.LateSubmits-st.MatchedLateSubmits), "false")
		}
	}

	if o.Modems != nil {
		for _, ms := range o.Modems.Status() {
			id := ms.ID
			for _, st := range modemStates {
				gauge(descModemState, b2f(ms.State == st), id, string(st))
			}
			gauge(descModemUp, b2f(ms.State == simgate.ModemReady || ms.State == simgate.ModemDegraded), id)
			if ms.SignalDBm != 0 {
				gauge(descSignal, float64(ms.SignalDBm), id)
			}
			gauge(descBars, float64(ms.SignalBars), id)
			if ms.Registration != "" {
				gauge(descRegistration, 1, id, ms.Registration)
			}
			gauge(descSentToday, float64(ms.SentToday), id)
			gauge(descDailyCap, float64(ms.DailyCap), id)
			if ms.DailyCap > 0 {
				gauge(descCapRatio, float64(ms.SentToday)/float64(ms.DailyCap), id)
			}
			counter(descModemSent, float64(ms.Counters.Sent), id)
			counter(descModemFailed, float64(ms.Counters.Failed), id)
			counter(descModemReports, float64(ms.Counters.Reports), id)
			counter(descModemInbound, float64(ms.Counters.Inbound), id)
			counter(descResets, float64(ms.Counters.SoftResets), id, "soft")
			counter(descResets, float64(ms.Counters.USBResets), id, "usb")
			if b := ms.Balance; b != nil && b.Amount != nil {
				gauge(descBalance, *b.Amount, id)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
