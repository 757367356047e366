-- A check by number after a verification's last allowed check finds that
-- verification (simgate.VerificationTx.SpentVerification), so that it is
-- told its checks are spent rather than that there is no verification.
-- Few rows reach this status, and they reach it once.
CREATE INDEX verifications_spent ON verifications (service_id, to_number, created_at)
    WHERE status = 'max_attempts_reached';
