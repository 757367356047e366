package txn

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Limits of a group-commit batch. A batch is committed as soon as no other
// caller waits for the writer; these bound it when callers keep arriving, so
// that the first caller of a busy batch does not wait for the last.
const (
	// maxBatchAge is how long after its BEGIN a batch takes new callers.
	maxBatchAge = 2 * time.Millisecond
	// maxBatchCallers is how many callers' transactions a batch holds.
	maxBatchCallers = 64
	// maxStmts bounds the writer's cache of prepared statements. The store's
	// statements are literals, so the cache never fills in practice; the
	// bound keeps a query built from input from growing it without limit.
	maxStmts = 256
)

// errClosed is returned to writers once Close has started.
var errClosed = errors.New("database is closed")

// errBatchLost is the error of the callers of a batch whose transaction
// SQLite rolled back as a whole.
var errBatchLost = errors.New("the write transaction was rolled back by SQLite")

// Writer runs the write transactions of this process on the writer pool's
// one connection and groups them (see "Group commit" in the package comment).
//
// At most one caller holds the writer at a time: the one inside a transaction
// between Begin and its Commit or Rollback, or one finishing a batch. The
// holder owns batch, stmts and unprepared; mu guards only the hand-over.
type Writer struct {
	db *sql.DB // the writer pool, one connection

	mu     sync.Mutex
	busy   bool            // the writer is held
	queue  []chan struct{} // callers waiting for it, oldest first
	closed bool

	batch      *batch               // the open transaction, nil between batches
	stmts      map[string]*sql.Stmt // prepared on the writer connection
	unprepared map[string]bool      // seen in the batch, to prepare after it

	maxAge    time.Duration // maxBatchAge; tests lengthen it
	commits   atomic.Int64  // batches committed, for tests
	committed chan struct{} // signalled after each commit, for the checkpointer

	// stuck is the error of every write while the WAL cannot be
	// checkpointed past walBound; nil otherwise (Checkpointer.assess).
	stuck atomic.Pointer[error]
}

// batch is one SQLite transaction (BEGIN IMMEDIATE ... COMMIT) holding the
// released savepoints of one or more callers.
type batch struct {
	conn    *sql.Conn
	tx      *sql.Tx
	started time.Time
	stmts   map[string]*sql.Stmt // tx-bound forms of writer.stmts
	callers int                  // savepoints released into it

	done chan struct{} // closed once the batch has ended
	err  error         // the COMMIT's error, set before done is closed
}

// NewWriter returns the writer of the pool db, which must hold one
// connection (SetMaxOpenConns(1)) whose transactions begin with BEGIN
// IMMEDIATE (go-sqlite3's _txlock=immediate). The writer uses db's one
// connection from then on: nothing else may write through db.
func NewWriter(db *sql.DB) *Writer {
	return &Writer{db: db, stmts: make(map[string]*sql.Stmt), unprepared: make(map[string]bool), maxAge: maxBatchAge,
		committed: make(chan struct{}, 1)}
}

// acquire waits until the caller holds the writer, or ctx is done.
func (w *Writer) acquire(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errClosed
	}
	if !w.busy {
		w.busy = true
		w.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	w.queue = append(w.queue, ch)
	w.mu.Unlock()

	select {
	case <-ch:
	case <-ctx.Done():
		w.mu.Lock()
		if i := slices.Index(w.queue, ch); i >= 0 {
			w.queue = slices.Delete(w.queue, i, i+1)
			w.mu.Unlock()
			return ctx.Err()
		}
		w.mu.Unlock()
		// The writer was handed to us as we gave up: pass it on, so that the
		// batch we may have been expected to join still ends.
		w.leave()
		return ctx.Err()
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		w.leave()
		return errClosed
	}
	return nil
}

// leave is called by the holder of the writer when it is done with it. The
// writer goes to the next waiting caller, who joins the open batch; when no
// one waits, or the batch is full, the holder commits the batch first. So a
// batch grows while callers queue for the writer and a lone caller commits at
// once.
func (w *Writer) leave() {
	w.mu.Lock()
	if len(w.queue) > 0 && !w.full() {
		w.handOver()
		return
	}
	w.mu.Unlock()

	w.endBatch()

	w.mu.Lock()
	if len(w.queue) > 0 {
		w.handOver()
		return
	}
	w.busy = false
	w.mu.Unlock()
}

// handOver gives the writer to the oldest waiting caller and unlocks mu.
func (w *Writer) handOver() {
	ch := w.queue[0]
	w.queue = slices.Delete(w.queue, 0, 1)
	w.mu.Unlock()
	close(ch)
}

// full reports whether the open batch should take no more callers.
func (w *Writer) full() bool {
	b := w.batch
	return b != nil && (b.callers >= maxBatchCallers || time.Since(b.started) >= w.maxAge)
}

// open starts a batch unless one is open. The caller holds the writer.
func (w *Writer) open() error {
	if w.batch != nil {
		return nil
	}
	// The batch belongs to no caller: no caller's context may roll it back.
	ctx := context.Background()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return err
	}
	// BEGIN IMMEDIATE: the writer pool's DSN sets _txlock=immediate.
	t, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return err
	}
	w.batch = &batch{conn: conn, tx: t, started: time.Now(), stmts: make(map[string]*sql.Stmt), done: make(chan struct{})}
	return nil
}

// endBatch commits the open batch, or rolls it back when no caller released
// a savepoint into it, and answers its callers. The caller holds the writer.
func (w *Writer) endBatch() {
	b := w.batch
	if b == nil {
		return
	}
	w.batch = nil
	var err error
	if b.callers == 0 {
		b.tx.Rollback()
	} else if err = b.tx.Commit(); err != nil {
		err = fmt.Errorf("cannot commit: %w", err)
	} else {
		w.commits.Add(1)
		select {
		case w.committed <- struct{}{}:
		default:
		}
	}
	b.conn.Close()
	b.err = err
	close(b.done)
	w.prepare()
}

// fail ends the open batch with err for all its callers, after SQLite rolled
// back its transaction. The caller holds the writer.
func (w *Writer) fail(err error) {
	b := w.batch
	if b == nil {
		return
	}
	w.batch = nil
	b.tx.Rollback()
	b.conn.Close()
	b.err = err
	close(b.done)
}

// lost reports whether SQLite rolled back the open batch's transaction, as
// it does for an I/O error, a full disk or an interrupted write in any
// statement. A SAVEPOINT would then quietly start a new transaction without
// the other callers' writes.
func (w *Writer) lost() bool {
	b := w.batch
	if b == nil {
		return true
	}
	auto := false
	err := b.conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("writer connection is a %T", dc)
		}
		auto = c.AutoCommit()
		return nil
	})
	return err != nil || auto
}

// stmt returns the prepared form of query within the open batch, or nil if
// it has none yet. Only single statements are prepared: a prepared statement
// would run only the first of several.
func (w *Writer) stmt(query string) *sql.Stmt {
	b := w.batch
	if s := b.stmts[query]; s != nil {
		return s
	}
	s := w.stmts[query]
	if s == nil {
		if len(w.stmts)+len(w.unprepared) < maxStmts && !strings.Contains(strings.TrimRight(query, " \t\r\n;"), ";") {
			w.unprepared[query] = true
		}
		return nil
	}
	// StmtContext reuses the statement prepared on this connection.
	ts := b.tx.StmtContext(context.Background(), s)
	b.stmts[query] = ts
	return ts
}

// prepare prepares the statements first seen in the last batch, now that
// the connection is back in the pool (a Prepare on the pool needs it). The
// caller holds the writer.
func (w *Writer) prepare() {
	for q := range w.unprepared {
		delete(w.unprepared, q)
		s, err := w.db.PrepareContext(context.Background(), q)
		if err != nil {
			continue // it runs unprepared, and reports its error there
		}
		w.stmts[q] = s
	}
}

// Close commits the open batch, waiting up to ctx for the caller holding
// the writer, and refuses writes from then on.
func (w *Writer) Close(ctx context.Context) error {
	err := w.acquire(ctx)
	if errors.Is(err, errClosed) {
		return nil
	} else if err != nil {
		return fmt.Errorf("cannot finish writes: %w", err)
	}
	w.endBatch()
	for _, s := range w.stmts {
		s.Close()
	}
	clear(w.stmts)
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	// The callers waiting are told the database is closed, one by one.
	w.leave()
	return nil
}

// savepoint is the name of a caller's savepoint. Callers hold the writer one
// after another, so theirs never nest.
const savepoint = "simgate_caller"

// Begin takes the writer and opens a savepoint for the caller in the
// open batch, starting one if needed. It fails at once while the WAL is
// stuck (see Checkpointer). The caller must end the transaction with Commit
// or Rollback: until then no other write can start.
func (w *Writer) Begin(ctx context.Context) (_ *Tx, err error) {
	if err := w.stuckErr(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := w.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			w.leave()
		}
	}()
	if err := w.open(); err != nil {
		return nil, err
	}
	wt := &Tx{w: w, b: w.batch, ctx: ctx}
	if _, err := wt.exec(`SAVEPOINT ` + savepoint); err != nil {
		if w.lost() {
			w.fail(fmt.Errorf("%w: %w", errBatchLost, err))
		}
		return nil, err
	}
	return wt, nil
}

// Tx is one caller's part of a batch: a savepoint. It has the methods of
// *sql.Tx that the store uses.
type Tx struct {
	w    *Writer
	b    *batch
	ctx  context.Context // of Begin: once done, statements and Commit fail
	rows []*sql.Rows     // closed before the savepoint ends
	end  bool            // Commit or Rollback was called
	err  error           // the batch was lost under this caller
}

// usable returns why the caller may not run a statement now, if it may not.
func (t *Tx) usable(ctx context.Context) error {
	switch {
	case t.end:
		return sql.ErrTxDone
	case t.err != nil:
		return t.err
	}
	if err := t.ctx.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

// exec runs a statement of the writer's own (SAVEPOINT, RELEASE, ...).
func (t *Tx) exec(query string) (sql.Result, error) {
	if s := t.w.stmt(query); s != nil {
		return s.ExecContext(context.Background())
	}
	return t.b.tx.ExecContext(context.Background(), query)
}

// checkLost marks the caller and the batch failed if the statement error err
// made SQLite roll back the whole transaction.
func (t *Tx) checkLost(err error) {
	if err == nil || t.err != nil || !t.w.lost() {
		return
	}
	t.err = fmt.Errorf("%w: %w", errBatchLost, err)
	t.w.fail(t.err)
}

// The statements of a caller run with the cancellation of their context
// removed (context.WithoutCancel): go-sqlite3 interrupts a statement whose
// context is done, and SQLite answers an interrupted write inside a
// transaction by rolling back the whole transaction, which here holds other
// callers' writes. A done context is seen before each statement instead, and
// the caller's error rolls back its own savepoint.

// ExecContext runs a statement in the caller's savepoint.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	var r sql.Result
	var err error
	if s := t.w.stmt(query); s != nil {
		r, err = s.ExecContext(context.WithoutCancel(ctx), args...)
	} else {
		r, err = t.b.tx.ExecContext(context.WithoutCancel(ctx), query, args...)
	}
	t.checkLost(err)
	return r, err
}

// QueryContext runs a query in the caller's savepoint. Its rows are closed
// at the latest when the transaction ends.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	// Not from the statement cache: two open *sql.Rows of one query would
	// share, and reset, one SQLite statement.
	rows, err := t.b.tx.QueryContext(context.WithoutCancel(ctx), query, args...)
	if err != nil {
		t.checkLost(err)
		return nil, err
	}
	t.rows = append(t.rows, rows)
	return rows, nil
}

// QueryRowContext runs a query that returns at most one row in the caller's
// savepoint.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if err := t.usable(ctx); err != nil {
		// A done context makes database/sql return a Row holding the
		// error, without running the query.
		done, cancel := context.WithCancelCause(ctx)
		cancel(err)
		return t.b.tx.QueryRowContext(done, query, args...)
	}
	if s := t.w.stmt(query); s != nil {
		return s.QueryRowContext(context.WithoutCancel(ctx), args...)
	}
	return t.b.tx.QueryRowContext(context.WithoutCancel(ctx), query, args...)
}

// Commit releases the caller's savepoint into the batch, hands the writer on
// and returns once the batch is committed, with the COMMIT's error.
func (t *Tx) Commit() error {
	if t.end {
		return sql.ErrTxDone
	}
	if err := t.usable(context.Background()); err != nil {
		t.rollback()
		return err
	}
	t.end = true
	t.closeRows()
	w, b := t.w, t.b
	if w.lost() {
		// A Row's error (a Scan) may have hidden the statement that lost it.
		t.err = errBatchLost
		w.fail(t.err)
		w.leave()
		return t.err
	}
	if _, err := t.exec(`RELEASE ` + savepoint); err != nil {
		t.end = false
		t.rollback()
		return fmt.Errorf("cannot release savepoint: %w", err)
	}
	b.callers++
	w.leave()
	<-b.done
	return b.err
}

// Rollback undoes the caller's writes, leaving the rest of the batch alone.
// If the batch held other callers' writes, which this caller may have read,
// it returns once they are committed, so that nothing it read is reported
// before it is durable. It does nothing after Commit.
func (t *Tx) Rollback() error {
	if t.end {
		return sql.ErrTxDone
	}
	t.rollback()
	return nil
}

func (t *Tx) rollback() {
	t.end = true
	t.closeRows()
	w, b := t.w, t.b
	if t.err == nil && w.batch == b {
		_, err := t.exec(`ROLLBACK TO ` + savepoint)
		if err == nil {
			_, err = t.exec(`RELEASE ` + savepoint)
		}
		if err != nil {
			w.fail(fmt.Errorf("%w: %w", errBatchLost, err))
		} else if w.lost() {
			w.fail(errBatchLost)
		}
	}
	wait := b.callers > 0
	w.leave()
	if wait {
		<-b.done
	}
}

func (t *Tx) closeRows() {
	for _, r := range t.rows {
		r.Close()
	}
	t.rows = nil
}
