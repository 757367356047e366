package postgres

import (
	"context"
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
