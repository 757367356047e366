-- A check by number after a verification's last allowed check finds that
-- verification (simgate.VerificationTx.SpentVerification): the SQLite
-- store's 0014 (store/migrations/0014_spent_verifications.sql).
CREATE INDEX verifications_spent ON verifications (service_id, to_number, created_at)
    WHERE status = 'max_attempts_reached';
