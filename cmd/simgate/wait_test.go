package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
)

// A modem that comes back wakes the messages waiting for one at once: the
// pool's state observer modemsBack calls the dispatcher's ModemReady. The
// message here waits with its next try an hour away, so only that wake-up
// sends it in time.
func TestAppModemReadyWakesWaitingMessages(t *testing.T) {
	r := newAppRig(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw, err := sql.Open("sqlite3", "file:"+r.cfg.Database.Path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	modemState := func() string {
		var s string
		raw.QueryRowContext(ctx, `SELECT state FROM webhook_modem_states WHERE modem_id = ?`, r.cfg.Modems[0].Name).Scan(&s)
		return s
	}

	// The observer saw the modem go down (it records that for webhooks).
	if err := r.mods[0].Unplug(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the modem to be reported down", func() bool { return modemState() == "down" })

	m := &simgate.Message{To: "+15557650001", Text: "waited for a modem", Parts: make([]simgate.Part, 1),
		NextAttemptAt: time.Now().Add(time.Hour)}
	if err := r.app.DB.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		_, err := queue.Create(ctx, tx, m, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `UPDATE messages SET waiting_for_modem = 'waiting for a modem: no modem available' WHERE id = ?`, m.ID); err != nil {
		t.Fatal(err)
	}

	if _, err := r.mods[0].Replug(""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the waiting message to be delivered", func() bool {
		return r.messageStatus(m.ID) == simgate.StatusDelivered
	})
}

// handleModemEvent hands a late +CMGS answer to the dispatcher: the unknown
// message becomes sent, and the status report that follows delivers it.
func TestAppHandlesLateSubmit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "simgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The dispatcher is not opened: nothing claims or sends on its own.
	q, err := queue.New(queue.Options{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	a := &App{DB: db, Queue: q}

	const to = "+15557650001"
	m := &simgate.Message{To: to, Text: "did it go?", Parts: make([]simgate.Part, 1)}
	if err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		_, err := queue.Create(ctx, tx, m, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var c *simgate.Message
	if err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		var err error
		c, err = queue.Claim(ctx, tx, "local", time.Minute, nil)
		return err
	}); err != nil || c == nil || c.ID != m.ID {
		t.Fatalf("claim %v, %v", c, err)
	}
	if err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		return queue.Finish(ctx, tx, m.ID, simgate.SendOutcome{Status: simgate.StatusUnknown, Ambiguous: true, ModemID: "m0",
			Reason: "may have been sent"})
	}); err != nil {
		t.Fatal(err)
	}

	if err := a.handleModemEvent(ctx, modem.Event{Kind: modem.EventLateSubmit, ModemID: "m0",
		Late: &simgate.LateSubmit{ModemID: "m0", To: to, Part: 0, MR: 42, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if got := a.messageStatus(t, m.ID); got != simgate.StatusSent {
		t.Fatalf("after the late answer: %s, want sent", got)
	}
	if err := a.handleModemEvent(ctx, modem.Event{Kind: modem.EventReport, ModemID: "m0",
		Report: &simgate.StatusReport{ModemID: "m0", MR: 42, Recipient: to, TPST: 0}}); err != nil {
		t.Fatal(err)
	}
	if got := a.messageStatus(t, m.ID); got != simgate.StatusDelivered {
		t.Fatalf("after the report: %s, want delivered", got)
	}
}

func (a *App) messageStatus(t *testing.T, id string) simgate.MessageStatus {
	t.Helper()
	m, err := a.DB.FindMessage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.Status
}
