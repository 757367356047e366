-- Verifications by missed call: the user calls a SIM of the pool from the
-- number being verified, and that call approves the verification; no code
-- and no SMS. channel says which kind a verification is (every one before
-- this migration sent a code by SMS); call_to is the number the user must
-- call and call_modem the modem whose SIM has it, both '' for an SMS
-- verification. A missed-call verification keeps a code_length (the
-- configured default), as the SQLite store must (its CHECK wants one and
-- cannot be changed in place); it means nothing there, and the API does not
-- show it.
ALTER TABLE verifications
    ADD COLUMN channel    TEXT NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms', 'missed_call')),
    ADD COLUMN call_to    TEXT NOT NULL DEFAULT '',
    ADD COLUMN call_modem TEXT NOT NULL DEFAULT '',
    ADD CHECK ((channel = 'missed_call') = (call_to <> '') AND (channel = 'missed_call') = (call_modem <> '')),
    ADD CHECK (channel = 'sms' OR code_hash IS NULL);

-- A call looks up the pending missed-call verification of its caller on
-- the modem it reached.
CREATE INDEX verifications_call ON verifications (to_number, call_modem, created_at)
    WHERE status = 'pending' AND channel = 'missed_call';
