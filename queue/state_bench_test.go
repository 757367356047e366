package queue_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
)

// benchState is a stateDB on a new database with the wall clock and the
// given synchronous setting.
func benchState(b *testing.B, sync string) *stateDB {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	b.Cleanup(cancel)
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "simgate.db"), store.Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return &stateDB{t: b, ctx: ctx, db: db}
}

// BenchmarkFinishAndClaim is what one dispatcher worker does between two
// submits (Finish and Claim in one transaction), on a queue of b.N
// messages, with one status report per message (RecordReport).
//
//	go test -run '^$' -bench FinishAndClaim ./queue/
func BenchmarkFinishAndClaim(b *testing.B) {
	s := benchState(b, "NORMAL")
	for i := 0; i < b.N+1; i++ {
		if _, err := s.create(newMessage("+15550000001", "x", 1)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	m, err := s.claim("n", time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		var next *simgate.Message
		if err := s.update(func(tx simgate.MessageTx) error {
			o := simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m0", MRs: []int{i % 256}}
			if err := queue.Finish(s.ctx, tx, m.ID, o); err != nil {
				return err
			}
			var err error
			next, err = queue.Claim(s.ctx, tx, "n", time.Minute, nil)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if err := s.report(&simgate.StatusReport{ModemID: "m0", MR: i % 256, Recipient: "+15550000001"}, time.Hour); err != nil {
			b.Fatal(err)
		}
		m = next
	}
}

// BenchmarkCreateMessages32 is a burst of enqueues: 32 clients create b.N
// messages of one part into an empty database (Create), each in a write
// transaction of its own (committed in groups by the store's writer), with
// synchronous=FULL. As the database grows, what a commit writes depends on
// where the new rows' keys land in the indexes (see simgate.NewID).
//
//	go test -run '^$' -bench CreateMessages32 -benchtime 200000x ./queue/
func BenchmarkCreateMessages32(b *testing.B) {
	s := benchState(b, "")
	const clients = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := s.create(newMessage("+15550000001", "Your code is 123456", 1)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}
