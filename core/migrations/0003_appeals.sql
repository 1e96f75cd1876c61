-- Appeals against actioned cases, false-positive marking, and labels fed back into model training.
CREATE TABLE IF NOT EXISTS appeals (
    id              TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    case_id         TEXT NOT NULL REFERENCES cases (case_id),
    reason          TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'upheld', 'overturned')),
    filed_by        TEXT NOT NULL,
    decided_by      TEXT,
    note            TEXT NOT NULL DEFAULT '',
    -- Set when a moderator asked for an overturn; the appeal stays open until the workflow recorded it.
    pending_outcome TEXT CHECK (pending_outcome IN ('overturn')),
    workflow_id     TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at      TIMESTAMPTZ
);
-- At most one open appeal per case.
CREATE UNIQUE INDEX IF NOT EXISTS appeals_one_open_idx ON appeals (case_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS appeals_status_idx ON appeals (status, created_at DESC, id);

ALTER TABLE cases ADD COLUMN IF NOT EXISTS false_positive BOOLEAN NOT NULL DEFAULT false;

-- Human ground truth for the screening model: one label per case and source (the latest wins).
CREATE TABLE IF NOT EXISTS labels (
    case_id     TEXT NOT NULL REFERENCES cases (case_id),
    label       BOOLEAN NOT NULL,              -- true = harmful
    source      TEXT NOT NULL CHECK (source IN ('review', 'appeal')),
    category    TEXT NOT NULL DEFAULT 'none',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, source)
);

CREATE INDEX IF NOT EXISTS audit_log_case_idx ON audit_log (case_id, seq);
CREATE INDEX IF NOT EXISTS cases_received_idx ON cases (received_at DESC, case_id DESC);
