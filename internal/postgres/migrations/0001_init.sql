-- Times are timestamptz, written in UTC at microsecond precision from the Service's
-- clock; NULL is Go's zero time ("never").
-- username_key and email_key hold the Go-side case fold of username and email, the
-- same fold the SQLite store uses: lower() here would depend on the database's
-- LC_CTYPE and SQLite's folds only ASCII, so the stores could disagree on which
-- logins collide.

CREATE TABLE users (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       TEXT        NOT NULL,
    username_key   TEXT        NOT NULL,
    email          TEXT        NOT NULL,
    email_key      TEXT        NOT NULL,
    email_verified BOOLEAN     NOT NULL DEFAULT FALSE,
    password_hash  TEXT        NOT NULL,
    is_admin       BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);

CREATE TABLE sessions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ NOT NULL,
    reauth_at    TIMESTAMPTZ,
    ip           TEXT        NOT NULL DEFAULT '',
    user_agent   TEXT        NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at DESC);

CREATE TABLE pending_logins (
    token_hash BYTEA       PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    ip         TEXT        NOT NULL DEFAULT '',
    user_agent TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX pending_logins_user_id_idx ON pending_logins (user_id);

-- attempts is keyed by scope and a free-form key (an account id or a client IP), so it
-- has no foreign key; version settles concurrent writers by compare-and-swap.
CREATE TABLE attempts (
    scope        TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    failures     INTEGER     NOT NULL,
    locks        INTEGER     NOT NULL,
    locked_until TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ,
    version      BIGINT      NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE totp_credentials (
    user_id    BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    key_id     TEXT        NOT NULL,
    ciphertext BYTEA       NOT NULL,
    last_step  BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE totp_pending (
    user_id    BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    key_id     TEXT        NOT NULL,
    ciphertext BYTEA       NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE recovery_codes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA       NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
-- The unique index doubles as the lookup index for using a code.
CREATE UNIQUE INDEX recovery_codes_user_code_key ON recovery_codes (user_id, code_hash);

CREATE TABLE password_resets (
    token_hash BYTEA       PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX password_resets_user_id_idx ON password_resets (user_id);

CREATE TABLE security_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      REFERENCES users (id) ON DELETE CASCADE,
    time       TIMESTAMPTZ NOT NULL,
    event      TEXT        NOT NULL,
    outcome    TEXT        NOT NULL,
    ip         TEXT        NOT NULL DEFAULT '',
    user_agent TEXT        NOT NULL DEFAULT '',
    detail     TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX security_events_user_id_idx ON security_events (user_id, id DESC);

CREATE TABLE outbox (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient  TEXT        NOT NULL,
    subject    TEXT        NOT NULL,
    key_id     TEXT        NOT NULL,
    ciphertext BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE access_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL,
    token_hash   BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX access_tokens_token_hash_key ON access_tokens (token_hash);
CREATE INDEX access_tokens_user_id_idx ON access_tokens (user_id, created_at DESC);
