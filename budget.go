package simgate

import "time"

// Budget is a limit on the SMS counted under Key in any span of Window: a
// sliding window, not a token bucket, so that Limit is never exceeded within
// one Window however the SMS are spread.
type Budget struct {
	Key    string // what is counted, such as "global:hour" or "prefix:+4915"
	Limit  int
	Window time.Duration
}

// BudgetRefusal says which budget refused SMS and why.
type BudgetRefusal struct {
	Index   int           // of the budget in the list given
	Counted int           // SMS counted in its window
	After   time.Duration // until it has room again; Window when it never will
}

// BudgetBuckets is how many buckets a budget's window is cut into. A bucket
// is counted for a whole window after the one it starts, so a window covers
// between Window and Window*(1+1/BudgetBuckets) of time: a budget may refuse
// up to one bucket early, but never lets more than its Limit through in any
// span of Window.
const BudgetBuckets = 60

// BudgetSlot is the count of one bucket of a budget: the SMS counted from
// Bucket (unix milliseconds) for one bucket's length.
type BudgetSlot struct{ Bucket, Count int64 }

// Spans returns b's window and bucket length in milliseconds.
func (b Budget) Spans() (window, bucket int64) {
	window = max(b.Window.Milliseconds(), BudgetBuckets)
	return window, window / BudgetBuckets
}

// Refusal returns the refusal of n more SMS under b at now (unix
// milliseconds), given the buckets of its window oldest first, or nil when
// they fit. After is how long until the oldest buckets that must go have
// left the window; a whole Window when n alone is more than Limit.
func (b Budget) Refusal(now int64, n int, slots []BudgetSlot) *BudgetRefusal {
	total := 0
	for _, s := range slots {
		total += int(s.Count)
	}
	if total+n <= b.Limit {
		return nil
	}
	r := &BudgetRefusal{Counted: total, After: b.Window}
	if n > b.Limit {
		return r
	}
	w, g := b.Spans()
	left := total
	for _, s := range slots {
		left -= int(s.Count)
		if left+n <= b.Limit {
			r.After = time.Duration(s.Bucket+w+g-now) * time.Millisecond
			break
		}
	}
	return r
}
