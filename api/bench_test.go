package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/postgres"
	"github.com/simgate/simgate/store/postgres/pgtest"
	"github.com/simgate/simgate/verify"
)

// capture is the real dispatcher (not opened: nothing is sent) that also
// keeps the texts, as the handsets would receive them.
type capture struct {
	*queue.Dispatcher
	mu    sync.Mutex
	texts map[string]string // verification id -> text
}

func (c *capture) Prepare(m *simgate.Message) error {
	text := m.Text // Prepare seals a verification's text
	if err := c.Dispatcher.Prepare(m); err != nil {
		return err
	}
	c.mu.Lock()
	c.texts[m.VerificationID] = text
	c.mu.Unlock()
	return nil
}

type benchEnv struct {
	srv    *api.Server
	url    string
	key    string
	twilio api.TwilioCredential // a verify key for the Twilio surface
	client *http.Client
	q      *capture
}

// benchStore is what the benchmarks' server runs on: the store of either
// backend.
type benchStore interface {
	queue.Store
	verify.Store
	api.KeyStore
	api.IdempotencyStore
	api.AlertStore
	api.BudgetStore
	api.Pinger
	CreateAPIKey(ctx context.Context, k *simgate.APIKey) error
	Close() error
}

// benchStores are the backends the benchmarks run on: a real SQLite file
// with synchronous=FULL, and a new database on the PostgreSQL server
// SIMGATE_TEST_POSTGRES names (skipped without one; docs/BENCHMARKS.md says
// how to start a server that flushes its commits, as a real one does).
var benchStores = []struct {
	name string
	open func(b *testing.B) (benchStore, error)
}{
	{"sqlite", func(b *testing.B) (benchStore, error) {
		return store.Open(context.Background(), filepath.Join(b.TempDir(), "simgate.db"), store.Options{Synchronous: "FULL"})
	}},
	{"postgres", func(b *testing.B) (benchStore, error) {
		return postgres.Open(context.Background(), pgtest.NewDatabase(b), postgres.Options{})
	}},
}

// onBenchStores runs bench for each backend and number of clients, as
// sub-benchmarks named backend/clients=N.
func onBenchStores(b *testing.B, bench func(b *testing.B, open func(*testing.B) (benchStore, error), clients int)) {
	for _, st := range benchStores {
		for _, n := range clients {
			b.Run(fmt.Sprintf("%s/clients=%d", st.name, n), func(b *testing.B) { bench(b, st.open, n) })
		}
	}
}

// newBenchEnv runs the real server on a loopback listener over the store
// open opens (a new, empty one) and the real dispatcher, with the limits
// given (none by default).
func newBenchEnv(b *testing.B, open func(*testing.B) (benchStore, error), limits ...api.Limits) *benchEnv {
	ctx := context.Background()
	db, err := open(b)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	d, err := queue.New(queue.Options{Store: db, Sender: nil})
	if err != nil {
		b.Fatal(err)
	}
	q := &capture{Dispatcher: d, texts: map[string]string{}}
	vs, err := verify.New(db, q, verify.Options{Secret: []byte(strings.Repeat("s", 32)), MaxSends: 1000})
	if err != nil {
		b.Fatal(err)
	}
	opts := api.Options{Addr: "127.0.0.1:0", Keys: db, Verify: vs, Messages: q, Idempotency: db,
		Alerts: db, Budgets: db, DB: db, Numbers: simgate.NumberPolicy{AllowAllCountries: true}}
	for _, l := range limits {
		opts.Limits = l
	}
	srv, err := api.NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	key, k, _ := api.NewAPIKey("bench", []simgate.Scope{simgate.ScopeAdmin})
	if err := db.CreateAPIKey(ctx, k); err != nil {
		b.Fatal(err)
	}
	tw, tk, _ := api.NewTwilioKey("bench-twilio", []simgate.Scope{simgate.ScopeVerify}, false, time.Now())
	if err := db.CreateAPIKey(ctx, tk); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	return &benchEnv{srv: srv, url: "http://" + srv.Addr().String(), key: key, twilio: tw, client: client, q: q}
}

// postForm posts form to the Twilio surface's path as Twilio's clients do.
func (e *benchEnv) postForm(path string, form url.Values) (int, []byte, error) {
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(form.Encode()))
	req.SetBasicAuth(e.twilio.Username, e.twilio.Secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.send(req)
}

// BenchmarkTwilioCreateVerification is BenchmarkCreateVerification through
// the Twilio surface: a form, Basic credentials, and the answer with the
// verification's SMS (a read more than the JSON API's).
func BenchmarkTwilioCreateVerification(b *testing.B) {
	onBenchStores(b, func(b *testing.B, open func(*testing.B) (benchStore, error), clients int) {
		e := newBenchEnv(b, open)
		run(b, clients, func(i int) error {
			status, body, err := e.postForm("/v2/Services/"+simgate.DefaultServiceID+"/Verifications",
				url.Values{"To": {fmt.Sprintf("+49151%08d", i)}, "Channel": {"sms"}})
			if err == nil && status != http.StatusCreated {
				err = fmt.Errorf("status %d: %s", status, body)
			}
			return err
		})
	})
}

// BenchmarkTwilioCheckVerification is BenchmarkCheckVerification through
// the Twilio surface, by VerificationSid.
func BenchmarkTwilioCheckVerification(b *testing.B) {
	onBenchStores(b, func(b *testing.B, open func(*testing.B) (benchStore, error), clients int) {
		e := newBenchEnv(b, open)
		ids, codes := e.verifications(b)
		run(b, clients, func(i int) error {
			status, body, err := e.postForm("/v2/Services/"+simgate.DefaultServiceID+"/VerificationCheck",
				url.Values{"VerificationSid": {sidOf(b, ids[i])}, "Code": {codes[i]}})
			if err == nil && (status != http.StatusOK || !bytes.Contains(body, []byte(`"valid":true`))) {
				err = fmt.Errorf("status %d: %s", status, body)
			}
			return err
		})
	})
}

func (e *benchEnv) post(path, body string) (int, []byte, error) {
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	return e.send(req)
}

// send sends req and returns the response's status and body.
func (e *benchEnv) send(req *http.Request) (int, []byte, error) {
	res, err := e.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// verifications starts b.N verifications, each of a new number, and
// returns their ids and codes.
func (e *benchEnv) verifications(b *testing.B) (ids, codes []string) {
	ids, codes = make([]string, b.N), make([]string, b.N)
	for i := range b.N {
		status, body, err := e.post("/v1/verifications", fmt.Sprintf(`{"to":"+49151%08d"}`, i))
		if err != nil || status != http.StatusCreated {
			b.Fatalf("%d %s %v", status, body, err)
		}
		ids[i] = string(bytes.SplitN(bytes.SplitN(body, []byte(`"id":"`), 2)[1], []byte(`"`), 2)[0])
		codes[i] = codeRE.FindStringSubmatch(e.q.texts[ids[i]])[1]
	}
	return ids, codes
}

// run calls do b.N times from clients goroutines and reports throughput and
// latency percentiles.
func run(b *testing.B, clients int, do func(i int) error) {
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := do(i); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// clients are the concurrent HTTP clients of each benchmark.
var clients = []int{4, 8, 16, 32}

func BenchmarkCreateVerification(b *testing.B) {
	onBenchStores(b, benchCreate)
}

// BenchmarkCreateVerificationBudgets is BenchmarkCreateVerification with
// the global and per-prefix budgets on (never reached): each create also
// counts its SMS in the database.
func BenchmarkCreateVerificationBudgets(b *testing.B) {
	limits := api.Limits{GlobalPerHour: 1 << 30, GlobalPerDay: 1 << 30, PrefixLength: 7, PrefixPerHour: 1 << 30}
	onBenchStores(b, func(b *testing.B, open func(*testing.B) (benchStore, error), clients int) {
		e := newBenchEnv(b, open, limits)
		run(b, clients, func(i int) error {
			status, body, err := e.post("/v1/verifications", fmt.Sprintf(`{"to":"+49151%08d"}`, i))
			if err == nil && status != http.StatusCreated {
				err = fmt.Errorf("status %d: %s", status, body)
			}
			return err
		})
	})
}

func BenchmarkCheckVerification(b *testing.B) {
	onBenchStores(b, benchCheck)
}

func benchCreate(b *testing.B, open func(*testing.B) (benchStore, error), clients int) {
	e := newBenchEnv(b, open)
	run(b, clients, func(i int) error {
		status, body, err := e.post("/v1/verifications", fmt.Sprintf(`{"to":"+49151%08d"}`, i))
		if err == nil && status != http.StatusCreated {
			err = fmt.Errorf("status %d: %s", status, body)
		}
		return err
	})
}

func benchCheck(b *testing.B, open func(*testing.B) (benchStore, error), clients int) {
	e := newBenchEnv(b, open)
	ids, codes := e.verifications(b)
	run(b, clients, func(i int) error {
		status, body, err := e.post("/v1/verifications/check", fmt.Sprintf(`{"id":%q,"code":%q}`, ids[i], codes[i]))
		if err == nil && (status != http.StatusOK || !bytes.Contains(body, []byte(`"valid":true`))) {
			err = fmt.Errorf("status %d: %s", status, body)
		}
		return err
	})
}
