// Package txn is the store's write path: it runs the write transactions of
// the process on the writer pool's one SQLite connection, committing
// concurrent ones together (group commit), and keeps the WAL that those
// commits grow copied back into the database file.
//
//   - Writer (writer.go) groups concurrent write transactions into one
//     SQLite transaction. Writer.Begin returns a Tx, the caller's SAVEPOINT
//     in it, with the methods of *sql.Tx that the store uses; Tx.Commit
//     returns once the shared COMMIT has made the caller's writes durable.
//     Writer.Close commits what is pending and refuses writes from then on.
//   - Checkpointer (checkpoint.go) checkpoints the WAL on a connection of
//     its own after commits, in place of SQLite's automatic checkpoint,
//     which would run inside a COMMIT while every writer waits. When the WAL
//     cannot be copied back and has grown past a bound (a read-only or
//     immutable database file, say), it is stuck: Writer.Begin fails with a
//     simgate.CodeUnavailable error until a checkpoint succeeds again.
//
// Package store (store/store.go) opens the connections, with the settings
// the package relies on (one writer connection, BEGIN IMMEDIATE,
// wal_autocheckpoint=0; see "PRAGMAs" in docs/STORAGE.md), and wraps a Tx in its own
// transaction type, so that no query of the store sees what is below.
//
// # Group commit
//
// With synchronous=FULL every COMMIT waits for an fsync of the WAL, and with
// one writer connection the commits of concurrent writers would run one after
// another, one fsync each. Instead, concurrent write transactions share one
// SQLite transaction (writer.go):
//
//   - a caller takes the writer (callers queue for it, first come first
//     served, giving up when their context is done), opens the batch with
//     BEGIN IMMEDIATE if none is open, and runs its statements inside a
//     SAVEPOINT of its own;
//   - its Commit RELEASEs the savepoint into the batch and hands the writer
//     to the next waiting caller, who joins the same batch. The caller that
//     finds no one waiting (or a batch older than maxBatchAge, or holding
//     maxBatchCallers) COMMITs: one fsync for every caller in the batch;
//   - every Commit returns only once the COMMIT of its batch has returned,
//     with that COMMIT's error, so a caller is answered after the fsync that
//     made its writes durable, exactly as with a transaction of its own. A
//     failed COMMIT fails every caller of the batch; none was told otherwise;
//   - a Rollback, or an error, rolls back to the caller's savepoint and
//     releases it, leaving the other callers' writes in the batch.
//
// A lone caller finds no one waiting and commits at once, so it pays no
// added delay; under load batches form by themselves from the callers that
// queued while the previous batch was being written and fsynced.
//
// Two SQLite behaviours would let one caller undo the others' writes, and the
// writer guards against both. An interrupted write statement rolls back the
// whole transaction, and go-sqlite3 interrupts a statement whose context is
// done, so a caller's statements run with its context's cancellation removed;
// a done context is checked before each statement and at Commit instead, and
// rolls back only that caller's savepoint. An I/O error, a full disk or
// SQLITE_NOMEM also roll back the whole transaction: the writer then sees the
// connection back in autocommit mode and fails the batch for every caller,
// rather than letting the next SAVEPOINT start a new transaction without them.
//
// Readers see a batch's writes once it is committed; since a caller returns
// only after the COMMIT, that is no later than before.
//
// The writer keeps a prepared statement for each single statement it runs
// (prepared on the pool once a batch ends, then reused by every batch through
// sql.Tx.StmtContext): database/sql would otherwise prepare and finalize every
// statement each time it runs.
package txn
