-- 0012_services: services (one application's verification settings, the
-- simgate.Service type), the service of each verification, and the
-- service limit of API keys.

-- services holds the services. A zero setting (an empty name, a code_length
-- or ttl_ms of 0, no templates, no countries) is the gateway's, read from the
-- configuration's verify section at each verification. id is "VA" and 32
-- lowercase hex digits, as a Twilio ServiceSid. Services are never deleted:
-- verifications keep naming theirs.
CREATE TABLE services (
    id                  TEXT    PRIMARY KEY CHECK (length(id) = 34 AND id GLOB 'VA[0-9a-f]*'
                                                   AND substr(id, 3) NOT GLOB '*[^0-9a-f]*'),
    friendly_name       TEXT    NOT NULL DEFAULT '',
    code_length         INTEGER NOT NULL DEFAULT 0 CHECK (code_length = 0 OR code_length BETWEEN 4 AND 10),
    ttl_ms              INTEGER NOT NULL DEFAULT 0 CHECK (ttl_ms >= 0),
    templates           TEXT    NOT NULL DEFAULT '{}', -- JSON object: locale -> text
    allowed_countries   TEXT    NOT NULL DEFAULT '',   -- comma-separated ISO 3166 codes
    custom_code_allowed INTEGER NOT NULL DEFAULT 0 CHECK (custom_code_allowed IN (0, 1)),
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    -- The default service is the configuration's verify section under an
    -- id: its row holds the id alone, so that no setting stored here could
    -- differ from the configuration that the gateway applies.
    CHECK (id <> 'VA00000000000000000000000000000000' OR (friendly_name = '' AND code_length = 0 AND ttl_ms = 0
        AND templates = '{}' AND allowed_countries = '' AND custom_code_allowed = 0))
) STRICT;

-- The default service (simgate.DefaultServiceID), which the requests that
-- name no service use, and which every verification made before this
-- migration belongs to.
INSERT INTO services (id, created_at, updated_at)
VALUES ('VA00000000000000000000000000000000', CAST(strftime('%s', 'now') AS INTEGER) * 1000,
        CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- The service of each verification; the verifications made before this
-- migration are the default service's. SQLite refuses to add a column with
-- a REFERENCES clause and a default other than NULL while foreign keys are
-- on, and a migration cannot turn them off (it runs in a transaction), nor
-- rebuild verifications (dropping it would clear messages.verification_id).
-- So the column is added without its foreign key, which is then written into
-- the table's definition in sqlite_schema, as 0005 edits CHECKs: every row
-- holds the default service's id, which exists, and the foreign key check
-- that ends every migration (store/migrate.go) proves it.
ALTER TABLE verifications ADD COLUMN service_id TEXT NOT NULL DEFAULT 'VA00000000000000000000000000000000';
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, 'service_id TEXT NOT NULL DEFAULT ''VA00000000000000000000000000000000''',
                  'service_id TEXT NOT NULL DEFAULT ''VA00000000000000000000000000000000'' REFERENCES services (id)')
WHERE type = 'table' AND name = 'verifications';
PRAGMA writable_schema = RESET;

-- Fail here if the definition did not read as the ALTER TABLE wrote it.
CREATE TEMP TABLE migration_0012 (foreign_key_added INTEGER CHECK (foreign_key_added = 1)) STRICT;
INSERT INTO migration_0012
SELECT count(*) FROM pragma_foreign_key_list('verifications') WHERE "from" = 'service_id' AND "table" = 'services';
DROP TABLE migration_0012;

-- A number has at most one pending verification per service: the lookup
-- of a start and of a check by number is by service and number. (This
-- index changes the schema cookie, so every connection reads the edited
-- definition.)
DROP INDEX verifications_pending;
CREATE INDEX verifications_pending ON verifications (service_id, to_number, created_at)
    WHERE status = 'pending';

-- The services an API key is limited to, comma-separated; '': every
-- service (simgate.APIKey.StoredServices).
ALTER TABLE api_keys ADD COLUMN services TEXT NOT NULL DEFAULT '';
