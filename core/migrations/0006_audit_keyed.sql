-- The audit chain becomes keyed (HMAC-SHA256 with a key held outside the database, covering seq and at).
-- Rows written before this migration keep their unkeyed sha256 and are marked alg = 'sha256'; the first
-- keyed entry (kind 'audit.chain_keyed', written by the app on its next append) records how many legacy
-- entries precede it and the legacy head hash, so `safety audit verify` checks the old prefix as before
-- and the keyed part after it (docs/operations.md, "Audit chain").
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS alg TEXT NOT NULL DEFAULT 'sha256';
ALTER TABLE audit_log ALTER COLUMN alg SET DEFAULT 'hmac-sha256';
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_alg_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_alg_check CHECK (alg IN ('sha256', 'hmac-sha256'));

-- TRUNCATE skips row triggers: refuse it with a statement trigger of its own.
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
