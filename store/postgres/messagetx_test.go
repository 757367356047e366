package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store/storetest"
)

// A claim does not wait for another host's claim in progress: it takes the
// next message (NextDueMessage's SKIP LOCKED), while the other holds the
// first. SQLite, with its one writer,
// cannot pass this, so it is not in the contract (storetest).
func TestClaimSkipsClaimInProgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clk := storetest.NewClock()
	db := opener(t)(t, "skip", clk.Now).(*DB)
	var ids []string
	for range 2 {
		m := storetest.NewMessage("+15550000001", "claim me", 1)
		if err := storetest.CreateMessage(ctx, db, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		clk.Advance(time.Millisecond)
	}
	claimed, release, done := make(chan string), make(chan struct{}), make(chan error)
	go func() {
		done <- db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
			// The read of a claim (queue.Claim), held before its writes:
			// those take the locks of the counts of statuses
			// (status_counts), which every status change waits for.
			u, err := tx.NextDueMessage(ctx, nil)
			if err != nil {
				return err
			}
			claimed <- u.ID
			<-release
			return nil
		})
	}()
	first := <-claimed
	second := make(chan string, 1)
	go func() {
		var id string
		err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
			m, err := queue.Claim(ctx, tx, "host2", time.Minute, nil)
			if m != nil {
				id = m.ID
			}
			return err
		})
		if err != nil {
			t.Error(err)
		}
		second <- id
	}()
	select {
	case id := <-second:
		if first != ids[0] || id != ids[1] {
			t.Errorf("claimed %s while %s was being claimed; want %s, then %s", id, first, ids[0], ids[1])
		}
	case <-time.After(10 * time.Second):
		t.Error("the second claim waited for the first")
		close(release)
		<-second
		<-done
		return
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Workers on several hosts finish a send and claim the next message in one
// transaction (queue/queue.go's finishAndClaim), or finish and then claim
// alone: every message is claimed once and ends sent, and no transaction
// fails. Until the counts of statuses became a log (migrations/0002_*.sql),
// the two kinds took the rows of those counts in opposite orders, and
// PostgreSQL aborted about one transaction in a hundred as deadlocked
// (SQLSTATE 40P01); any such error now fails the test.
func TestFinishAndClaimConcurrently(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clk := storetest.NewClock()
	db := opener(t)(t, "finish", clk.Now).(*DB)
	const messages, workers = 300, 6
	for i := range messages {
		if err := storetest.CreateMessage(ctx, db, storetest.NewMessage(fmt.Sprintf("+1555%07d", i), "x", 1)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claims := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("host%d", w)
			var cur *simgate.Message
			for {
				var next *simgate.Message
				finish := func(tx simgate.MessageTx) error {
					if cur == nil {
						return nil
					}
					return queue.Finish(ctx, tx, cur.ID, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m0", MRs: []int{w}, Reason: "submitted"})
				}
				claim := func(tx simgate.MessageTx) (err error) {
					next, err = queue.Claim(ctx, tx, owner, time.Minute, nil)
					return err
				}
				var err error
				if w%2 == 0 { // finish, then claim alone
					if err = db.UpdateMessages(ctx, finish); err == nil {
						cur = nil
						err = db.UpdateMessages(ctx, claim)
					}
				} else {
					err = db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
						if err := finish(tx); err != nil {
							return err
						}
						return claim(tx)
					})
				}
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if cur = next; cur == nil {
					return
				}
				mu.Lock()
				claims[cur.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claims) != messages {
		t.Errorf("%d messages claimed, want %d", len(claims), messages)
	}
	for id, n := range claims {
		if n != 1 {
			t.Errorf("message %s claimed %d times", id, n)
		}
		if m, err := db.FindMessage(ctx, id); err != nil || m.Status != simgate.StatusSent {
			t.Errorf("message %s: %+v, %v; want sent", id, m, err)
		}
	}
}

// A resend of a verification (verify's Start: PendingVerification, then
// CancelQueuedMessages) beside a host that claimed the verification's SMS
// and then finishes it as failed, which fails the verification
// (FailPendingVerification) after updating the message a second time (the
// foreign key check of messages.verification_id): both commit. When the
// resend locked the verification's row before its messages, the two
// waited for each other and PostgreSQL aborted one as deadlocked.
func TestResendBesideFailedSend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clk := storetest.NewClock()
	db := opener(t)(t, "resend", clk.Now).(*DB)
	const to = "+4915123456781"
	v := &simgate.Verification{To: to, CodeLength: 6, MaxAttempts: 3, ExpiresAt: clk.Now().Add(time.Hour), ServiceID: simgate.DefaultServiceID}
	m := &simgate.Message{To: to, Text: "code", Status: simgate.StatusQueued, Reason: "accepted",
		Priority: simgate.PriorityVerification, ExpiresAt: v.ExpiresAt,
		Parts: []simgate.Part{{Status: simgate.StatusQueued, MR: -1}}}
	if err := db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		v.ID, v.CodeHash = simgate.NewID("ver", tx.Now()), make([]byte, 32)
		if err := tx.CreateVerification(ctx, v); err != nil {
			return err
		}
		m.VerificationID = v.ID
		return tx.CreateMessage(ctx, m)
	}); err != nil {
		t.Fatal(err)
	}

	// The host claims the SMS and holds it until the resend waits.
	claimed, finish, sent := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		sent <- db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
			c, err := queue.Claim(ctx, tx, "host1", time.Minute, nil)
			if err != nil {
				return err
			}
			if c == nil || c.ID != m.ID {
				return fmt.Errorf("claimed %v, want %s", c, m.ID)
			}
			close(claimed)
			<-finish
			return queue.Finish(ctx, tx, c.ID, simgate.SendOutcome{Status: simgate.StatusFailed, ModemID: "m0", Reason: "refused"})
		})
	}()
	<-claimed
	pid, resent := make(chan int32, 1), make(chan error, 1)
	go func() {
		resent <- db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
			var p int32
			if err := tx.(verificationTx).tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&p); err != nil {
				return err
			}
			pid <- p
			cur, _, err := tx.PendingVerification(ctx, simgate.DefaultServiceID, to)
			if simgate.ErrorCode(err) == simgate.CodeNotFound {
				return nil // the failed send failed it first
			} else if err != nil {
				return err
			}
			return tx.CancelQueuedMessages(ctx, cur.ID, "replaced by a resend with a new code")
		})
	}()
	// The resend waits for the SMS the host holds (or, before, for the
	// verification's row after taking it): let the host go on then.
	p := <-pid
	for waiting := false; !waiting && len(resent) == 0; {
		if err := db.pool.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, p).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	close(finish)
	if err := <-sent; err != nil {
		t.Errorf("the failed send: %v", err)
	}
	if err := <-resent; err != nil {
		t.Errorf("the resend: %v", err)
	}
	got, err := db.FindMessage(ctx, m.ID)
	if err != nil || got.Status != simgate.StatusFailed {
		t.Errorf("message %+v, %v; want failed", got, err)
	}
	if got, _, err := db.GetVerification(ctx, v.ID); err != nil || got.Status != simgate.VerificationFailed {
		t.Errorf("verification %+v, %v; want failed", got, err)
	}
}

// Submits recorded (queue.Finish: the modem's usage, then its parts' hourly
// figures) beside status reports on the same modem (queue.RecordReport:
// the modem's report count, then its part's hourly figures) take those
// rows in one order: every transaction commits. Finish counted usage after
// the parts once, and the two deadlocked.
func TestFinishBesideReports(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clk := storetest.NewClock()
	db := opener(t)(t, "reports", clk.Now).(*DB)
	const n = 200
	ids := make([]string, n)
	for i := range n {
		m := storetest.NewMessage(fmt.Sprintf("+1555%07d", i), "x", 1)
		if err := storetest.CreateMessage(ctx, db, m); err != nil {
			t.Fatal(err)
		}
		ids[i] = m.ID
		if err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
			return tx.StartAttempt(ctx, m.ID, "attempt 1", "h", tx.Now().Add(time.Hour))
		}); err != nil {
			t.Fatal(err)
		}
	}
	finish := func(i int) error {
		return db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
			return queue.Finish(ctx, tx, ids[i], simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m0",
				MRs: []int{i % 128}, Reason: "submitted"})
		})
	}
	for i := range n / 2 { // the first half is sent, for the reports
		if err := finish(i); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 2 {
		wg.Add(2)
		go func() { // the second half is finished
			defer wg.Done()
			for i := n/2 + w; i < n; i += 2 {
				errs <- finish(i)
			}
		}()
		go func() { // while the first half's reports come
			defer wg.Done()
			for i := w; i < n/2; i += 2 {
				errs <- db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
					r := &simgate.StatusReport{ModemID: "m0", MR: i % 128, Recipient: fmt.Sprintf("1555%07d", i)}
					return queue.RecordReport(ctx, tx, r, time.Hour)
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
