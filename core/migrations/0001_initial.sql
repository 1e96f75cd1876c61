-- Cases, actions, API keys and the hash-chained audit log.
CREATE TABLE IF NOT EXISTS api_keys (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('ingest', 'moderator', 'admin')),
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS cases (
    case_id          TEXT PRIMARY KEY,
    platform         TEXT NOT NULL,
    channel_id       TEXT NOT NULL,
    author_id        TEXT NOT NULL,
    target_id        TEXT,
    message_id       TEXT,
    event_type       TEXT NOT NULL,
    content          TEXT NOT NULL,
    path             TEXT NOT NULL,
    risk_score       DOUBLE PRECISION NOT NULL,
    category         TEXT NOT NULL,
    category_scores  JSONB NOT NULL DEFAULT '{}',
    decision         TEXT NOT NULL,
    needs_review     BOOLEAN NOT NULL DEFAULT false,
    reasons          JSONB NOT NULL DEFAULT '[]',
    actions          JSONB NOT NULL DEFAULT '[]',
    context          JSONB,
    reasoning        JSONB,
    stage_ms         JSONB NOT NULL DEFAULT '{}',
    model_version    TEXT NOT NULL DEFAULT '',
    policy_version   TEXT NOT NULL DEFAULT '',
    workflow_id      TEXT NOT NULL DEFAULT '',
    run_id           TEXT NOT NULL DEFAULT '',
    event_at         TIMESTAMPTZ,
    received_at      TIMESTAMPTZ NOT NULL,
    completed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cases_author_idx ON cases (platform, author_id, received_at DESC);
CREATE INDEX IF NOT EXISTS cases_target_idx ON cases (platform, target_id, received_at DESC);
CREATE INDEX IF NOT EXISTS cases_channel_idx ON cases (platform, channel_id, received_at DESC);
CREATE INDEX IF NOT EXISTS cases_decision_idx ON cases (decision, received_at DESC);

CREATE TABLE IF NOT EXISTS actions (
    id               BIGSERIAL PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    case_id          TEXT NOT NULL,
    platform         TEXT NOT NULL,
    action           TEXT NOT NULL,
    connector        TEXT NOT NULL,
    status           TEXT NOT NULL,
    request          JSONB NOT NULL,
    response         JSONB,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS actions_case_idx ON actions (case_id);

CREATE TABLE IF NOT EXISTS audit_log (
    seq        BIGSERIAL PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    case_id    TEXT,
    payload    JSONB NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);

-- Append-only: updates and deletes are refused by the database itself.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
