package queue

import (
	"context"
	"time"
)

// scheduler keeps one timer armed for the earliest scheduled message until
// Close. When it fires, the scheduled messages that are due become queued
// (ReleaseScheduled) and workers are woken as for messages just
// accepted; then the timer is armed for the next. It is re-armed, besides,
// whenever rearm has a token: at Open (the first pass), when a message is
// scheduled before the time the timer is armed for (scheduled), and when a
// message is canceled (Cancel). Nothing polls: with no message scheduled,
// the timer is not armed at all.
//
// The timer only says when to look; the store decides what is due, by the
// clock (Options.Now), so a timer that fires early (the wall clock was set
// back) queues nothing and is armed again, and nothing goes out before its
// SendAt. A timer that would fire late because the wall clock was set
// forward is what the sweep (RunOnce) is the fallback for.
func (d *Dispatcher) scheduler() {
	defer d.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		d.setArmed(time.Time{})
		next, err := d.releaseDue(d.ctx)
		if err != nil {
			if d.ctx.Err() != nil {
				return
			}
			d.log.Error("cannot queue scheduled messages", "error", err)
			next = d.opts.Now().Add(time.Second)
		}
		var fired <-chan time.Time
		if !next.IsZero() {
			d.setArmed(next)
			t.Reset(next.Sub(d.opts.Now()))
			fired = t.C
		}
		select {
		case <-d.ctx.Done():
			t.Stop()
			return
		case <-d.rearm:
			t.Stop()
		case <-fired:
		}
	}
}

// releaseDue queues the scheduled messages that are due, wakes workers for
// them, and returns when the next scheduled message is due (zero: none is
// scheduled).
func (d *Dispatcher) releaseDue(ctx context.Context) (time.Time, error) {
	next, err := d.opts.Store.NextScheduled(ctx)
	if err != nil || next.IsZero() || next.After(d.opts.Now()) {
		return next, err
	}
	n, err := d.count(ctx, ReleaseScheduled)
	if err != nil {
		return time.Time{}, err
	}
	if n > 0 {
		d.mu.Lock()
		workers := d.opts.Workers
		d.mu.Unlock()
		d.log.Debug("scheduled messages are due", "count", n)
		d.wakeN(min(n, workers))
	}
	return d.opts.Store.NextScheduled(ctx)
}

// scheduled tells the scheduler that a message scheduled for at was stored.
// It re-arms the timer when at comes before the time the timer is armed
// for, or when the timer is not armed: the scheduler then looks for the
// earliest message again. The scheduler sets armedAt to zero before it
// looks, so a message stored while it looks, which it may not see, re-arms
// the timer too.
func (d *Dispatcher) scheduled(at time.Time) {
	d.mu.Lock()
	rearm := d.armedAt.IsZero() || at.Before(d.armedAt)
	d.mu.Unlock()
	if rearm {
		d.rescan()
	}
}

// rescan makes the scheduler look for the earliest scheduled message again.
func (d *Dispatcher) rescan() {
	select {
	case d.rearm <- struct{}{}:
	default: // a token is there already
	}
}

func (d *Dispatcher) setArmed(at time.Time) {
	d.mu.Lock()
	d.armedAt = at
	d.mu.Unlock()
}
