package api

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/simgate/simgate"
)

// Rate is a token bucket: PerSecond tokens a second, up to Burst. The zero
// Rate means no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Limits are the API's rate limits and SMS budgets. Zero fields are off.
// Every limit on SMS counts parts (simgate.CountParts), not messages: a
// ten-part message takes ten SMS from each.
type Limits struct {
	PerAPIKey Rate // requests per API key
	PerIP     Rate // requests per client IP, before authentication
	// PerNumber is a token bucket of SMS per destination number, in
	// memory. A message of more parts than its Burst passes when the bucket
	// is full, and empties it.
	PerNumber Rate
	// GlobalPerHour and GlobalPerDay budget all SMS the API queues, in any
	// hour and any 24 hours (sliding windows counted in the BudgetStore, so
	// a restart keeps them).
	GlobalPerHour int
	GlobalPerDay  int
	// PrefixLength and PrefixPerHour limit SMS to numbers sharing their
	// first PrefixLength digits (country code included) in any hour, against
	// SMS pumping through a block of premium numbers. Counted like the
	// global budgets.
	PrefixLength  int
	PrefixPerHour int
	// MaxKeys bounds each per-key map (default 100 000); idle buckets are
	// dropped first.
	MaxKeys int
}

// The configuration keys of the limits, named in refusals so that an
// operator knows which one to raise. cmd/simgate reads them.
const (
	keyPerNumber     = "limits.per_number"
	keyGlobalPerHour = "limits.global_sms_per_hour"
	keyGlobalPerDay  = "limits.global_sms_per_day"
	keyPrefixPerHour = "verify.prefix_velocity_per_hour"
)

// BudgetStore counts the SMS the API admits in windows that outlast a
// restart. *store.DB satisfies it.
type BudgetStore interface {
	// TakeBudget counts n SMS now against every budget of bs, or, when n
	// more would take one over its Limit within its Window, against none;
	// it then returns that budget's refusal.
	TakeBudget(ctx context.Context, n int, bs []simgate.Budget) (*simgate.BudgetRefusal, error)
}

// BucketStore keeps the token buckets of the rate limits for every node
// sharing a database, so that a client's requests count once however they
// are spread over the nodes. *postgres.DB satisfies it.
type BucketStore interface {
	// TakeTokens takes n tokens (1 to burst) from the bucket of key, which
	// refills perSecond tokens a second up to burst, and returns 0; when
	// there are fewer, it takes none and returns how long until there are.
	TakeTokens(ctx context.Context, key string, perSecond float64, burst, n int) (time.Duration, error)
}

// rateLimiter is a token bucket per key: in memory (bucketMap), or in a
// BucketStore (sharedBuckets). A nil one limits nothing.
type rateLimiter interface {
	// allow takes n tokens (at most the burst: more would never fit) for
	// key at now. When there are not enough it returns how long until
	// there are, and first is true when this refusal is the first of the
	// last hour for key (to raise one alert, not one per request).
	allow(ctx context.Context, key string, now time.Time, n int) (ok bool, after time.Duration, first bool, err error)
}

// limiters holds every bucket and budget of the server.
type limiters struct {
	perKey, perIP, perNumber rateLimiter
	// hour, day and prefixHour are the budgets (Limit 0 when off).
	hour, day, prefixHour simgate.Budget
	prefixLen             int
	now                   simgate.Clock
	// alerted remembers when a prefix's refusal last raised an alert, to
	// spare the alert store a write per refusal.
	alertMu sync.Mutex
	alerted map[string]time.Time
	maxKeys int
}

// newLimiters makes the limits of l, their buckets in shared when it is
// not nil and in memory otherwise.
func newLimiters(l Limits, shared BucketStore, now simgate.Clock) *limiters {
	if l.MaxKeys <= 0 {
		l.MaxKeys = 100_000
	}
	ls := &limiters{now: now, prefixLen: l.PrefixLength, alerted: map[string]time.Time{}, maxKeys: l.MaxKeys}
	buckets := func(r Rate, kind string) rateLimiter {
		if r.PerSecond <= 0 || r.Burst <= 0 {
			return nil
		}
		if shared != nil {
			return &sharedBuckets{store: shared, kind: kind, r: r, ls: ls}
		}
		return newBucketMap(r, l.MaxKeys)
	}
	ls.perKey = buckets(l.PerAPIKey, "key")
	ls.perIP = buckets(l.PerIP, "ip")
	ls.perNumber = buckets(l.PerNumber, "number")
	if l.PrefixLength > 0 && l.PrefixPerHour > 0 {
		ls.prefixHour = simgate.Budget{Limit: l.PrefixPerHour, Window: time.Hour}
	}
	if l.GlobalPerHour > 0 {
		ls.hour = simgate.Budget{Key: "global:hour", Limit: l.GlobalPerHour, Window: time.Hour}
	}
	if l.GlobalPerDay > 0 {
		ls.day = simgate.Budget{Key: "global:day", Limit: l.GlobalPerDay, Window: 24 * time.Hour}
	}
	return ls
}

// budgeted reports whether any budget is on, which needs a BudgetStore.
func (ls *limiters) budgeted() bool {
	return ls.hour.Limit > 0 || ls.day.Limit > 0 || ls.prefixHour.Limit > 0
}

// firstAlert reports whether a refusal for subject now should raise an
// alert: the first of the last hour.
func (ls *limiters) firstAlert(subject string, now time.Time) bool {
	ls.alertMu.Lock()
	defer ls.alertMu.Unlock()
	if now.Sub(ls.alerted[subject]) < time.Hour {
		return false
	}
	if len(ls.alerted) >= ls.maxKeys {
		clear(ls.alerted)
	}
	ls.alerted[subject] = now
	return true
}

// allowSMS takes one SMS to number from the limits; see allowParts. The
// verification route calls it: the code's text is written after.
func (s *Server) allowSMS(ctx context.Context, number string) error {
	return s.allowParts(ctx, number, 1)
}

// allowMessage takes the SMS that text needs (simgate.CountParts) to
// number from the limits; see allowParts.
func (s *Server) allowMessage(ctx context.Context, number, text string) error {
	return s.allowParts(ctx, number, simgate.CountParts(text))
}

// allowCall takes one missed-call verification of number from the
// per-number limit, which also keeps a client from trying numbers fast. It
// sends no SMS, so the SMS budgets (per prefix, hourly, daily) are not
// taken.
func (s *Server) allowCall(ctx context.Context, number string) error {
	return s.allowNumber(ctx, number, 1, "missed-call verifications")
}

// allowNumber takes n of what (SMS, missed-call verifications) from the
// per-number limit; a refusal raises an alert, at most once an hour per
// number, and names the configuration key of the limit.
func (s *Server) allowNumber(ctx context.Context, number string, n int, what string) error {
	ok, after, first, err := allow(ctx, s.limits.perNumber, number, s.limits.now(), n)
	if err != nil {
		return err
	} else if !ok {
		if first {
			s.alert(ctx, simgate.AlertNumberVelocity, number, "per-number "+what+" rate exceeded")
		}
		return rateLimited(RulePerNumber, after, "too many "+what+" to this number ("+keyPerNumber+"); try again later")
	}
	return nil
}

// allowParts takes parts SMS to number from the limits: per number, then
// per prefix and global at once in the BudgetStore. A refusal raises an
// alert, at most once an hour per subject, and names the configuration key
// of the limit that refused.
func (s *Server) allowParts(ctx context.Context, number string, parts int) error {
	ls := s.limits
	now := ls.now()
	if err := s.allowNumber(ctx, number, parts, "SMS"); err != nil {
		return err
	}
	if !ls.budgeted() {
		return nil
	}
	var bs []simgate.Budget
	var rules []string
	prefix := ""
	if ls.prefixHour.Limit > 0 {
		digits := number[1:]
		prefix = "+" + digits[:min(len(digits), ls.prefixLen)]
		b := ls.prefixHour
		b.Key = "prefix:" + prefix
		bs, rules = append(bs, b), append(rules, RulePerPrefix)
	}
	if ls.hour.Limit > 0 {
		bs, rules = append(bs, ls.hour), append(rules, RuleGlobalHourly)
	}
	if ls.day.Limit > 0 {
		bs, rules = append(bs, ls.day), append(rules, RuleGlobalDaily)
	}
	if s.opts.Budgets == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "SMS budgets are not available")
	}
	r, err := s.opts.Budgets.TakeBudget(ctx, parts, bs)
	if err != nil {
		return err
	} else if r == nil {
		return nil
	}
	b, rule := bs[r.Index], rules[r.Index]
	var what, key, span string
	switch rule {
	case RulePerPrefix:
		what, key, span = "budget of %d SMS per hour to numbers starting "+prefix, keyPrefixPerHour, "hour"
		if ls.firstAlert(prefix, now) {
			s.alert(ctx, simgate.AlertPrefixVelocity, prefix, "prefix SMS velocity exceeded")
		}
	case RuleGlobalHourly:
		what, key, span = "global budget of %d SMS per hour", keyGlobalPerHour, "hour"
		s.alert(ctx, simgate.AlertGlobalBudget, "hourly", "global hourly SMS budget exhausted")
	default:
		what, key, span = "global budget of %d SMS per day", keyGlobalPerDay, "24 hours"
		s.alert(ctx, simgate.AlertGlobalBudget, "daily", "global daily SMS budget exhausted")
	}
	what = fmt.Sprintf(what, b.Limit)
	if parts > b.Limit {
		return rateLimited(rule, r.After, fmt.Sprintf("this message takes %d SMS, more than the %s (%s)", parts, what, key))
	}
	return rateLimited(rule, r.After, fmt.Sprintf("%s reached (%s): %d SMS counted in the last %s, this message takes %d; try again later",
		what, key, r.Counted, span, parts))
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

// newBucketMap returns the in-memory buckets of r, which must be on
// (PerSecond and Burst positive).
func newBucketMap(r Rate, maxKeys int) *bucketMap {
	return &bucketMap{r: r, max: maxKeys, m: map[string]*bucket{}}
}

// allow asks l for n tokens for key; a nil l limits nothing.
func allow(ctx context.Context, l rateLimiter, key string, now time.Time, n int) (ok bool, after time.Duration, first bool, err error) {
	if l == nil {
		return true, 0, false, nil
	}
	return l.allow(ctx, key, now, n)
}

// sharedBuckets are the buckets of one limit, kind, in a BucketStore,
// keyed "kind:key".
type sharedBuckets struct {
	store BucketStore
	kind  string
	r     Rate
	ls    *limiters // for firstAlert
}

func (sb *sharedBuckets) allow(ctx context.Context, key string, now time.Time, n int) (bool, time.Duration, bool, error) {
	after, err := sb.store.TakeTokens(ctx, sb.kind+":"+key, sb.r.PerSecond, sb.r.Burst, min(max(n, 1), sb.r.Burst))
	if err != nil {
		return false, 0, false, err
	}
	if after == 0 {
		return true, 0, false, nil
	}
	return false, after, sb.ls.firstAlert(sb.kind+":"+key, now), nil
}

func (bm *bucketMap) allow(_ context.Context, key string, now time.Time, n int) (ok bool, after time.Duration, first bool, err error) {
	bm.mu.Lock()
	defer bm.mu.Unlock()
	b := bm.m[key]
	if b == nil {
		bm.evict(now)
		b = &bucket{lim: rate.NewLimiter(rate.Limit(bm.r.PerSecond), bm.r.Burst)}
		bm.m[key] = b
	}
	take := min(max(n, 1), bm.r.Burst)
	r := b.lim.ReserveN(now, take)
	if d := r.DelayFrom(now); r.OK() && d == 0 {
		return true, 0, false, nil
	} else if r.OK() {
		after = d
		r.CancelAt(now)
	} else {
		after = time.Duration(math.MaxInt64)
	}
	if now.Sub(b.alerted) >= time.Hour {
		b.alerted, first = now, true
	}
	return false, after, first, nil
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
