-- The moderator console: server-side sign-in sessions and per-moderator preferences.
-- Only a SHA-256 of the session token is stored, so a read of this table cannot sign anyone in.
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash  TEXT PRIMARY KEY,
    key_id      BIGINT NOT NULL,
    moderator   TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('moderator', 'admin')),
    csrf_token  TEXT NOT NULL,
    flash       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_expiry_idx ON console_sessions (expires_at);

CREATE TABLE IF NOT EXISTS console_preferences (
    moderator       TEXT PRIMARY KEY,
    -- Blur threat and identity-hate messages until the moderator clicks to reveal them.
    blur_sensitive  BOOLEAN NOT NULL DEFAULT true,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
