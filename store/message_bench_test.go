package store_test

import (
	"path/filepath"
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
