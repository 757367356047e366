-- budget_counts holds the SMS the API admitted against its budgets (the
-- global hourly and daily budgets, the per-prefix hourly limit), so that a
-- restart does not forget them. A budget's window is cut into 60 buckets of
-- Window/60; a row is the SMS counted under key in the bucket starting at
-- bucket, and is deleted once expires_at (the end of the last window that
-- counts it) has passed.
CREATE TABLE budget_counts (
    key        TEXT    NOT NULL CHECK (key <> ''),
    bucket     INTEGER NOT NULL, -- unix ms
    count      INTEGER NOT NULL CHECK (count > 0),
    expires_at INTEGER NOT NULL, -- unix ms
    PRIMARY KEY (key, bucket)
) STRICT, WITHOUT ROWID;

CREATE INDEX budget_counts_expires ON budget_counts (expires_at);
