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
			u, err := tx.NextDueMessage(ctx)
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
			m, err := queue.Claim(ctx, tx, "host2", time.Minute)
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
					next, err = queue.Claim(ctx, tx, owner, time.Minute)
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
