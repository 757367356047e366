package store_test

import (
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

// A message with a SendAt ahead is stored scheduled (its parts queued), is
// not claimed, is the next scheduled, and becomes queued, with its event,
// once ReleaseScheduled runs at or after its SendAt, never before.
func TestMessages_Scheduled(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)

	at := clk.Now().Add(time.Hour + 1500*time.Microsecond) // rounded up to the millisecond
	m := newMessage("+15550000001", "later", 2)
	m.SendAt = at
	if _, err := db.CreateMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(time.Hour + 2*time.Millisecond)
	if got := m.SendAt; !got.Equal(want) {
		t.Fatalf("SendAt %v, want %v (rounded up)", got, want)
	}
	if got, want := m.Status, simgate.StatusScheduled; got != want {
		t.Fatalf("status %s, want %s", got, want)
	}
	now := newMessage("+15550000002", "now", 1)
	now.SendAt = clk.Now().Add(-30 * time.Second) // the past means now
	if _, err := db.CreateMessage(ctx, now, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := now.Status, simgate.StatusQueued; got != want {
		t.Fatalf("status of a message due already %s, want %s", got, want)
	}

	got, err := db.FindMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != simgate.StatusScheduled || !got.SendAt.Equal(want) || len(got.Events) != 1 ||
		got.Events[0].Status != simgate.StatusScheduled || got.Parts[0].Status != simgate.StatusQueued {
		t.Fatalf("stored %+v", got)
	}
	if c, err := db.ClaimMessage(ctx, "n", time.Minute); err != nil || c == nil || c.ID != now.ID {
		t.Fatalf("claim = %+v, %v; want only the message due now", c, err)
	}
	if c, err := db.ClaimMessage(ctx, "n", time.Minute); err != nil || c != nil {
		t.Fatalf("claim of a scheduled message = %+v, %v", c, err)
	}
	if next, err := db.NextScheduled(ctx); err != nil || !next.Equal(want) {
		t.Fatalf("NextScheduled = %v, %v; want %v", next, err, want)
	}
	ms, _, err := db.ListMessages(ctx, simgate.MessageFilter{Status: simgate.StatusScheduled})
	if err != nil || len(ms) != 1 || ms[0].ID != m.ID || !ms[0].SendAt.Equal(want) {
		t.Fatalf("list of scheduled = %+v, %v", ms, err)
	}
	st, err := db.QueueStats(ctx, clk.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Depth[simgate.StatusScheduled][simgate.PriorityNormal], 1; got != want {
		t.Fatalf("depth of scheduled %d, want %d", got, want)
	}

	clk.Advance(time.Hour + time.Millisecond) // 1 ms early
	if n, err := db.ReleaseScheduled(ctx); err != nil || n != 0 {
		t.Fatalf("ReleaseScheduled 1 ms early = %d, %v", n, err)
	}
	clk.Advance(time.Millisecond)
	if n, err := db.ReleaseScheduled(ctx); err != nil || n != 1 {
		t.Fatalf("ReleaseScheduled = %d, %v; want 1", n, err)
	}
	if next, err := db.NextScheduled(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextScheduled = %v, %v; want none", next, err)
	}
	got, err = db.FindMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := got.Events[len(got.Events)-1]; got.Status != simgate.StatusQueued ||
		last.Status != simgate.StatusQueued || last.Reason != store.ReasonScheduledTimeReached {
		t.Fatalf("released %s, events %+v", got.Status, got.Events)
	}
	if c, err := db.ClaimMessage(ctx, "n", time.Minute); err != nil || c == nil || c.ID != m.ID {
		t.Fatalf("claim after release = %+v, %v", c, err)
	}
}

// A scheduled message can be canceled; one whose expiry passed ends
// expired, whether the sweep (ExpireMessages) or the release finds it.
func TestMessages_ScheduledCancelExpire(t *testing.T) {
	ctx := testContext(t, time.Minute)
	db, clk, _ := openWithClock(t)
	schedule := func(text string, sendIn, expireIn time.Duration) *simgate.Message {
		m := newMessage("+15550000001", text, 1)
		m.SendAt, m.ExpiresAt = clk.Now().Add(sendIn), clk.Now().Add(expireIn)
		if _, err := db.CreateMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		return m
	}
	canceled := schedule("canceled", time.Hour, 2*time.Hour)
	swept := schedule("swept", time.Hour, 2*time.Hour)
	released := schedule("released", 3*time.Hour, 4*time.Hour)

	if err := db.CancelMessage(ctx, canceled.ID, "by test"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if n, err := db.ExpireMessages(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireMessages = %d, %v; want 1", n, err)
	}
	clk.Advance(2 * time.Hour)
	if n, err := db.ReleaseScheduled(ctx); err != nil || n != 0 {
		t.Fatalf("ReleaseScheduled = %d, %v; want 0 (it expired)", n, err)
	}
	for _, c := range []struct {
		m    *simgate.Message
		want simgate.MessageStatus
	}{{canceled, simgate.StatusCanceled}, {swept, simgate.StatusExpired}, {released, simgate.StatusExpired}} {
		got, err := db.FindMessage(ctx, c.m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != c.want || got.Parts[0].Status != c.want {
			t.Errorf("%s: %s %q part %s, want %s", got.Text, got.Status, got.Reason, got.Parts[0].Status, c.want)
		}
	}
	if next, err := db.NextScheduled(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextScheduled = %v, %v; want none", next, err)
	}
}
