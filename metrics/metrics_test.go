package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/metrics"
)

type fakeStore struct{ err error }

func (f fakeStore) StatusCounts(context.Context) (map[simgate.MessageStatus]int, map[simgate.VerificationStatus]int, error) {
	return map[simgate.MessageStatus]int{simgate.StatusDelivered: 7}, map[simgate.VerificationStatus]int{simgate.VerificationApproved: 2}, f.err
}

func (f fakeStore) OldestQueued(context.Context) (map[simgate.Priority]time.Time, error) {
	return map[simgate.Priority]time.Time{simgate.PriorityHigh: time.Unix(1000, 0)}, nil
}

func (f fakeStore) WebhookBacklog(context.Context) (map[string]int, int, error) {
	return map[string]int{"ops": 3}, 1, nil
}

type fakeQueue struct{}

func (fakeQueue) Stats(context.Context) (simgate.QueueStats, error) {
	return simgate.QueueStats{Reports: 4, MatchedReports: 3, LateSubmits: 3, MatchedLateSubmits: 2}, nil
}

type fakeModems struct{}

func (fakeModems) Status() []simgate.ModemStatus {
	return []simgate.ModemStatus{{ID: "m0", State: simgate.ModemReady, SignalDBm: -71, SignalBars: 4, Registration: "home", SentToday: 5, DailyCap: 10}}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestScrape(t *testing.T) {
	m := metrics.New(metrics.Options{Store: fakeStore{}, Queue: fakeQueue{}, Modems: fakeModems{}, Now: func() time.Time { return time.Unix(1060, 0) }})
	m.ObserveSubmit("m0", 3*time.Second, nil)
	m.ObserveSubmit("m0", time.Second, errors.New("x"))
	m.RateLimited("per_number")
	m.ReportsMissing(2)
	m.ReportsMissing(1)
	out := scrape(t, m)
	for _, want := range []string{
		`simgate_messages{status="delivered"} 7`,
		`simgate_messages{status="failed"} 0`,
		`simgate_verifications{status="approved"} 2`,
		`simgate_queue_oldest_age_seconds{priority="high"} 60`,
		`simgate_queue_oldest_age_seconds{priority="low"} 0`,
		`simgate_webhook_pending_deliveries{endpoint="ops"} 3`,
		`simgate_modem_state{modem="m0",state="ready"} 1`,
		`simgate_modem_state{modem="m0",state="down"} 0`,
		`simgate_modem_signal_dbm{modem="m0"} -71`,
		`simgate_modem_registration{modem="m0",registration="home"} 1`,
		`simgate_modem_daily_cap_used_ratio{modem="m0"} 0.5`,
		`simgate_submit_duration_seconds_count{modem="m0",result="ok"} 1`,
		`simgate_submit_duration_seconds_count{modem="m0",result="error"} 1`,
		`simgate_rate_limited_total{rule="per_number"} 1`,
		`simgate_reports_missing_total 3`,
		`simgate_status_reports_window{matched="false"} 1`,
		`simgate_late_submits_window{matched="true"} 2`,
		`simgate_late_submits_window{matched="false"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

// A failing source leaves its metrics out; the rest is served.
func TestScrapeError(t *testing.T) {
	m := metrics.New(metrics.Options{Store: fakeStore{err: errors.New("disk on fire")}, Modems: fakeModems{}})
	out := scrape(t, m)
	if strings.Contains(out, "simgate_messages{") || !strings.Contains(out, `simgate_modem_up{modem="m0"} 1`) {
		t.Fatalf("scrape:\n%s", out)
	}
}
