package queue_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
)

// receiver is a fakeSender that notes when each text reached it, by the
// wall clock.
type receiver struct {
	fakeSender
	mu  sync.Mutex
	got map[string]time.Time
	ch  chan string
}

func newReceiver() *receiver {
	r := &receiver{got: map[string]time.Time{}, ch: make(chan string, 1000)}
	r.set(func(req simgate.SendRequest) (simgate.Receipt, error) {
		at := time.Now()
		r.mu.Lock()
		r.got[req.Text] = at
		r.mu.Unlock()
		r.ch <- req.Text
		return simgate.Receipt{ModemID: "m0", MRs: []int{1}, SentAt: at}, nil
	})
	return r
}

// wait waits for n sends, failing the test after d.
func (r *receiver) wait(t testing.TB, n int, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for range n {
		select {
		case <-r.ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %d sends; got %d", n, r.count())
		}
	}
}

func (r *receiver) at(text string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.got[text]
	return at, ok
}

// schedule enqueues a message to alice with text, to be sent at at.
func (e *env) schedule(text string, at time.Time) *simgate.Message {
	e.t.Helper()
	return e.enqueue(&simgate.Message{To: alice, Text: text, SendAt: at})
}

// Scheduled messages go out at their SendAt, never before, by the
// dispatcher's timer: no sweep runs (SweepInterval 0). They are scheduled
// 100-500 ms ahead in an order that makes later ones both earlier and later
// than the one the timer is armed for. The lateness (from SendAt to the
// Sender having the message) is logged; the bound asserted is only a
// generous one, since this is no benchmark (see BenchmarkScheduledLateness).
func TestScheduled_SentOnTime(t *testing.T) {
	e := newDBEnv(t)
	r := newReceiver()
	e.openQueue(queue.Options{Sender: r, Workers: 4})

	const n = 20
	sendAt := map[string]time.Time{}
	for i := range n {
		text := fmt.Sprintf("scheduled %d", i)
		sendAt[text] = time.Now().Add(100*time.Millisecond + time.Duration(i*7%n)*20*time.Millisecond)
		m := e.schedule(text, sendAt[text])
		if m.Status != simgate.StatusScheduled {
			t.Fatalf("%s: status %s, want scheduled", text, m.Status)
		}
	}
	r.wait(t, n, 10*time.Second)

	var late []time.Duration
	for text, at := range sendAt {
		got, _ := r.at(text)
		if got.Before(at) {
			t.Errorf("%s went out %v early", text, at.Sub(got))
		}
		late = append(late, got.Sub(at))
	}
	slices.Sort(late)
	t.Logf("lateness over %d scheduled messages: p50 %v, max %v", n, late[len(late)/2], late[len(late)-1])
	if max := late[len(late)-1]; max > time.Second {
		t.Errorf("a scheduled message went out %v late", max)
	}

	ms, _, err := e.q.ListMessages(e.ctx, simgate.MessageFilter{To: alice})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		m, err := e.q.Message(e.ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !hasEvent(m, simgate.StatusScheduled, "scheduled for") || !hasEvent(m, simgate.StatusQueued, queue.ReasonScheduledTimeReached) {
			t.Fatalf("%s: events %+v", m.Text, m.Events)
		}
	}
}

// A restart in between: scheduled messages survive closing the dispatcher
// and the store. One whose time came while simgate was stopped goes out at
// Open; one still ahead goes out at its time, by the timer armed at Open.
func TestScheduled_Restart(t *testing.T) {
	e := newDBEnv(t)
	r := newReceiver()
	q := e.openQueue(queue.Options{Sender: r})
	start := time.Now().Truncate(time.Millisecond)
	missed := e.schedule("missed while stopped", start.Add(100*time.Millisecond))
	ahead := e.schedule("still ahead", start.Add(400*time.Millisecond))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}

	time.Sleep(time.Until(start.Add(200 * time.Millisecond)))
	var err error
	if e.db, err = store.Open(e.ctx, e.dbPath, store.Options{Now: e.clk.Now}); err != nil {
		t.Fatal(err)
	}
	e.openQueue(queue.Options{Sender: r})
	r.wait(t, 2, 10*time.Second)
	if got, want := r.count(), 2; got != want {
		t.Fatalf("%d sends, want %d", got, want)
	}
	for _, m := range []*simgate.Message{missed, ahead} {
		got, _ := r.at(m.Text)
		if got.Before(m.SendAt) {
			t.Errorf("%s went out %v early", m.Text, m.SendAt.Sub(got))
		}
		t.Logf("%s: %v after its send_at", m.Text, got.Sub(m.SendAt))
		e.waitStatus(m.ID, simgate.StatusSent)
	}
}

// A canceled scheduled message never goes out, and the timer it was armed
// for is re-armed for the next one, which does.
func TestScheduled_Cancel(t *testing.T) {
	e := newDBEnv(t)
	r := newReceiver()
	q := e.openQueue(queue.Options{Sender: r})
	start := time.Now()
	canceled := e.schedule("canceled", start.Add(150*time.Millisecond))
	next := e.schedule("next", start.Add(300*time.Millisecond))
	if err := q.Cancel(e.ctx, canceled.ID); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1, 10*time.Second)
	time.Sleep(100 * time.Millisecond) // a send of the canceled one would be seen by now
	if _, ok := r.at(canceled.Text); ok || r.count() != 1 {
		t.Fatalf("%d sends; the canceled message went out: %v", r.count(), ok)
	}
	if got, _ := r.at(next.Text); got.Before(next.SendAt) {
		t.Fatalf("next went out %v early", next.SendAt.Sub(got))
	}
	m := e.waitStatus(canceled.ID, simgate.StatusCanceled)
	if got, want := m.Parts[0].Status, simgate.StatusCanceled; got != want {
		t.Fatalf("part %s, want %s", got, want)
	}
}

// A scheduled message whose expiry passes before it could be sent ends
// expired, found by the sweep, or by the scheduler at Open when simgate was
// stopped through both its send_at and its expiry. Nothing goes out.
func TestScheduled_Expires(t *testing.T) {
	e := newDBEnv(t)
	r := newReceiver()
	q := e.openQueue(queue.Options{Sender: r})
	now := e.clk.Now()
	swept := e.enqueue(&simgate.Message{To: alice, Text: "swept", SendAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)})
	atOpen := e.enqueue(&simgate.Message{To: bob, Text: "at open", SendAt: now.Add(4 * time.Hour), ExpiresAt: now.Add(5 * time.Hour)})

	e.clk.Advance(3 * time.Hour)
	if err := q.RunOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	m := e.waitStatus(swept.ID, simgate.StatusExpired)
	if !strings.Contains(m.Reason, "expired") {
		t.Fatalf("reason %q", m.Reason)
	}

	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(3 * time.Hour)
	e.openQueue(queue.Options{Sender: r})
	m = e.waitStatus(atOpen.ID, simgate.StatusExpired)
	if !strings.Contains(m.Reason, "scheduled for") {
		t.Fatalf("reason %q", m.Reason)
	}
	if got := r.count(); got != 0 {
		t.Fatalf("%d sends, want none", got)
	}
}

// The rules of SendAt, in Enqueue: the error names the field and says why.
func TestScheduled_Rules(t *testing.T) {
	e := newDBEnv(t)
	q := e.openQueue(queue.Options{Sender: newReceiver(), DefaultExpiry: 24 * time.Hour})
	now := e.clk.Now()
	for _, c := range []struct {
		name   string
		m      simgate.Message
		status simgate.MessageStatus // "" for an error
		errs   []string              // in the error
	}{
		{"ahead", simgate.Message{SendAt: now.Add(time.Hour)}, simgate.StatusScheduled, nil},
		{"now", simgate.Message{SendAt: now}, simgate.StatusQueued, nil},
		{"last minute means now", simgate.Message{SendAt: now.Add(-50 * time.Second)}, simgate.StatusQueued, nil},
		{"past", simgate.Message{SendAt: now.Add(-2 * time.Minute)}, "", []string{"send_at", "in the past"}},
		{"a year ahead", simgate.Message{SendAt: now.Add(364 * 24 * time.Hour)}, simgate.StatusScheduled, nil},
		{"over a year ahead", simgate.Message{SendAt: now.Add(366 * 24 * time.Hour)}, "", []string{"send_at", "365 days"}},
		{"after expiry", simgate.Message{SendAt: now.Add(2 * time.Hour), ExpiresAt: now.Add(time.Hour)}, "",
			[]string{"send_at", "expires_at", "would expire before"}},
		{"at expiry", simgate.Message{SendAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}, "",
			[]string{"send_at", "expires_at"}},
		{"verification", simgate.Message{SendAt: now.Add(time.Hour), VerificationID: "ver_1"}, "",
			[]string{"send_at", "verification"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := c.m
			m.To, m.Text = alice, c.name
			err := q.Enqueue(e.ctx, &m)
			if c.status == "" {
				if simgate.ErrorCode(err) != simgate.CodeInvalid {
					t.Fatalf("Enqueue = %v, want an invalid error", err)
				}
				for _, s := range c.errs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.Status, c.status; got != want {
				t.Fatalf("status %s, want %s", got, want)
			}
			// DefaultExpiry counts from SendAt when it is ahead.
			from := now
			if m.SendAt.After(now) {
				from = m.SendAt
			}
			if d := m.ExpiresAt.Sub(from); d < 24*time.Hour-time.Second || d > 24*time.Hour+time.Second {
				t.Fatalf("expires %v after %v, want 24h", d, from)
			}
		})
	}
}

// An idempotency key behaves as for other messages: the same request gives
// the stored scheduled message, another send_at is another request.
func TestScheduled_Idempotent(t *testing.T) {
	e := newDBEnv(t)
	q := e.openQueue(queue.Options{Sender: newReceiver()})
	at := e.clk.Now().Add(time.Hour)
	first := e.enqueue(&simgate.Message{To: alice, Text: "once", SendAt: at, IdempotencyKey: "k1"})
	again := &simgate.Message{To: alice, Text: "once", SendAt: at, IdempotencyKey: "k1"}
	if err := q.Enqueue(e.ctx, again); err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Status != simgate.StatusScheduled || !again.SendAt.Equal(first.SendAt) {
		t.Fatalf("retry gave %+v, want %s scheduled", again, first.ID)
	}
	other := &simgate.Message{To: alice, Text: "once", SendAt: at.Add(time.Minute), IdempotencyKey: "k1"}
	if err := q.Enqueue(e.ctx, other); simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("another send_at with the same key = %v, want a conflict", err)
	}
}

// BenchmarkScheduledLateness measures how late a scheduled message reaches
// the Sender after its SendAt, one message at a time, each scheduled 20 ms
// ahead, with the store's default synchronous=FULL (the release and the
// claim are two commits).
//
//	go test -run '^$' -bench ScheduledLateness -benchtime 200x ./queue/
func BenchmarkScheduledLateness(b *testing.B) {
	e := newDBEnv(b)
	r := newReceiver()
	e.openQueue(queue.Options{Sender: r, Workers: 1})
	var late []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		text := fmt.Sprintf("bench %d", i)
		at := time.Now().Add(20 * time.Millisecond)
		e.schedule(text, at)
		r.wait(b, 1, 10*time.Second)
		got, _ := r.at(text)
		late = append(late, got.Sub(at))
	}
	b.StopTimer()
	slices.Sort(late)
	b.ReportMetric(ms(late[len(late)/2]), "p50-late-ms")
	b.ReportMetric(ms(late[len(late)-1]), "max-late-ms")
}
