-- Tenancy and edits: every case records the integration (API key name) that sent it; an edit of a
-- platform message is its own case, linked to the original's case (edit_of) with the content hash of
-- its revision; moderator/admin keys may be scoped to platforms (NULL = every platform).
ALTER TABLE cases ADD COLUMN IF NOT EXISTS integration TEXT;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS edit_of TEXT;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS revision TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS cases_edit_of_idx ON cases (edit_of) WHERE edit_of IS NOT NULL;
CREATE INDEX IF NOT EXISTS cases_integration_idx ON cases (integration, received_at DESC);
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS platforms TEXT[];
