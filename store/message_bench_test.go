package store_test

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
)

// BenchmarkFinishAndClaim is what one dispatcher worker does between two
// submits, on a queue of b.N messages, with one status report per message.
//
//	go test -run '^$' -bench FinishAndClaim ./store/
func BenchmarkFinishAndClaim(b *testing.B) {
	ctx := testContext(b, 10*time.Minute)
	db := MustOpenDBAt(b, filepath.Join(b.TempDir(), "simgate.db"), store.Options{Synchronous: "NORMAL"})
	for i := 0; i < b.N+1; i++ {
		if _, err := db.CreateMessage(ctx, newMessage("+15550000001", "x", 1), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	m, err := db.ClaimMessage(ctx, "n", time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		next, err := db.FinishAndClaim(ctx, m.ID, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m0", MRs: []int{i % 256}}, "n", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.RecordReport(ctx, &simgate.StatusReport{ModemID: "m0", MR: i % 256, Recipient: "+15550000001"}, time.Hour); err != nil {
			b.Fatal(err)
		}
		m = next
	}
}

// BenchmarkCreateMessages32 is a burst of enqueues: 32 clients create b.N
// messages of one part into an empty database, each in a write transaction of
// its own (committed in groups by the writer), with synchronous=FULL. As the
// database grows, what a commit writes depends on where the new rows' keys
// land in the indexes (see newID).
//
//	go test -run '^$' -bench CreateMessages32 -benchtime 200000x ./store/
func BenchmarkCreateMessages32(b *testing.B) {
	ctx := testContext(b, 30*time.Minute)
	db := MustOpenDBAt(b, filepath.Join(b.TempDir(), "simgate.db"), store.Options{})
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
				if _, err := db.CreateMessage(ctx, newMessage("+15550000001", "Your code is 123456", 1), nil); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}
