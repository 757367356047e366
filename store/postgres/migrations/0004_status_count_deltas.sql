-- 0004_status_count_deltas: status_counts becomes a log of changes to the
-- counts, summed when read, so that writers no longer share its rows.
--
-- Before, status_counts held one row per (entity, status), and the trigger
-- updated it in the transaction of each change. Every writer of a message
-- or a verification then waited for the same few rows until the one before
-- it committed: creates took turns on the row of 'queued' through their
-- COMMIT and its flush, and two transactions that took two of the rows in
-- opposite orders (a finish and a claim in one transaction, which lock
-- 'sending' and 'sent', then 'queued', against a lone claim, 'queued', then
-- 'sending') deadlocked, and PostgreSQL aborted one of them.
--
-- Now the trigger only inserts: +1 under the new status, -1 under the old
-- one. An insert locks no row another transaction could want, so writers
-- neither wait for each other here nor deadlock. The count of a status is
-- the sum of its rows (StatusCounts, calls.go). status_counts_fold folds the
-- rows into one per (entity, status); the store runs it every few seconds
-- (fold.go), so that the sum reads a few rows plus the changes since.
--
-- The rows already there are the first base rows, as they are. The
-- identity column is a key for the rows the fold deletes: PostgreSQL's
-- logical replication needs one to replicate deletes.
ALTER TABLE status_counts DROP CONSTRAINT status_counts_pkey;
ALTER TABLE status_counts ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;

COMMENT ON TABLE status_counts IS
    'messages and verifications by status: the count of (entity, status) is the sum of n over its rows';

-- status_counts_count keeps status_counts for the six status_counts_*
-- triggers of 0001 (they call it by name, so they keep working); its
-- argument is the entity ('message' or 'verification'). An insert adds 1
-- under the new status, a delete -1 under the old one, an update that
-- changes the status both.
CREATE OR REPLACE FUNCTION status_counts_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO status_counts (entity, status, n) VALUES (TG_ARGV[0], NEW.status, 1);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO status_counts (entity, status, n) VALUES (TG_ARGV[0], OLD.status, -1);
    ELSE
        INSERT INTO status_counts (entity, status, n) VALUES (TG_ARGV[0], OLD.status, -1), (TG_ARGV[0], NEW.status, 1);
    END IF;
    RETURN NULL;
END;
$$;

-- status_counts_fold replaces the rows of status_counts that its snapshot
-- sees with one row per (entity, status) holding their sum, and returns how
-- many rows it folded. It is one statement, so a reader sees the rows
-- before or after it, never half of it, and the sums do not change.
-- Rows of transactions still in progress are not in its snapshot: they are
-- left as they are, for the next fold. It waits for nothing: the rows it
-- deletes are committed, and writers only insert; and only one fold runs at
-- a time (a transaction-scoped advisory lock, tried and not waited for):
-- another host's fold in progress makes it return NULL at once, having done
-- nothing. A status whose count fell to 0 keeps its row, as before.
CREATE FUNCTION status_counts_fold() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('status_counts:fold', 0)) THEN
        RETURN NULL;
    END IF;
    WITH old AS (
        DELETE FROM status_counts RETURNING entity, status, n
    ), base AS (
        INSERT INTO status_counts (entity, status, n)
        SELECT entity, status, sum(n) FROM old GROUP BY entity, status
    )
    SELECT count(*) INTO folded FROM old;
    RETURN folded;
END;
$$;
