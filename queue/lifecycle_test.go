package queue_test

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
)

// A message left in sending by a dispatcher that died becomes unknown at the
// next Open and is not resent; one leased by another live node is left alone,
// one whose lease expired is taken; queued messages are sent.
func TestRecovery_SendingBecomesUnknown(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	mine := &simgate.Message{To: alice, Text: "was in flight", Parts: make([]simgate.Part, 1)}
	other := &simgate.Message{To: bob, Text: "other node, live", Parts: make([]simgate.Part, 1)}
	stale := &simgate.Message{To: carol, Text: "other node, dead", Parts: make([]simgate.Part, 1)}
	for _, c := range []struct {
		m     *simgate.Message
		owner string
		lease time.Duration
	}{{mine, "n1", time.Hour}, {other, "n2", time.Hour}, {stale, "n3", time.Minute}} {
		if _, err := e.state().create(c.m); err != nil {
			t.Fatal(err)
		}
		got, err := e.state().claim(c.owner, c.lease)
		if err != nil || got == nil || got.ID != c.m.ID {
			t.Fatalf("claim: %v %v", got, err)
		}
	}
	queued := &simgate.Message{To: alice, Text: "still queued", Parts: make([]simgate.Part, 1)}
	if _, err := e.state().create(queued); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(10 * time.Minute) // n3's lease expired

	q := e.openQueue(queue.Options{NodeID: "n1"})
	e.waitStatus(queued.ID, simgate.StatusDelivered)
	for _, c := range []struct {
		id   string
		want simgate.MessageStatus
	}{{mine.ID, simgate.StatusUnknown}, {other.ID, simgate.StatusSending}, {stale.ID, simgate.StatusUnknown}} {
		m, _ := q.Message(e.ctx, c.id)
		if m.Status != c.want {
			t.Errorf("%s: %s %q, want %s", m.Text, m.Status, m.Reason, c.want)
		}
		if m.Status == simgate.StatusUnknown && (!strings.Contains(m.Reason, "not resent") || m.Parts[0].Status != simgate.StatusUnknown) {
			t.Errorf("%s: reason %q part %+v", m.Text, m.Reason, m.Parts[0])
		}
	}
	subs := e.net.Submissions()
	if len(subs) != 1 || subs[0].Text != "still queued" {
		t.Fatalf("submissions %+v, want only the queued message", subs)
	}
}

// With ResendUnknown, a message found in sending is queued again and sent.
func TestRecovery_ResendUnknown(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	m := &simgate.Message{To: alice, Text: "again", Parts: make([]simgate.Part, 1)}
	if _, err := e.state().create(m); err != nil {
		t.Fatal(err)
	}
	if _, err := e.state().claim("local", time.Hour); err != nil {
		t.Fatal(err)
	}
	e.openQueue(queue.Options{ResendUnknown: true})
	got := e.waitStatus(m.ID, simgate.StatusDelivered)
	if got.Attempts != 2 {
		t.Fatalf("attempts %d, want 2", got.Attempts)
	}
}

// STOP from a handset blocks all but verification traffic to it; START lifts
// that. The inbound SMS are stored.
func TestOptOut(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	q := e.openQueue(queue.Options{})
	modemNumber := e.mods[0].Config().Number
	waitOpt := func(want bool) {
		waitFor(t, "opt-out to change", func() bool {
			_, ok, err := e.db.OptedOut(e.ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return ok == want
		}, nil)
	}

	if err := e.net.Inject(alice, modemNumber, " stop "); err != nil {
		t.Fatal(err)
	}
	waitOpt(true)
	err := q.Enqueue(e.ctx, &simgate.Message{To: alice, Text: "promo"})
	if got, want := simgate.ErrorCode(err), simgate.CodeForbidden; got != want {
		t.Fatalf("Enqueue to opted-out number: %v, want %s", err, want)
	}
	if !strings.Contains(simgate.ErrorMessage(err), "opted out") {
		t.Fatalf("message %q", simgate.ErrorMessage(err))
	}
	e.insertVerification("ver_1", alice, simgate.VerificationPending, e.clk.Now().Add(time.Hour))
	v := e.enqueue(&simgate.Message{To: alice, Text: "code 123456", VerificationID: "ver_1"})
	e.waitStatus(v.ID, simgate.StatusDelivered)

	if err := e.net.Inject(alice, modemNumber, "START"); err != nil {
		t.Fatal(err)
	}
	waitOpt(false)
	e.enqueue(&simgate.Message{To: alice, Text: "welcome back"})

	in, err := e.db.ListInboundMessages(e.ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 2 || in[0].Text != " stop " || in[1].Text != "START" {
		t.Fatalf("inbound %+v", in)
	}
}

// The same idempotency key and request give the same message; a different
// request with that key is a conflict; another API key is another scope.
func TestEnqueue_Idempotent(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	q := e.newQueue(queue.Options{}) // not opened: nothing is sent
	var keys []string
	for _, name := range []string{"a", "b"} {
		h := sha256.Sum256([]byte(name))
		k := &simgate.APIKey{Name: name, Prefix: name, Hash: h[:], Scopes: []simgate.Scope{simgate.ScopeSend}}
		if err := e.db.CreateAPIKey(e.ctx, k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.ID)
	}
	first := e.enqueue(&simgate.Message{To: alice, Text: "once", APIKeyID: keys[0], IdempotencyKey: "k1"})
	again := e.enqueue(&simgate.Message{To: alice, Text: "once", APIKeyID: keys[0], IdempotencyKey: "k1"})
	if again.ID != first.ID || again.Status != simgate.StatusQueued {
		t.Fatalf("retry gave %s (%s), want %s", again.ID, again.Status, first.ID)
	}
	err := q.Enqueue(e.ctx, &simgate.Message{To: alice, Text: "twice?", APIKeyID: keys[0], IdempotencyKey: "k1"})
	if got, want := simgate.ErrorCode(err), simgate.CodeConflict; got != want {
		t.Fatalf("reuse with another body: %v, want %s", err, want)
	}
	other := e.enqueue(&simgate.Message{To: alice, Text: "once", APIKeyID: keys[1], IdempotencyKey: "k1"})
	if other.ID == first.ID {
		t.Fatal("another API key got the same message")
	}
	ms, _, err := q.ListMessages(e.ctx, simgate.MessageFilter{To: alice})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(ms), 2; got != want {
		t.Fatalf("%d messages stored, want %d", got, want)
	}
}

// Cancel works while a message waits, and not after; a canceled message is
// never sent.
func TestCancel(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	q := e.newQueue(queue.Options{})
	m := e.enqueue(&simgate.Message{To: alice, Text: "never mind"})
	if err := q.Cancel(e.ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if got, want := simgate.ErrorCode(q.Cancel(e.ctx, m.ID)), simgate.CodeConflict; got != want {
		t.Fatalf("second cancel: %s, want %s", got, want)
	}
	if got, want := simgate.ErrorCode(q.Cancel(e.ctx, "msg_nope")), simgate.CodeNotFound; got != want {
		t.Fatalf("cancel unknown: %s, want %s", got, want)
	}
	if err := q.Open(e.ctx); err != nil {
		t.Fatal(err)
	}
	sent := e.enqueue(&simgate.Message{To: bob, Text: "go"})
	e.waitStatus(sent.ID, simgate.StatusDelivered)
	if got, want := simgate.ErrorCode(q.Cancel(e.ctx, sent.ID)), simgate.CodeConflict; got != want {
		t.Fatalf("cancel delivered: %s, want %s", got, want)
	}
	if n := len(e.submissionsTo(alice)); n != 0 {
		t.Fatalf("canceled message submitted %d times", n)
	}
	got, _ := q.Message(e.ctx, m.ID)
	if got.Status != simgate.StatusCanceled || got.Parts[0].Status != simgate.StatusCanceled {
		t.Fatalf("canceled message %+v", got)
	}
}

// Enqueue refuses what cannot be sent.
func TestEnqueue_Invalid(t *testing.T) {
	e := newEnv(t, envConfig{modems: 1})
	q := e.newQueue(queue.Options{})
	for _, m := range []*simgate.Message{
		{To: "15557650001", Text: "no plus"},
		{To: alice, Text: "  "},
		{To: alice, Text: strings.Repeat("x", 153*10+1)},
		{To: alice, Text: "late", ExpiresAt: e.clk.Now().Add(-time.Second)},
	} {
		if got, want := simgate.ErrorCode(q.Enqueue(e.ctx, m)), simgate.CodeInvalid; got != want {
			t.Errorf("Enqueue(%q, %d chars): %s, want %s", m.To, len(m.Text), got, want)
		}
	}
}
