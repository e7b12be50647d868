-- SSH keys and recovery requests (issue 5). Times are INTEGER Unix microseconds.

-- A fingerprint is unique across every account, as on GitHub: one key proves one
-- account, so a signature can never be evidence for two.
CREATE TABLE ssh_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    public_key   TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE UNIQUE INDEX ssh_keys_fingerprint_key ON ssh_keys (fingerprint);
CREATE INDEX ssh_keys_user_id_idx ON ssh_keys (user_id, created_at DESC);

-- user_id is NULL for decoys (logins that name no account); subject is what the
-- per-account limit counts ("user:<id>", or "login:<fold>" for decoys).
CREATE TABLE recovery_requests (
    id              TEXT    PRIMARY KEY,
    user_id         INTEGER REFERENCES users (id) ON DELETE CASCADE,
    subject         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    challenge       TEXT    NOT NULL,
    cancel_hash     BLOB    NOT NULL,
    failures        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    ip              TEXT    NOT NULL DEFAULT '',
    user_agent      TEXT    NOT NULL DEFAULT '',
    method          TEXT    NOT NULL DEFAULT '',
    key_fingerprint TEXT    NOT NULL DEFAULT '',
    key_created_at  INTEGER,
    token_name      TEXT    NOT NULL DEFAULT '',
    verified_at     INTEGER,
    decided_at      INTEGER,
    reason          TEXT    NOT NULL DEFAULT '',
    cancelled_at    INTEGER,
    reminders       INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX recovery_requests_cancel_hash_key ON recovery_requests (cancel_hash);
CREATE INDEX recovery_requests_subject_idx ON recovery_requests (subject, created_at);
CREATE INDEX recovery_requests_ip_idx ON recovery_requests (ip, created_at);
CREATE INDEX recovery_requests_status_idx ON recovery_requests (status, created_at DESC);
CREATE INDEX recovery_requests_user_id_idx ON recovery_requests (user_id);
