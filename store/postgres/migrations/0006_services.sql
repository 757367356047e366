-- Services (simgate.Service: one application's verification settings), the
-- service of each verification, and the service limit of API keys: the
-- schema of the SQLite store's 0012 (store/migrations/0012_services.sql),
-- which says what the columns mean.

CREATE TABLE services (
    id                  TEXT    PRIMARY KEY CHECK (id ~ '^VA[0-9a-f]{32}$'),
    friendly_name       TEXT    NOT NULL DEFAULT '',
    code_length         BIGINT  NOT NULL DEFAULT 0 CHECK (code_length = 0 OR code_length BETWEEN 4 AND 10),
    ttl_ms              BIGINT  NOT NULL DEFAULT 0 CHECK (ttl_ms >= 0),
    templates           TEXT    NOT NULL DEFAULT '{}', -- JSON object: locale -> text
    allowed_countries   TEXT    NOT NULL DEFAULT '',   -- comma-separated ISO 3166 codes
    custom_code_allowed BIGINT  NOT NULL DEFAULT 0 CHECK (custom_code_allowed IN (0, 1)),
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    -- The default service's row holds its id alone: its settings are the
    -- configuration's verify section.
    CHECK (id <> 'VA00000000000000000000000000000000' OR (friendly_name = '' AND code_length = 0 AND ttl_ms = 0
        AND templates = '{}' AND allowed_countries = '' AND custom_code_allowed = 0))
);

-- The default service (simgate.DefaultServiceID). The copy of a SQLite
-- database (importsqlite.go) replaces this row with the SQLite one.
INSERT INTO services (id, created_at, updated_at)
VALUES ('VA00000000000000000000000000000000', (extract(epoch FROM now()) * 1000)::bigint,
        (extract(epoch FROM now()) * 1000)::bigint);

-- The verifications made before this migration are the default service's.
ALTER TABLE verifications ADD COLUMN service_id TEXT NOT NULL DEFAULT 'VA00000000000000000000000000000000'
    REFERENCES services (id);

-- At most one pending verification per service and number is looked up.
DROP INDEX verifications_pending;
CREATE INDEX verifications_pending ON verifications (service_id, to_number, created_at)
    WHERE status = 'pending';

ALTER TABLE api_keys ADD COLUMN services TEXT NOT NULL DEFAULT '';
