-- Human review state on cases; exclusive claims with expiry.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS review_queue TEXT;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS review_status TEXT;      -- pending, decided
ALTER TABLE cases ADD COLUMN IF NOT EXISTS reviewer TEXT;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS reviewed_at TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS review JSONB;
CREATE INDEX IF NOT EXISTS cases_review_idx ON cases (review_status, review_queue, received_at);

CREATE TABLE IF NOT EXISTS review_claims (
    case_id     TEXT PRIMARY KEY,
    moderator   TEXT NOT NULL,
    claimed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
