package store_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkDiskFlush measures what the disk under the test's temporary
// directory (TMPDIR; point it at the database's file system) takes to make a
// commit durable: 64 KiB written into a file, then fsync, as SQLite does to
// its WAL for a commit of about 16 pages with synchronous=FULL. One flush
// every 5 ms, about the queue benchmark's commit rate.
//
//	TMPDIR=/var/lib/simgate go test -run '^$' -bench DiskFlush -benchtime 2000x ./store/
//
// Every message submit waits for one such flush (the outcome of the last
// submit and the claim of the next are durable before the modem is asked),
// so its tail is the floor of the queue's idle-gap tail.
func BenchmarkDiskFlush(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "flush"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	const slots = 256 // a 16 MiB file written over, as a WAL that starts over
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		if _, err := f.WriteAt(buf, int64(i%slots)*int64(len(buf))); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(int(float64(len(lat))*q), len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(at(0.999), "p999-ms")
}
