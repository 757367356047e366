package api

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: PerSecond tokens a second, up to Burst. The zero
// Rate means no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Limits are the API's rate limits and SMS budgets. Zero fields are off.
type Limits struct {
	PerAPIKey Rate // requests per API key
	PerIP     Rate // requests per client IP, before authentication
	PerNumber Rate // SMS per destination number
	// GlobalPerHour and GlobalPerDay budget all SMS the API queues.
	GlobalPerHour int
	GlobalPerDay  int
	// PrefixLength and PrefixPerHour limit SMS to numbers sharing their
	// first PrefixLength digits (country code included), against SMS
	// pumping through a block of premium numbers.
	PrefixLength  int
	PrefixPerHour int
	// MaxKeys bounds each per-key map (default 100 000); idle buckets are
	// dropped first.
	MaxKeys int
}

// Alert kinds the API raises.
const (
	AlertNumberVelocity = "number.velocity"
	AlertPrefixVelocity = "prefix.velocity"
	AlertGlobalBudget   = "global.budget"
)

// limiters holds every bucket of the server.
type limiters struct {
	perKey, perIP, perNumber, perPrefix *bucketMap
	hour, day                           *rate.Limiter
	prefixLen                           int
	now                                 func() time.Time
}

func newLimiters(l Limits, now func() time.Time) *limiters {
	if l.MaxKeys <= 0 {
		l.MaxKeys = 100_000
	}
	ls := &limiters{now: now, prefixLen: l.PrefixLength}
	ls.perKey = newBucketMap(l.PerAPIKey, l.MaxKeys)
	ls.perIP = newBucketMap(l.PerIP, l.MaxKeys)
	ls.perNumber = newBucketMap(l.PerNumber, l.MaxKeys)
	if l.PrefixLength > 0 && l.PrefixPerHour > 0 {
		ls.perPrefix = newBucketMap(Rate{PerSecond: float64(l.PrefixPerHour) / 3600, Burst: l.PrefixPerHour}, l.MaxKeys)
	}
	if l.GlobalPerHour > 0 {
		ls.hour = rate.NewLimiter(rate.Limit(float64(l.GlobalPerHour)/3600), l.GlobalPerHour)
	}
	if l.GlobalPerDay > 0 {
		ls.day = rate.NewLimiter(rate.Limit(float64(l.GlobalPerDay)/86400), l.GlobalPerDay)
	}
	return ls
}

// sms takes one SMS from the budgets for number: per number, per prefix and
// global. A refusal raises an alert, at most once an hour per subject.
func (s *Server) allowSMS(ctx context.Context, number string) error {
	ls := s.limits
	now := ls.now()
	if ok, after, first := ls.perNumber.allow(number, now); !ok {
		if first {
			s.alert(ctx, AlertNumberVelocity, number, "per-number SMS rate exceeded")
		}
		return rateLimited(RulePerNumber, after, "too many SMS to this number; try again later")
	}
	if ls.perPrefix != nil {
		digits := number[1:]
		prefix := "+" + digits[:min(len(digits), ls.prefixLen)]
		if ok, after, first := ls.perPrefix.allow(prefix, now); !ok {
			if first {
				s.alert(ctx, AlertPrefixVelocity, prefix, "prefix SMS velocity exceeded")
			}
			return rateLimited(RulePerPrefix, after, "too many SMS to numbers starting "+prefix+"; try again later")
		}
	}
	for _, g := range []struct {
		lim  *rate.Limiter
		name string
		rule string
	}{{ls.hour, "hourly", RuleGlobalHourly}, {ls.day, "daily", RuleGlobalDaily}} {
		if g.lim == nil {
			continue
		}
		if r := g.lim.ReserveN(now, 1); !r.OK() || r.DelayFrom(now) > 0 {
			after := time.Hour
			if r.OK() {
				after = r.DelayFrom(now)
				r.CancelAt(now)
			}
			s.alert(ctx, AlertGlobalBudget, g.name, "global "+g.name+" SMS budget exhausted")
			return rateLimited(g.rule, after, "the "+g.name+" SMS budget is used up; try again later")
		}
	}
	return nil
}

// alert records an alert, at most once an hour per kind and subject (the
// store enforces the period; the bucket's own flag spares it most calls).
func (s *Server) alert(ctx context.Context, kind, subject, detail string) {
	s.log.Warn("alert", "kind", kind, "subject", subject, "detail", detail)
	if s.opts.Alerts == nil {
		return
	}
	if _, err := s.opts.Alerts.CreateAlertOnce(context.WithoutCancel(ctx), kind, subject, detail, time.Hour); err != nil {
		s.log.Error("cannot record alert", "kind", kind, "error", err)
	}
}

// bucketMap is a token bucket per key with bounded memory. A bucket left
// idle until it is full again is dropped, which loses nothing: a new bucket
// starts full too. When the map is still over its bound, arbitrary buckets
// go, which at worst forgives a client some of its debt.
type bucketMap struct {
	r     Rate
	max   int
	mu    sync.Mutex
	m     map[string]*bucket
	calls int
}

type bucket struct {
	lim     *rate.Limiter
	alerted time.Time
}

func newBucketMap(r Rate, maxKeys int) *bucketMap {
	if r.PerSecond <= 0 || r.Burst <= 0 {
		return nil
	}
	return &bucketMap{r: r, max: maxKeys, m: map[string]*bucket{}}
}

// allow takes a token for key at now. When there is none it returns how
// long until there is, and first is true when this refusal is the first of
// the last hour for key (to raise one alert, not one per request).
func (bm *bucketMap) allow(key string, now time.Time) (ok bool, after time.Duration, first bool) {
	if bm == nil {
		return true, 0, false
	}
	bm.mu.Lock()
	defer bm.mu.Unlock()
	b := bm.m[key]
	if b == nil {
		bm.evict(now)
		b = &bucket{lim: rate.NewLimiter(rate.Limit(bm.r.PerSecond), bm.r.Burst)}
		bm.m[key] = b
	}
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); r.OK() && d == 0 {
		return true, 0, false
	} else if r.OK() {
		after = d
		r.CancelAt(now)
	} else {
		after = time.Duration(math.MaxInt64)
	}
	if now.Sub(b.alerted) >= time.Hour {
		b.alerted, first = now, true
	}
	return false, after, first
}

// evict drops full buckets every so often and whenever the map is at its
// bound.
func (bm *bucketMap) evict(now time.Time) {
	bm.calls++
	if len(bm.m) < bm.max && bm.calls%1024 != 0 {
		return
	}
	for k, b := range bm.m {
		if b.lim.TokensAt(now) >= float64(bm.r.Burst) && now.Sub(b.alerted) >= time.Hour {
			delete(bm.m, k)
		}
	}
	for k := range bm.m {
		if len(bm.m) < bm.max {
			break
		}
		delete(bm.m, k)
	}
}

// len returns the number of buckets held, for tests.
func (bm *bucketMap) len() int {
	bm.mu.Lock()
	defer bm.mu.Unlock()
	return len(bm.m)
}
