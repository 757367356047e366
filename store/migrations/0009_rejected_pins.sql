-- rejected_pins remembers which PIN each SIM rejected, so that no PIN is
-- entered twice, also across restarts: a SIM locks into its PUK after three
-- wrong PINs. Only a keyed fingerprint of the PIN is kept (modem
-- PINFingerprint), never the PIN: its key is not in the database.
CREATE TABLE rejected_pins (
    iccid       TEXT    NOT NULL CHECK (iccid <> ''),
    fingerprint BLOB    NOT NULL CHECK (length(fingerprint) = 32),
    at          INTEGER NOT NULL,
    PRIMARY KEY (iccid, fingerprint)
) STRICT, WITHOUT ROWID;
