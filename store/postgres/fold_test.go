package postgres

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store/storetest"
)

// openFolding opens a new database whose folder is off: the test folds.
func openFolding(t *testing.T, now simgate.Clock) *DB {
	t.Helper()
	db, err := Open(context.Background(), newDatabase(t), Options{Now: now, FoldInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// statusCounts is what StatusCounts returns, in one map keyed
// "entity/status".
func statusCounts(t *testing.T, ctx context.Context, db *DB) map[string]int {
	t.Helper()
	ms, vs, err := db.StatusCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for s, n := range ms {
		out["message/"+string(s)] = n
	}
	for s, n := range vs {
		out["verification/"+string(s)] = n
	}
	return out
}

// tableCounts counts the messages and verifications of each status in
// their tables, keyed as statusCounts; a status with none is absent.
func tableCounts(t *testing.T, ctx context.Context, db *DB) map[string]int {
	t.Helper()
	rows, err := db.pool.Query(ctx, `
		SELECT 'message/' || status, count(*) FROM messages GROUP BY status
		UNION ALL
		SELECT 'verification/' || status, count(*) FROM verifications GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	var key string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&key, &n}, func() error {
		out[key] = n
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// nonzero is counts without the statuses counted 0: those keep their row
// once they had one, as in the SQLite store, but are not in tableCounts.
func nonzero(counts map[string]int) map[string]int {
	out := maps.Clone(counts)
	maps.DeleteFunc(out, func(_ string, n int) bool { return n == 0 })
	return out
}

// countRows returns how many rows status_counts holds.
func countRows(t *testing.T, ctx context.Context, db *DB) int64 {
	t.Helper()
	var n int64
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM status_counts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// createVerification stores a pending verification to to, as the
// verification service does, and returns it.
func createVerification(ctx context.Context, db *DB, to string, expires time.Time) (*simgate.Verification, error) {
	v := &simgate.Verification{To: to, CodeLength: 6, MaxAttempts: 3, ExpiresAt: expires, ServiceID: simgate.DefaultServiceID}
	return v, db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		v.ID, v.CodeHash = simgate.NewID("ver", tx.Now()), make([]byte, 32)
		return tx.CreateVerification(ctx, v)
	})
}

// approve approves the pending verification v.
func approve(ctx context.Context, db *DB, v *simgate.Verification) error {
	return db.UpdateVerifications(ctx, func(tx simgate.VerificationTx) error {
		v.ApprovedAt = tx.Now()
		return tx.SetVerificationStatus(ctx, v, simgate.VerificationApproved)
	})
}

// sendOne claims the next due message for owner and finishes it as sent;
// false when none was due.
func sendOne(ctx context.Context, db *DB, owner string) (bool, error) {
	var m *simgate.Message
	if err := db.UpdateMessages(ctx, func(tx simgate.MessageTx) (err error) {
		m, err = queue.Claim(ctx, tx, owner, time.Minute, nil)
		return err
	}); err != nil || m == nil {
		return false, err
	}
	return true, db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
		return queue.Finish(ctx, tx, m.ID, simgate.SendOutcome{Status: simgate.StatusSent, ModemID: "m0", MRs: []int{1}, Reason: "submitted"})
	})
}

// A fold leaves the counts as they were: the same statuses with the same
// counts, those at 0 included, now in one row each.
func TestFoldStatusCounts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clk := storetest.NewClock()
	db := openFolding(t, clk.Now)
	for i := range 5 {
		if err := storetest.CreateMessage(ctx, db, storetest.NewMessage(fmt.Sprintf("+1555000000%d", i), "x", 1)); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if ok, err := sendOne(ctx, db, "host1"); err != nil || !ok {
			t.Fatalf("send: %v, %v", ok, err)
		}
	}
	var vs []*simgate.Verification
	for i := range 2 {
		v, err := createVerification(ctx, db, fmt.Sprintf("+1555000001%d", i), clk.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := approve(ctx, db, vs[0]); err != nil {
		t.Fatal(err)
	}

	before := statusCounts(t, ctx, db)
	want := map[string]int{"message/queued": 2, "message/sent": 3, "verification/pending": 1, "verification/approved": 1}
	if got := tableCounts(t, ctx, db); !maps.Equal(got, want) {
		t.Fatalf("the tables hold %v, want %v", got, want)
	}
	if got := nonzero(before); !maps.Equal(got, want) {
		t.Fatalf("counts before the fold %v, want %v", before, want)
	}
	if before["message/sending"] != 0 {
		t.Fatalf("counts before the fold %v: want sending at 0", before)
	}
	if _, ok := before["message/sending"]; !ok {
		t.Fatalf("counts before the fold %v: want sending, counted 0", before)
	}

	logged := countRows(t, ctx, db)
	n, ok, err := db.foldStatusCounts(ctx)
	if err != nil || !ok || n != logged {
		t.Fatalf("fold: %d rows, %v, %v; want the %d rows logged", n, ok, err, logged)
	}
	if after := statusCounts(t, ctx, db); !maps.Equal(after, before) {
		t.Fatalf("counts after the fold %v, want %v", after, before)
	}
	if got, want := countRows(t, ctx, db), int64(len(before)); got != want {
		t.Fatalf("%d rows after the fold, want one per status: %d", got, want)
	}

	// A change after the fold adds to the folded counts; the next fold
	// folds the folded rows with it.
	if err := approve(ctx, db, vs[1]); err != nil {
		t.Fatal(err)
	}
	before["verification/pending"], before["verification/approved"] = 0, 2
	if after := statusCounts(t, ctx, db); !maps.Equal(after, before) {
		t.Fatalf("counts after a change %v, want %v", after, before)
	}
	if n, ok, err := db.foldStatusCounts(ctx); err != nil || !ok || n != int64(len(before))+2 {
		t.Fatalf("second fold: %d rows, %v, %v; want %d", n, ok, err, len(before)+2)
	}
	if after := statusCounts(t, ctx, db); !maps.Equal(after, before) {
		t.Fatalf("counts after the second fold %v, want %v", after, before)
	}
}

// A fold does not wait for a writer in progress and leaves its change, not
// yet committed, for the next fold; a writer does not wait for a fold in
// progress; and a second fold while one is in progress returns at once,
// having done nothing. Each step that would wait instead fails at its
// deadline.
func TestFoldWaitsForNoOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clk := storetest.NewClock()
	db := openFolding(t, clk.Now)
	if err := storetest.CreateMessage(ctx, db, storetest.NewMessage("+15550000001", "x", 1)); err != nil {
		t.Fatal(err)
	}
	soon := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 10*time.Second) }

	// A writer holds its new message and its count, uncommitted.
	inTx, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
			m := storetest.NewMessage("+15550000002", "x", 1)
			m.Status, m.Reason, m.Parts[0].Status = simgate.StatusQueued, "accepted", simgate.StatusQueued
			if err := tx.InsertMessage(ctx, m, nil); err != nil {
				return err
			}
			close(inTx)
			<-release
			return nil
		})
	}()
	<-inTx
	fctx, fcancel := soon()
	n, ok, err := db.foldStatusCounts(fctx)
	fcancel()
	if err != nil || !ok || n != 1 {
		t.Errorf("fold beside a writer: %d rows, %v, %v; want the 1 committed", n, ok, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := statusCounts(t, ctx, db), map[string]int{"message/queued": 2}; !maps.Equal(got, want) {
		t.Fatalf("counts after the writer committed %v, want %v", got, want)
	}
	if got, want := countRows(t, ctx, db), int64(2); got != want {
		t.Fatalf("%d rows, want the folded one and the writer's", got)
	}

	// A fold in progress: its transaction holds the rows it deleted.
	folding, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer folding.Rollback(context.WithoutCancel(ctx))
	if err := folding.QueryRow(ctx, `SELECT status_counts_fold()`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("fold in a transaction: %d rows, %v", n, err)
	}
	wctx, wcancel := soon()
	err = storetest.CreateMessage(wctx, db, storetest.NewMessage("+15550000003", "x", 1))
	wcancel()
	if err != nil {
		t.Errorf("writer beside a fold: %v", err)
	}
	fctx, fcancel = soon()
	n, ok, err = db.foldStatusCounts(fctx)
	fcancel()
	if err != nil || ok || n != 0 {
		t.Errorf("fold beside a fold: %d rows, %v, %v; want none, not folded", n, ok, err)
	}
	if err := folding.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := statusCounts(t, ctx, db), map[string]int{"message/queued": 3}; !maps.Equal(got, want) {
		t.Fatalf("counts after both %v, want %v", got, want)
	}
}

// Writers create, send and approve while folds run one after the other:
// the counts stay those of the tables, and no transaction fails.
func TestFoldConcurrently(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clk := storetest.NewClock()
	db := openFolding(t, clk.Now)
	const workers, each = 6, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				to := fmt.Sprintf("+1555%03d%04d", w, i)
				if err := storetest.CreateMessage(ctx, db, storetest.NewMessage(to, "x", 1)); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				v, err := createVerification(ctx, db, to, clk.Now().Add(time.Hour))
				if err == nil && i%2 == 0 {
					err = approve(ctx, db, v)
				}
				if err == nil && i%3 != 0 {
					_, err = sendOne(ctx, db, fmt.Sprintf("host%d", w))
				}
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	folds := make(chan int)
	go func() {
		n := 0
		defer func() { folds <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, ok, err := db.foldStatusCounts(ctx); err != nil {
				t.Errorf("fold: %v", err)
				return
			} else if ok {
				n++
			}
		}
	}()
	wg.Wait()
	close(stop)
	t.Logf("%d folds", <-folds)
	want := tableCounts(t, ctx, db)
	if got := nonzero(statusCounts(t, ctx, db)); !maps.Equal(got, want) {
		t.Fatalf("counts %v, want those of the tables: %v", got, want)
	}
	if _, _, err := db.foldStatusCounts(ctx); err != nil {
		t.Fatal(err)
	}
	if got := nonzero(statusCounts(t, ctx, db)); !maps.Equal(got, want) {
		t.Fatalf("counts after a last fold %v, want those of the tables: %v", got, want)
	}
}
