package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/store/postgres"
	"github.com/simgate/simgate/store/postgres/pgtest"
)

var _ api.BucketStore = (*postgres.DB)(nil)

// Two servers on one PostgreSQL database, as two nodes: a client's
// requests count against one bucket of its API key however it spreads
// them over the nodes.
func TestRateLimitsSharedByNodes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	var urls []string
	var key string
	for i := range 2 {
		db, err := postgres.Open(ctx, dsn, postgres.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if i == 0 {
			var k *simgate.APIKey
			if key, k, err = api.NewAPIKey("spread", []simgate.Scope{simgate.ScopeRead}); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateAPIKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		s, err := api.NewServer(api.Options{Keys: db, Buckets: db, Now: clk.Now,
			Limits: api.Limits{PerAPIKey: api.Rate{PerSecond: 1, Burst: 3}}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s.Handler())
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	get := func(url string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url+"/v1/modems", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// No modems on these servers: 503 is a request the limit let through.
	for i, url := range []string{urls[0], urls[1], urls[0]} {
		if got := get(url); got != http.StatusServiceUnavailable {
			t.Fatalf("request %d: HTTP %d; want 503 (let through)", i+1, got)
		}
	}
	if got := get(urls[1]); got != http.StatusTooManyRequests {
		t.Fatalf("fourth request, on the other node: HTTP %d; want 429", got)
	}
}
