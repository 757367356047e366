package storetest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
)

// MessageStore is the contract of messages: the queue's store (queue.Store)
// with the simgate.MessageTx its rules run in, the modems' daily usage
// (modem.UsageStore), and the API's reads of received messages and
// opt-outs.
type MessageStore interface {
	UpdateMessages(ctx context.Context, fn func(simgate.MessageTx) error) error
	FindMessage(ctx context.Context, id string) (*simgate.Message, error)
	CountDue(ctx context.Context) (int, error)
	NextScheduled(ctx context.Context) (time.Time, error)
	ListMessages(ctx context.Context, f simgate.MessageFilter) ([]*simgate.Message, string, error)
	QueueStats(ctx context.Context, since time.Time) (simgate.QueueStats, error)
	CreateInboundMessage(ctx context.Context, m *simgate.InboundMessage) error
	ListInboundMessages(ctx context.Context, afterID int64, limit int) ([]*simgate.InboundMessage, error)
	SetOptOut(ctx context.Context, number, keyword string, out bool) error
	OptedOut(ctx context.Context, number string) (keyword string, ok bool, err error)
	LoadUsage(ctx context.Context, modemID, day string) (int, error)
}

// NewMessage returns a message to to with text and parts parts, without
// status: CreateMessage queues it.
func NewMessage(to, text string, parts int) *simgate.Message {
	return &simgate.Message{To: to, Text: text, Parts: make([]simgate.Part, parts)}
}

// CreateMessage stores m in a message transaction of its own, queued with
// its parts (unless m says otherwise), as a message starts.
func CreateMessage(ctx context.Context, db interface {
	UpdateMessages(ctx context.Context, fn func(simgate.MessageTx) error) error
}, m *simgate.Message) error {
	return db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		if m.Status == "" {
			m.Status, m.Reason = simgate.StatusQueued, "accepted"
		}
		for i := range m.Parts {
			if m.Parts[i].Status == "" {
				m.Parts[i].Status = simgate.StatusQueued
			}
		}
		return tx.InsertMessage(ctx, m, nil)
	})
}

// messageTxRig is a database with a clock and a way to run one message
// transaction that must succeed.
type messageTxRig struct {
	t     *testing.T
	store Store
	db    MessageStore
	clk   *Clock
}

func newMessageTxRig(t *testing.T, open Open) *messageTxRig {
	clk := NewClock()
	s := open(t, "messages", clk.Now)
	return &messageTxRig{t: t, store: s, db: as[MessageStore](t, s), clk: clk}
}

// verifications is the rig's database as a VerificationStore.
func (r *messageTxRig) verifications() VerificationStore { return as[VerificationStore](r.t, r.store) }

func (r *messageTxRig) update(fn func(tx simgate.MessageTx) error) {
	r.t.Helper()
	if err := r.db.UpdateMessages(testContext(r.t), fn); err != nil {
		r.t.Fatal(err)
	}
}

// find returns message id as stored.
func (r *messageTxRig) find(id string) *simgate.Message {
	r.t.Helper()
	m, err := r.db.FindMessage(testContext(r.t), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

// partStates lists the parts of m as "status/mr/modem".
func partStates(m *simgate.Message) string {
	var ps []string
	for _, p := range m.Parts {
		ps = append(ps, fmt.Sprintf("%s/%d/%s", p.Status, p.MR, p.ModemID))
	}
	return strings.Join(ps, ",")
}

// InsertMessage stores a message as it is given and refuses one that is
// incomplete; the reads find it; a function that fails stores nothing.
func MessageTxInsert(t *testing.T, open Open) {
	ctx := testContext(t)
	r := newMessageTxRig(t, open)
	now := r.clk.Now()
	m := &simgate.Message{To: "+15550000001", Text: "later", Priority: simgate.PriorityHigh, Status: simgate.StatusScheduled,
		Reason: "scheduled", SendAt: now.Add(time.Hour), NextAttemptAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour),
		APIKeyID: "", IdempotencyKey: "k1",
		Parts: []simgate.Part{{Status: simgate.StatusQueued}, {Status: simgate.StatusQueued}}}
	r.update(func(tx simgate.MessageTx) error { return tx.InsertMessage(ctx, m, []byte("hash")) })
	if m.ID == "" || !m.CreatedAt.Equal(now) || len(m.Parts) != 2 || m.Parts[1].Seq != 2 || m.Parts[1].MR != -1 || len(m.Events) != 1 {
		t.Fatalf("inserted %+v", m)
	}
	got := r.find(m.ID)
	if got.Status != simgate.StatusScheduled || got.Reason != "scheduled" || got.Priority != simgate.PriorityHigh ||
		!got.SendAt.Equal(m.SendAt) || !got.NextAttemptAt.Equal(m.NextAttemptAt) || !got.ExpiresAt.Equal(m.ExpiresAt) ||
		partStates(got) != "queued/-1/,queued/-1/" || len(got.Events) != 1 || got.Events[0].Status != simgate.StatusScheduled {
		t.Fatalf("stored %+v", got)
	}
	if n, err := r.db.CountDue(ctx); err != nil || n != 0 {
		t.Fatalf("CountDue = %d, %v; a scheduled message is not due", n, err)
	}
	r.update(func(tx simgate.MessageTx) error {
		st, err := tx.MessageState(ctx, m.ID)
		if err != nil || st.Status != simgate.StatusScheduled || st.To != m.To || !st.UpdatedAt.Equal(now) ||
			len(st.Parts) != 2 || st.Parts[0] != simgate.StatusQueued {
			t.Fatalf("state %+v, %v", st, err)
		}
		if _, err := tx.MessageState(ctx, "msg_nosuch"); simgate.ErrorCode(err) != simgate.CodeNotFound {
			t.Fatalf("state of no message: %v", err)
		}
		id, hash, err := tx.IdempotentMessage(ctx, "", "k1")
		if err != nil || id != m.ID || string(hash) != "hash" {
			t.Fatalf("by idempotency key: %q %q %v", id, hash, err)
		}
		if _, _, err := tx.IdempotentMessage(ctx, "", "k2"); simgate.ErrorCode(err) != simgate.CodeNotFound {
			t.Fatalf("unknown idempotency key: %v", err)
		}
		if found, err := tx.FindMessage(ctx, m.ID); err != nil || found.ID != m.ID {
			t.Fatalf("find in the transaction: %+v, %v", found, err)
		}
		return nil
	})

	for _, bad := range []*simgate.Message{
		{Text: "no recipient", Status: simgate.StatusQueued, Parts: []simgate.Part{{Status: simgate.StatusQueued}}},
		{To: "+15550000001", Text: "no status", Parts: []simgate.Part{{Status: simgate.StatusQueued}}},
		{To: "+15550000001", Text: "no part", Status: simgate.StatusQueued},
		{To: "+15550000001", Text: "a part without status", Status: simgate.StatusQueued, Parts: make([]simgate.Part, 1)},
	} {
		err := r.db.UpdateMessages(ctx, func(tx simgate.MessageTx) error { return tx.InsertMessage(ctx, bad, nil) })
		if simgate.ErrorCode(err) != simgate.CodeInvalid {
			t.Errorf("insert of %q: %v, want invalid", bad.Text, err)
		}
	}
	failed := NewMessage("+15550000002", "rolled back", 1)
	err := r.db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		failed.Status, failed.Parts[0].Status = simgate.StatusQueued, simgate.StatusQueued
		if err := tx.InsertMessage(ctx, failed, nil); err != nil {
			return err
		}
		return simgate.Errorf(simgate.CodeConflict, "no")
	})
	if simgate.ErrorCode(err) != simgate.CodeConflict {
		t.Fatalf("failed function: %v", err)
	}
	if _, err := r.db.FindMessage(ctx, failed.ID); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("message of a failed function: %v, want not found", err)
	}
	if err := r.db.SetOptOut(ctx, "+15550000003", "STOP", true); err != nil {
		t.Fatal(err)
	}
	r.update(func(tx simgate.MessageTx) error {
		if k, ok, err := tx.OptOut(ctx, "+15550000003"); err != nil || !ok || k != "STOP" {
			t.Fatalf("opt-out: %q %v %v", k, ok, err)
		}
		if _, ok, err := tx.OptOut(ctx, "+15550000001"); err != nil || ok {
			t.Fatalf("no opt-out: %v %v", ok, err)
		}
		return nil
	})
}

// The next due message comes by priority, due time and creation, with its
// verification; an attempt leases it, and ending or undoing the attempt
// drops the lease.
func MessageTxAttempts(t *testing.T, open Open) {
	ctx := testContext(t)
	r := newMessageTxRig(t, open)
	v := &simgate.Verification{To: "+15550000009", CodeLength: 6, MaxAttempts: 3, ExpiresAt: r.clk.Now().Add(10 * time.Minute)}
	StartVerification(t, r.verifications(), v, bytes.Repeat([]byte{1}, 32))
	later := NewMessage("+15550000001", "due later", 1)
	later.NextAttemptAt = r.clk.Now().Add(time.Minute)
	old := NewMessage("+15550000002", "normal, older", 1)
	low := NewMessage("+15550000003", "low", 1)
	low.Priority = simgate.PriorityLow
	code := NewMessage(v.To, "code", 1)
	code.Priority, code.VerificationID = simgate.PriorityVerification, v.ID
	young := NewMessage("+15550000004", "normal, younger", 2)
	for _, m := range []*simgate.Message{later, old, low, code, young} {
		if m.Priority == 0 {
			m.Priority = simgate.PriorityNormal
		}
		if err := CreateMessage(ctx, r.db, m); err != nil {
			t.Fatal(err)
		}
		r.clk.Advance(time.Millisecond)
	}
	var order []string
	for range 5 {
		r.update(func(tx simgate.MessageTx) error {
			u, err := tx.NextDueMessage(ctx, nil)
			if err != nil || u == nil {
				order = append(order, "none")
				return err
			}
			order = append(order, u.Text)
			if u.ID == code.ID && (u.VerificationStatus != simgate.VerificationPending || !u.VerificationExpiresAt.Equal(v.ExpiresAt)) {
				t.Fatalf("the code's verification: %+v", u)
			}
			if u.Status != simgate.StatusQueued || u.To == "" || u.CreatedAt.IsZero() {
				t.Fatalf("due %+v", u)
			}
			return tx.StartAttempt(ctx, u.ID, "attempt 1", "n1", tx.Now().Add(time.Minute))
		})
	}
	if got, want := strings.Join(order, "|"), "code|normal, older|normal, younger|low|none"; got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
	got := r.find(young.ID)
	if got.Status != simgate.StatusSending || got.Reason != "attempt 1" || got.Attempts != 1 || partStates(got) != "sending/-1/,sending/-1/" {
		t.Fatalf("after StartAttempt: %+v", got)
	}

	// n1's leases, and an expired one of n2's.
	r.update(func(tx simgate.MessageTx) error {
		return tx.StartAttempt(ctx, later.ID, "attempt 1", "n2", tx.Now().Add(-time.Millisecond))
	})
	// Renewing moves n1's four leases later, never earlier, and no one
	// else's.
	r.update(func(tx simgate.MessageTx) error {
		for _, c := range []struct {
			owner string
			until time.Duration
			want  int
		}{{"n1", time.Hour, 4}, {"n1", 2 * time.Minute, 0}, {"n3", time.Hour, 0}} {
			if n, err := tx.RenewLeases(ctx, c.owner, tx.Now().Add(c.until)); err != nil || n != c.want {
				t.Fatalf("RenewLeases(%q, +%v) = %d, %v; want %d", c.owner, c.until, n, err, c.want)
			}
		}
		return nil
	})
	r.clk.Advance(30 * time.Minute) // past n1's first leases, within the renewed ones
	r.update(func(tx simgate.MessageTx) error {
		for owner, want := range map[string]int{"n1": 5, "n3": 1, "": 1} {
			if ids, err := tx.LeasedMessages(ctx, owner); err != nil || len(ids) != want {
				t.Fatalf("leased for %q: %v, %v; want %d", owner, ids, err, want)
			}
		}
		if err := tx.UndoAttempt(ctx, later.ID); err != nil {
			return err
		}
		if err := tx.EndAttempt(ctx, young.ID, simgate.StatusSent, "submitted", "m0", time.Time{}); err != nil {
			return err
		}
		if err := tx.EndAttempt(ctx, young.ID, simgate.StatusSent, "again", "", time.Time{}); err != nil {
			return err
		}
		return tx.EndAttempt(ctx, low.ID, simgate.StatusQueued, "retry", "m1", r.clk.Now().Add(time.Hour))
	})
	if got := r.find(later.ID); got.Status != simgate.StatusQueued || got.Attempts != 0 || partStates(got) != "queued/-1/" {
		t.Fatalf("after UndoAttempt: %+v", got)
	}
	if got := r.find(young.ID); got.Status != simgate.StatusSent || got.Reason != "again" || got.ModemID != "m0" || !got.NextAttemptAt.IsZero() {
		t.Fatalf("after EndAttempt: %+v", got)
	}
	if got := r.find(low.ID); got.Status != simgate.StatusQueued || got.ModemID != "m1" || !got.NextAttemptAt.Equal(r.clk.Now().Add(time.Hour)) {
		t.Fatalf("after EndAttempt to retry: %+v", got)
	}
	r.update(func(tx simgate.MessageTx) error {
		if ids, err := tx.LeasedMessages(ctx, "n1"); err != nil || len(ids) != 2 {
			t.Fatalf("leased after the ends: %v, %v; want 2", ids, err)
		}
		if ids, err := tx.LeasedMessages(ctx, ""); err != nil || len(ids) != 0 {
			t.Fatalf("expired leases after the undo: %v, %v", ids, err)
		}
		return nil
	})

	// Events: the newest goes only when it has the status asked for.
	r.update(func(tx simgate.MessageTx) error {
		if err := tx.AddMessageEvent(ctx, old.ID, simgate.StatusSending, "attempt 2"); err != nil {
			return err
		}
		if err := tx.DeleteLastMessageEvent(ctx, old.ID, simgate.StatusQueued); err != nil {
			return err
		}
		return tx.SetMessageStatus(ctx, old.ID, simgate.StatusFailed, "refused")
	})
	got = r.find(old.ID)
	if n := len(got.Events); n != 2 || got.Events[1].Reason != "attempt 2" || got.Status != simgate.StatusFailed || got.Reason != "refused" {
		t.Fatalf("events %+v, status %s %q", got.Events, got.Status, got.Reason)
	}
	r.update(func(tx simgate.MessageTx) error { return tx.DeleteLastMessageEvent(ctx, old.ID, simgate.StatusSending) })
	if got := r.find(old.ID); len(got.Events) != 1 {
		t.Fatalf("events after the delete %+v", got.Events)
	}

	// The verification fails only while it is pending.
	r.update(func(tx simgate.MessageTx) error { return tx.FailPendingVerification(ctx, code.ID) })
	if got, _, err := r.verifications().GetVerification(ctx, v.ID); err != nil || got.Status != simgate.VerificationFailed {
		t.Fatalf("verification %+v, %v", got, err)
	}
	r.update(func(tx simgate.MessageTx) error { return tx.FailPendingVerification(ctx, old.ID) })
}

// MessageTxSticky checks that a resend knows the modem that sent its
// verification's earlier SMS (the newest such), and that the next due
// message passes over one whose modem is elsewhere.
func MessageTxSticky(t *testing.T, open Open) {
	ctx := testContext(t)
	r := newMessageTxRig(t, open)
	v := &simgate.Verification{To: "+15550000009", CodeLength: 6, MaxAttempts: 3, ExpiresAt: r.clk.Now().Add(10 * time.Minute)}
	StartVerification(t, r.verifications(), v, bytes.Repeat([]byte{1}, 32))
	var first *simgate.Message
	for i, modem := range []string{"mA", "mB"} {
		m := NewMessage(v.To, fmt.Sprintf("code %d", i+1), 1)
		m.Priority, m.VerificationID = simgate.PriorityVerification, v.ID
		if err := CreateMessage(ctx, r.db, m); err != nil {
			t.Fatal(err)
		}
		r.update(func(tx simgate.MessageTx) error {
			u, err := tx.NextDueMessage(ctx, nil)
			if err != nil || u == nil || u.ID != m.ID {
				t.Fatalf("due %+v, %v; want %s", u, err, m.ID)
			}
			if want := map[int]string{0: "", 1: "mA"}[i]; u.StickyModem != want {
				t.Fatalf("code %d: sticky modem %q; want %q", i+1, u.StickyModem, want)
			}
			if err := tx.StartAttempt(ctx, m.ID, "attempt 1", "n1", tx.Now().Add(time.Minute)); err != nil {
				return err
			}
			return tx.EndAttempt(ctx, m.ID, simgate.StatusSent, "submitted", modem, time.Time{})
		})
		r.clk.Advance(time.Millisecond)
		if i == 0 {
			first = m
		}
	}
	resend := NewMessage(v.To, "code 3", 1)
	resend.Priority, resend.VerificationID = simgate.PriorityVerification, v.ID
	other := NewMessage("+15550000001", "plain", 1)
	other.Priority = simgate.PriorityNormal
	for _, m := range []*simgate.Message{resend, other} {
		if err := CreateMessage(ctx, r.db, m); err != nil {
			t.Fatal(err)
		}
	}
	r.update(func(tx simgate.MessageTx) error {
		for _, c := range []struct {
			elsewhere []string
			want      string
		}{{nil, resend.ID}, {[]string{"mA"}, resend.ID}, {[]string{"mB"}, other.ID}, {[]string{"mX", "mB"}, other.ID}} {
			u, err := tx.NextDueMessage(ctx, c.elsewhere)
			if err != nil || u == nil || u.ID != c.want {
				t.Fatalf("elsewhere %q: due %+v, %v; want %s", c.elsewhere, u, err, c.want)
			}
			if u.ID == resend.ID && u.StickyModem != "mB" {
				t.Fatalf("the resend's sticky modem %q; want mB, the newest earlier SMS's (not %s's mA)", u.StickyModem, first.ID)
			}
		}
		return nil
	})
}

// Parts change in number, by range, when sent and when reported.
func MessageTxParts(t *testing.T, open Open) {
	ctx := testContext(t)
	r := newMessageTxRig(t, open)
	m := NewMessage("+15550000001", "parts", 2)
	if err := CreateMessage(ctx, r.db, m); err != nil {
		t.Fatal(err)
	}
	at := r.clk.Now().Add(-time.Second)
	r.update(func(tx simgate.MessageTx) error {
		if err := tx.SetPartCount(ctx, m.ID, 4, simgate.StatusSending, 1); err != nil {
			return err
		}
		if err := tx.SetPartCount(ctx, m.ID, 3, simgate.StatusSending, 1); err != nil {
			return err
		}
		return tx.SetPartSent(ctx, m.ID, 1, "m0", 7, at)
	})
	got := r.find(m.ID)
	if partStates(got) != "sent/7/m0,queued/-1/,sending/-1/" || !got.Parts[0].SubmittedAt.Equal(at) {
		t.Fatalf("parts %s %+v", partStates(got), got.Parts)
	}
	r.update(func(tx simgate.MessageTx) error {
		if err := tx.SetPartsStatus(ctx, m.ID, 2, 2, simgate.StatusUnknown, "m0", tx.Now()); err != nil {
			return err
		}
		return tx.SetPartsStatus(ctx, m.ID, 3, 0, simgate.StatusFailed, "", time.Time{})
	})
	got = r.find(m.ID)
	if partStates(got) != "sent/7/m0,unknown/-1/m0,failed/-1/" || !got.Parts[1].DoneAt.Equal(r.clk.Now()) || !got.Parts[2].DoneAt.IsZero() {
		t.Fatalf("parts %s %+v", partStates(got), got.Parts)
	}
	r.update(func(tx simgate.MessageTx) error {
		if err := tx.SetPartsStatus(ctx, m.ID, 2, 0, simgate.StatusQueued, "", time.Time{}); err != nil {
			return err
		}
		return tx.SetPartReport(ctx, m.ID, 1, 0x21, "", time.Time{})
	})
	got = r.find(m.ID)
	if partStates(got) != "sent/7/m0,queued/-1/m0,queued/-1/" || got.Parts[0].ReportStatus != 0x21 || !got.Parts[1].DoneAt.IsZero() {
		t.Fatalf("parts %s %+v", partStates(got), got.Parts)
	}
	done := r.clk.Now().Add(-time.Minute)
	r.update(func(tx simgate.MessageTx) error {
		return tx.SetPartReport(ctx, m.ID, 1, 0, simgate.StatusDelivered, done)
	})
	got = r.find(m.ID)
	if got.Parts[0].Status != simgate.StatusDelivered || got.Parts[0].ReportStatus != 0 || !got.Parts[0].DoneAt.Equal(done) {
		t.Fatalf("reported part %+v", got.Parts[0])
	}
	r.update(func(tx simgate.MessageTx) error {
		st, err := tx.MessageState(ctx, m.ID)
		if err != nil || fmt.Sprint(st.Parts) != "[delivered queued queued]" {
			t.Fatalf("state %+v, %v", st, err)
		}
		return tx.AddUsage(ctx, "m0", at, 3)
	})
	if n, err := r.db.LoadUsage(ctx, "m0", at.UTC().Format("2006-01-02")); err != nil || n != 3 {
		t.Fatalf("usage %d, %v", n, err)
	}
}

// The writes on many queued messages at once: the wait for a modem and its
// end, the release of scheduled messages; and the reads of messages that
// expired and of sent ones whose reports are missing.
func MessageTxQueue(t *testing.T, open Open) {
	ctx := testContext(t)
	r := newMessageTxRig(t, open)
	now := r.clk.Now()
	waiting, due := NewMessage("+15550000001", "waits already", 1), NewMessage("+15550000002", "due", 1)
	notDue := NewMessage("+15550000003", "not due", 1)
	notDue.NextAttemptAt = now.Add(time.Hour)
	expired := NewMessage("+15550000004", "expired", 1)
	expired.ExpiresAt = now.Add(time.Minute)
	scheduled := NewMessage("+15550000005", "scheduled", 1)
	scheduled.Status, scheduled.SendAt, scheduled.NextAttemptAt = simgate.StatusScheduled, now.Add(time.Minute), now.Add(time.Minute)
	for _, m := range []*simgate.Message{waiting, notDue, expired, scheduled} {
		if err := CreateMessage(ctx, r.db, m); err != nil {
			t.Fatal(err)
		}
	}
	r.update(func(tx simgate.MessageTx) error {
		if err := tx.SetPartsStatus(ctx, expired.ID, 1, 0, simgate.StatusExpired, "", tx.Now()); err != nil {
			return err
		}
		if err := tx.SetMessageStatus(ctx, expired.ID, simgate.StatusSent, "as if sent"); err != nil {
			return err
		}
		return tx.DelayDueMessages(ctx, tx.Now(), "waiting for a modem: first")
	})
	if err := CreateMessage(ctx, r.db, due); err != nil {
		t.Fatal(err)
	}
	r.update(func(tx simgate.MessageTx) error {
		return tx.DelayDueMessages(ctx, tx.Now().Add(time.Second), "waiting for a modem: second")
	})
	if got := r.find(waiting.ID); len(got.Events) != 2 || got.Events[1].Reason != "waiting for a modem: first" ||
		got.Reason != "waiting for a modem: second" || !got.NextAttemptAt.Equal(now.Add(time.Second)) {
		t.Fatalf("waiting: %+v", got)
	}
	if got := r.find(due.ID); len(got.Events) != 2 || got.Events[1].Reason != "waiting for a modem: second" {
		t.Fatalf("due: %+v", got)
	}
	if got := r.find(notDue.ID); len(got.Events) != 1 || !got.NextAttemptAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("not due: %+v", got)
	}
	r.update(func(tx simgate.MessageTx) error {
		n, err := tx.WakeWaitingMessages(ctx)
		if err != nil || n != 2 {
			t.Fatalf("woke %d, %v; want 2", n, err)
		}
		u, err := tx.NextDueMessage(ctx, nil)
		if err != nil || u == nil || u.WaitingForModem != "waiting for a modem: second" {
			t.Fatalf("a waiting message: %+v, %v", u, err)
		}
		// One that a modem took waits no longer.
		return tx.EndAttempt(ctx, due.ID, simgate.StatusQueued, "retry", "", now.Add(time.Second))
	})
	r.update(func(tx simgate.MessageTx) error {
		if n, err := tx.WakeWaitingMessages(ctx); err != nil || n != 0 {
			t.Fatalf("woke %d again, %v", n, err)
		}
		return nil
	})

	r.clk.Advance(time.Minute)
	if next, err := r.db.NextScheduled(ctx); err != nil || !next.Equal(scheduled.SendAt) {
		t.Fatalf("NextScheduled = %v, %v", next, err)
	}
	r.update(func(tx simgate.MessageTx) error {
		us, err := tx.DueScheduledMessages(ctx)
		if err != nil || len(us) != 1 || us[0].ID != scheduled.ID || !us[0].SendAt.Equal(scheduled.SendAt) {
			t.Fatalf("due scheduled %+v, %v", us, err)
		}
		if us, err := tx.ExpiredUnsentMessages(ctx); err != nil || len(us) != 0 {
			t.Fatalf("expired: %+v, %v; a sent one is not unsent", us, err)
		}
		n, err := tx.QueueDueScheduled(ctx, "its time came")
		if err != nil || n != 1 {
			t.Fatalf("queued %d, %v", n, err)
		}
		return nil
	})
	if got := r.find(scheduled.ID); got.Status != simgate.StatusQueued || got.Reason != "its time came" ||
		got.Events[len(got.Events)-1].Reason != "its time came" {
		t.Fatalf("released %+v", got)
	}
	if next, err := r.db.NextScheduled(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextScheduled = %v, %v; want none", next, err)
	}
	r.update(func(tx simgate.MessageTx) error {
		return tx.SetMessageStatus(ctx, expired.ID, simgate.StatusQueued, "back")
	})
	r.update(func(tx simgate.MessageTx) error {
		us, err := tx.ExpiredUnsentMessages(ctx)
		if err != nil || len(us) != 1 || us[0].ID != expired.ID || !us[0].ExpiresAt.Equal(expired.ExpiresAt) {
			t.Fatalf("expired: %+v, %v", us, err)
		}
		return tx.EndAttempt(ctx, expired.ID, simgate.StatusSent, "sent", "m0", time.Time{})
	})

	// Sent at 12:01, its part in sent submitted at 12:01:30; asked at 12:02.
	partAt := r.clk.Now().Add(30 * time.Second)
	r.update(func(tx simgate.MessageTx) error { return tx.SetPartSent(ctx, expired.ID, 1, "m0", 1, partAt) })
	r.clk.Advance(time.Minute)
	r.update(func(tx simgate.MessageTx) error {
		if ids, err := tx.SentMessagesSubmittedBefore(ctx, partAt.Add(-31*time.Second), 10); err != nil || len(ids) != 0 {
			t.Fatalf("sent and changed since: %v, %v", ids, err)
		}
		if ids, err := tx.SentMessagesSubmittedBefore(ctx, partAt.Add(-time.Second), 10); err != nil || len(ids) != 0 {
			t.Fatalf("a part submitted since: %v, %v", ids, err)
		}
		ids, err := tx.SentMessagesSubmittedBefore(ctx, tx.Now(), 10)
		if err != nil || len(ids) != 1 || ids[0] != expired.ID {
			t.Fatalf("sent before 12:02: %v, %v", ids, err)
		}
		return tx.SetReportsMissing(ctx, expired.ID, "no report")
	})
	r.update(func(tx simgate.MessageTx) error {
		if ids, err := tx.SentMessagesSubmittedBefore(ctx, tx.Now(), 10); err != nil || len(ids) != 0 {
			t.Fatalf("closed twice: %v, %v", ids, err)
		}
		return nil
	})
	st, err := r.db.QueueStats(ctx, now)
	if err != nil || st.Depth[simgate.StatusSent][simgate.PriorityNormal] != 0 {
		t.Fatalf("depth %+v, %v; a message whose reports are missing is out of it", st.Depth, err)
	}
}

// Status reports and late submit answers: stored, found by part, matched
// later.
func MessageTxReports(t *testing.T, open Open) {
	ctx := testContext(t)
	r := newMessageTxRig(t, open)
	start := r.clk.Now()
	old, recent := NewMessage("+15550000001", "old", 1), NewMessage("+15550000001", "recent", 2)
	for _, m := range []*simgate.Message{old, recent} {
		if err := CreateMessage(ctx, r.db, m); err != nil {
			t.Fatal(err)
		}
	}
	r.update(func(tx simgate.MessageTx) error {
		if err := tx.SetPartSent(ctx, old.ID, 1, "m0", 5, start); err != nil {
			return err
		}
		if err := tx.SetPartSent(ctx, recent.ID, 1, "m0", 5, start.Add(time.Second)); err != nil {
			return err
		}
		return tx.SetPartsStatus(ctx, recent.ID, 2, 2, simgate.StatusUnknown, "m0", start.Add(time.Second))
	})
	find := func(recipient string, from, to time.Time) string {
		var got string
		r.update(func(tx simgate.MessageTx) error {
			p, err := tx.FindSubmittedPart(ctx, "m0", 5, recipient, from, to)
			if p != nil {
				got = fmt.Sprintf("%s/%d/%s", p.MessageID, p.Seq, p.Status)
			}
			return err
		})
		return got
	}
	if got, want := find("15550000001", start, start.Add(time.Hour)), recent.ID+"/1/sent"; got != want {
		t.Fatalf("found %s, want the newest %s", got, want)
	}
	if got, want := find("", start, start.Add(time.Millisecond)), old.ID+"/1/sent"; got != want {
		t.Fatalf("found %s, want %s within the times", got, want)
	}
	if got := find("+15550000002", start, start.Add(time.Hour)); got != "" {
		t.Fatalf("found %s for another recipient", got)
	}
	r.update(func(tx simgate.MessageTx) error {
		return tx.SetPartReport(ctx, recent.ID, 1, 0, simgate.StatusDelivered, tx.Now())
	})
	if got, want := find("", start, start.Add(time.Hour)), old.ID+"/1/sent"; got != want {
		t.Fatalf("found %s, want %s, still sent, before a newer final one", got, want)
	}

	matched := &simgate.StatusReport{ModemID: "m0", MR: 5, Recipient: old.To, ReceivedAt: r.clk.Now(), MessageID: old.ID, PartSeq: 1}
	early := &simgate.StatusReport{ModemID: "m0", MR: 6, Recipient: "+15550000001", TPST: 0x41, ReceivedAt: r.clk.Now(),
		DischargeTime: start, SCTS: start.Add(-time.Second)}
	other := &simgate.StatusReport{ModemID: "m0", MR: 6, Recipient: "+15550000002", ReceivedAt: r.clk.Now()}
	r.update(func(tx simgate.MessageTx) error {
		for _, rep := range []*simgate.StatusReport{matched, early, other} {
			if err := tx.AddStatusReport(ctx, rep); err != nil {
				return err
			}
		}
		if matched.ID == 0 || early.ID <= matched.ID {
			t.Fatalf("report ids %d %d", matched.ID, early.ID)
		}
		if rs, err := tx.UnmatchedReports(ctx, "m0", 6, "15550000001", start.Add(time.Millisecond)); err != nil || len(rs) != 0 {
			t.Fatalf("unmatched since later: %+v, %v", rs, err)
		}
		rs, err := tx.UnmatchedReports(ctx, "m0", 6, "15550000001", start)
		if err != nil || len(rs) != 1 || rs[0].ID != early.ID || rs[0].TPST != 0x41 || !rs[0].DischargeTime.Equal(start) ||
			!rs[0].SCTS.Equal(early.SCTS) || !rs[0].ReceivedAt.Equal(start) {
			t.Fatalf("unmatched %+v, %v", rs, err)
		}
		return tx.MatchReport(ctx, early.ID, recent.ID, 2)
	})
	st, err := r.db.QueueStats(ctx, start)
	if err != nil || st.Reports != 3 || st.MatchedReports != 2 {
		t.Fatalf("stats %+v, %v", st, err)
	}

	late := &simgate.LateSubmit{ModemID: "m0", To: "15550000001", Part: 1, MR: 9, At: start.Add(2 * time.Second)}
	r.update(func(tx simgate.MessageTx) error {
		lateID, err := tx.AddLateSubmit(ctx, late)
		if err != nil || lateID == 0 {
			t.Fatalf("late submit %d, %v", lateID, err)
		}
		id, to, err := tx.FindUnknownPart(ctx, "m0", 2, late.To, start, start.Add(time.Minute))
		if err != nil || id != recent.ID || to != recent.To {
			t.Fatalf("unknown part of %q %q, %v", id, to, err)
		}
		if id, _, err := tx.FindUnknownPart(ctx, "m0", 2, late.To, start.Add(2*time.Second), start.Add(time.Minute)); err != nil || id != "" {
			t.Fatalf("unknown part given up on before: %q, %v", id, err)
		}
		if id, _, err := tx.UnmatchedLateSubmit(ctx, "m0", 2, "+15550000001", start.Add(3*time.Second)); err != nil || id != 0 {
			t.Fatalf("late submit since later: %d, %v", id, err)
		}
		id2, l, err := tx.UnmatchedLateSubmit(ctx, "m0", 2, "+15550000001", start)
		if err != nil || id2 != lateID || l.MR != 9 || !l.At.Equal(late.At) || l.Part != 1 {
			t.Fatalf("unmatched late submit %d %+v, %v", id2, l, err)
		}
		return tx.MatchLateSubmit(ctx, lateID, recent.ID)
	})
	st, err = r.db.QueueStats(ctx, start)
	if err != nil || st.LateSubmits != 1 || st.MatchedLateSubmits != 1 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

// Pages are newest first and the cursor continues where the last page ended.
func MessagesList(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[MessageStore](t, open(t, "list", clk.Now))
	var ids []string
	for i := 0; i < 5; i++ {
		to := "+15550000001"
		if i%2 == 1 {
			to = "+15550000002"
		}
		m := NewMessage(to, "x", 1)
		if err := CreateMessage(ctx, db, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		if i < 3 {
			clk.Advance(time.Second) // the last two share a millisecond
		}
	}
	var got []string
	cursor := ""
	for {
		ms, next, err := db.ListMessages(ctx, simgate.MessageFilter{Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			got = append(got, m.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 5 || got[4] != ids[0] {
		t.Fatalf("paged %v, want all 5 newest first (oldest %s)", got, ids[0])
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
	}
	ms, _, err := db.ListMessages(ctx, simgate.MessageFilter{To: "+15550000002"})
	if err != nil || len(ms) != 2 {
		t.Fatalf("by recipient: %d, %v", len(ms), err)
	}
	if _, _, err := db.ListMessages(ctx, simgate.MessageFilter{Cursor: "nope!"}); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Fatalf("bad cursor: %v", err)
	}
}

// Opt-outs are idempotent both ways. That they refuse all but verification
// messages is the queue's rule (queue.TestCreate_OptOut).
func OptOuts(t *testing.T, open Open) {
	ctx := testContext(t)
	db := as[MessageStore](t, open(t, "optouts", NewClock().Now))
	for i := 0; i < 2; i++ {
		if err := db.SetOptOut(ctx, "+15550000001", "STOP", true); err != nil {
			t.Fatal(err)
		}
	}
	if k, ok, err := db.OptedOut(ctx, "+15550000001"); err != nil || !ok || k != "STOP" {
		t.Fatalf("OptedOut = %q %v %v", k, ok, err)
	}
	for i := 0; i < 2; i++ {
		if err := db.SetOptOut(ctx, "+15550000001", "START", false); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := db.OptedOut(ctx, "+15550000001"); ok {
		t.Fatal("still opted out")
	}
}

// InboundMessages checks that received messages are stored as given, with
// increasing ids, listed in pages, and refused without a modem or, when
// undecodable, without their raw PDU.
func InboundMessages(t *testing.T, open Open) {
	ctx := testContext(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	db := as[MessageStore](t, open(t, "inbound", func() time.Time { return now }))

	scts := time.Date(2026, 3, 1, 11, 59, 58, 0, time.UTC)
	in := []*simgate.InboundMessage{
		{ModemID: "modem0", From: "+15550001", Text: "STOP", SCTS: scts},
		{ModemID: "modem1", From: "+15550002", Text: "héllo 👋"},
		{ModemID: "modem0", From: "+15550003", Text: ""},
		{ModemID: "modem0", From: "+15550004", Kind: simgate.InboundMMSNotification, Status: simgate.InboundComplete,
			Parts: 2, PartsTotal: 2, Port: 2948, Data: []byte{0x01, 0x06, 0x22},
			MMS: &simgate.MMSNotification{From: "+15550005", ContentLocation: "http://mmsc/x", TransactionID: "T1", Size: 1234}},
		{ModemID: "modem1", From: "+15550006", Text: "part one ", Status: simgate.InboundIncomplete, Parts: 1, PartsTotal: 3},
		{ModemID: "modem0", Text: "an originating address without digits"},
		{ModemID: "modem1", Kind: simgate.InboundData, Status: simgate.InboundUndecodable,
			Raw: &simgate.RawPDU{Hex: "0791FF", Length: 40, Store: "SM", Index: 7, Error: "cannot decode TPDU"}},
	}
	for _, m := range in {
		if err := db.CreateInboundMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if in[0].ID == 0 || in[1].ID <= in[0].ID || in[2].ID <= in[1].ID {
		t.Fatalf("ids not increasing: %d %d %d", in[0].ID, in[1].ID, in[2].ID)
	}
	if got, want := in[0].ReceivedAt, now.Truncate(time.Millisecond); !got.Equal(want) {
		t.Fatalf("ReceivedAt = %v, want %v", got, want)
	}

	all, err := db.ListInboundMessages(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(all), len(in); got != want {
		t.Fatalf("listed %d, want %d", got, want)
	}
	for i, m := range all {
		if !reflect.DeepEqual(m, in[i]) {
			t.Errorf("message %d = %+v, want %+v", i, m, in[i])
		}
	}

	page, err := db.ListInboundMessages(ctx, in[0].ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(page), 1; got != want {
		t.Fatalf("page has %d, want %d", got, want)
	} else if got, want := page[0].ID, in[1].ID; got != want {
		t.Fatalf("page starts at %d, want %d", got, want)
	}

	for _, m := range []*simgate.InboundMessage{{From: "+1555"},
		{ModemID: "modem0", Status: simgate.InboundUndecodable}} {
		if err := db.CreateInboundMessage(ctx, m); simgate.ErrorCode(err) != simgate.CodeInvalid {
			t.Errorf("CreateInboundMessage(%+v) = %v, want invalid", m, err)
		}
	}
}

// ConcurrentClaims checks that of many transactions claiming at once
// (queue.Claim, as the dispatchers of several hosts do), each queued
// message goes to exactly one.
func ConcurrentClaims(t *testing.T, open Open) {
	ctx := testContext(t)
	clk := NewClock()
	db := as[MessageStore](t, open(t, "claims", clk.Now))
	const messages, claimers = 50, 8
	want := map[string]bool{}
	for i := range messages {
		m := NewMessage(fmt.Sprintf("+1555000%04d", i), "claim me", 1)
		if err := CreateMessage(ctx, db, m); err != nil {
			t.Fatal(err)
		}
		want[m.ID] = true
	}
	var mu sync.Mutex
	claims := map[string]int{}
	var wg sync.WaitGroup
	for c := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("host%d", c)
			for {
				var m *simgate.Message
				err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
					var err error
					m, err = queue.Claim(ctx, tx, owner, time.Minute, nil)
					if m != nil {
						pause() // the work between the claim and its commit
					}
					return err
				})
				if err != nil {
					t.Error(err)
					return
				} else if m == nil {
					return
				}
				mu.Lock()
				claims[m.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for id, n := range claims {
		if n != 1 || !want[id] {
			t.Errorf("message %s claimed %d times", id, n)
		}
	}
	if len(claims) != messages {
		t.Errorf("%d messages claimed, want %d", len(claims), messages)
	}
	if n, err := db.CountDue(ctx); err != nil || n != 0 {
		t.Errorf("CountDue = %d, %v; want none left", n, err)
	}
}
