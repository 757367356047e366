package api

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestBudgetsCountParts: the budgets and limits count SMS, not messages. A
// budget of 30 SMS an hour admits three ten-part messages, not 25 (it let
// 255 SMS out before), across a restart, and the hour slides.
func TestBudgetsCountParts(t *testing.T) {
	ctx := context.Background()
	c := &testClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	start := func(t *testing.T, path string, l Limits) (*store.DB, *Server) {
		t.Helper()
		db, err := store.Open(ctx, path, store.Options{Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := NewServer(Options{Keys: db, Budgets: db, Alerts: db, Limits: l, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		return db, s
	}
	ten := strings.Repeat("a", 10*153)
	if got, want := simgate.CountParts(ten), 10; got != want {
		t.Fatalf("CountParts = %d, want %d", got, want)
	}
	wantRefused := func(t *testing.T, err error, rule, key string) {
		t.Helper()
		var re *simgate.RateLimitError
		if err == nil {
			t.Fatal("admitted, want refused")
		} else if !errors.As(err, &re) || re.Rule != rule {
			t.Fatalf("err = %v, want a %s refusal", err, rule)
		} else if !strings.Contains(err.Error(), "("+key+")") {
			t.Fatalf("err = %q does not name %s", err, key)
		}
	}

	t.Run("global", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "simgate.db")
		db, s := start(t, path, Limits{GlobalPerHour: 30})
		admitted := 0
		for i := range 25 {
			err := s.allowMessage(ctx, fmt.Sprintf("+4915123456%03d", i), ten)
			if err == nil {
				admitted++
				continue
			}
			wantRefused(t, err, RuleGlobalHourly, "limits.global_sms_per_hour")
		}
		if got, want := admitted, 3; got != want {
			t.Fatalf("admitted %d ten-part messages, want %d", got, want)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		c.Add(59 * time.Minute)
		_, s = start(t, path, Limits{GlobalPerHour: 30})
		wantRefused(t, s.allowMessage(ctx, "+4915123456999", "x"), RuleGlobalHourly, "limits.global_sms_per_hour")
		c.Add(2 * time.Minute)
		for i := range 3 {
			if err := s.allowMessage(ctx, fmt.Sprintf("+4915123457%03d", i), ten); err != nil {
				t.Fatalf("message %d after the hour: %v", i, err)
			}
		}
		wantRefused(t, s.allowMessage(ctx, "+4915123456999", "x"), RuleGlobalHourly, "limits.global_sms_per_hour")
	})
	t.Run("message over the budget", func(t *testing.T) {
		_, s := start(t, filepath.Join(t.TempDir(), "simgate.db"), Limits{GlobalPerDay: 5})
		wantRefused(t, s.allowMessage(ctx, "+4915123456001", ten), RuleGlobalDaily, "limits.global_sms_per_day")
		if err := s.allowMessage(ctx, "+4915123456001", strings.Repeat("a", 5*153)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("per prefix", func(t *testing.T) {
		_, s := start(t, filepath.Join(t.TempDir(), "simgate.db"), Limits{PrefixLength: 7, PrefixPerHour: 20})
		for i := range 2 {
			if err := s.allowMessage(ctx, fmt.Sprintf("+491512345600%d", i), ten); err != nil {
				t.Fatal(err)
			}
		}
		wantRefused(t, s.allowMessage(ctx, "+4915123456009", "x"), RulePerPrefix, "verify.prefix_velocity_per_hour")
		if err := s.allowMessage(ctx, "+4915223456009", ten); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("per number", func(t *testing.T) {
		_, s := start(t, filepath.Join(t.TempDir(), "simgate.db"), Limits{PerNumber: Rate{PerSecond: 0.1, Burst: 12}})
		if err := s.allowMessage(ctx, "+4915123456001", ten); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, s.allowMessage(ctx, "+4915123456001", ten), RulePerNumber, "limits.per_number")
		// A message longer than the burst passes on a full bucket.
		if err := s.allowMessage(ctx, "+4915123456002", strings.Repeat("a", 20*153)); err != nil {
			t.Fatal(err)
		}
	})
}
