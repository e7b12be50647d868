-- SSH keys and recovery requests (issue 5). Times are timestamptz.

-- A fingerprint is unique across every account, as on GitHub: one key proves one
-- account, so a signature can never be evidence for two.
CREATE TABLE ssh_keys (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    public_key   TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX ssh_keys_fingerprint_key ON ssh_keys (fingerprint);
CREATE INDEX ssh_keys_user_id_idx ON ssh_keys (user_id, created_at DESC);

-- user_id is NULL for decoys (logins that name no account); subject is what the
-- per-account limit counts ("user:<id>", or "login:<fold>" for decoys).
CREATE TABLE recovery_requests (
    id              TEXT    PRIMARY KEY,
    user_id         BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    subject         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    challenge       TEXT    NOT NULL,
    cancel_hash     BYTEA   NOT NULL,
    failures        INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    ip              TEXT    NOT NULL DEFAULT '',
    user_agent      TEXT    NOT NULL DEFAULT '',
    method          TEXT    NOT NULL DEFAULT '',
    key_fingerprint TEXT    NOT NULL DEFAULT '',
    key_created_at  TIMESTAMPTZ,
    token_name      TEXT    NOT NULL DEFAULT '',
    verified_at     TIMESTAMPTZ,
    decided_at      TIMESTAMPTZ,
    reason          TEXT    NOT NULL DEFAULT '',
    cancelled_at    TIMESTAMPTZ,
    reminders       INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX recovery_requests_cancel_hash_key ON recovery_requests (cancel_hash);
CREATE INDEX recovery_requests_subject_idx ON recovery_requests (subject, created_at);
CREATE INDEX recovery_requests_ip_idx ON recovery_requests (ip, created_at);
CREATE INDEX recovery_requests_status_idx ON recovery_requests (status, created_at DESC);
CREATE INDEX recovery_requests_user_id_idx ON recovery_requests (user_id);
