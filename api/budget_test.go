package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
)

// TestBudgetsOutlastRestart: the global hourly budget is a window counted in
// the database, so a server started again over the same file still refuses,
// and an hour is an hour, not a bucket that refills as it goes.
func TestBudgetsOutlastRestart(t *testing.T) {
	limits := func(o *api.Options) { o.Limits.GlobalPerHour = 3 }
	e := newEnv(t, envOpts{api: limits})
	key := e.key(simgate.ScopeVerify)
	create := func(e *env, i int) resp {
		return e.do("POST", "/v1/verifications", key, map[string]any{"to": "+491512345678" + string(rune('0'+i))})
	}
	for i := range 2 {
		wantStatus(t, create(e, i), http.StatusCreated)
	}
	e.clock.Add(30 * time.Minute)
	wantStatus(t, create(e, 2), http.StatusCreated)
	r := create(e, 3)
	wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
	if got, want := r.json(t)["detail"].(string), "global budget of 3 SMS per hour reached (limits.global_sms_per_hour)"; !strings.HasPrefix(got, want) {
		t.Fatalf("detail = %q, want it to start %q", got, want)
	}
	e.ts.Close()
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}

	e = newEnv(t, envOpts{api: limits, dbPath: e.dbPath, clock: e.clock})
	wantStatus(t, create(e, 4), http.StatusTooManyRequests, "rate_limited")
	// 12:50: a token bucket of 3 an hour would have refilled two by now.
	e.clock.Add(20 * time.Minute)
	r = create(e, 4)
	wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
	// The two SMS of 12:00 leave the window at 13:01 (the window is counted
	// in minutes, and rounds up).
	if got, want := r.header.Get("Retry-After"), "660"; got != want {
		t.Fatalf("Retry-After = %q, want %q", got, want)
	}
	e.clock.Add(11 * time.Minute)
	wantStatus(t, create(e, 4), http.StatusCreated)
	wantStatus(t, create(e, 5), http.StatusCreated)
	// The SMS of 12:30 still counts until 13:31.
	wantStatus(t, create(e, 6), http.StatusTooManyRequests, "rate_limited")
	e.clock.Add(30 * time.Minute)
	wantStatus(t, create(e, 6), http.StatusCreated)
}

// TestBudgetsNeedStore: a server with a budget but nowhere to count it is
// refused rather than left unlimited.
func TestBudgetsNeedStore(t *testing.T) {
	e := newEnv(t, envOpts{})
	if _, err := api.NewServer(api.Options{Keys: e.db, Limits: api.Limits{GlobalPerDay: 10}}); err == nil {
		t.Fatal("NewServer with a budget and no BudgetStore succeeded")
	}
}

// TestBudgetsCountMessageParts: POST /v1/messages counts the SMS a text
// takes, not one per message: a budget of 30 an hour admits three ten-part
// messages, where it let 25 through before.
func TestBudgetsCountMessageParts(t *testing.T) {
	e := newEnv(t, envOpts{api: func(o *api.Options) { o.Limits.GlobalPerHour = 30 }})
	key := e.key(simgate.ScopeSend)
	long := strings.Repeat("ten parts of plain text. ", 61) // 1525 GSM-7 characters: 10 parts
	if got := simgate.CountParts(long); got != 10 {
		t.Fatalf("the text takes %d parts, want 10", got)
	}
	for i := range 3 {
		wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": "+491512345678" + string(rune('0'+i)), "text": long}), http.StatusCreated)
	}
	r := e.do("POST", "/v1/messages", key, map[string]any{"to": "+4915123456779", "text": long})
	wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
	wantStatus(t, e.do("POST", "/v1/messages", key, map[string]any{"to": "+4915123456779", "text": "one"}), http.StatusTooManyRequests, "rate_limited")
}
