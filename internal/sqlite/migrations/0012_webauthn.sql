-- WebAuthn security keys and passkeys (SPEC §8).
--
-- webauthn_users holds each account's user handle: 64 random bytes given to
-- authenticators as user.id at registration and returned as userHandle by a passkey,
-- fixed for the life of the account so every key of one account names the same handle.
CREATE TABLE webauthn_users (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle  BLOB    NOT NULL
);
CREATE UNIQUE INDEX webauthn_users_handle_key ON webauthn_users (handle);

-- One row per registered key. credential_id is unique across every account (a key
-- registered twice, or on two accounts, is refused). record is the library's
-- credential record as JSON (public key, flags, transports, AAGUID, attestation);
-- sign_count is kept in its own column because it is what the conditional update
-- that settles replays and clones compares.
CREATE TABLE webauthn_credentials (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB    NOT NULL,
    name          TEXT    NOT NULL,
    record        BLOB    NOT NULL,
    sign_count    INTEGER NOT NULL,
    passkey       INTEGER NOT NULL,
    backed_up     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE UNIQUE INDEX webauthn_credentials_credential_id_key ON webauthn_credentials (credential_id);
CREATE INDEX webauthn_credentials_user_id_idx ON webauthn_credentials (user_id);

-- A begun ceremony: its challenge (inside session_data, the library's JSON), its kind,
-- and what it is bound to (the session, the pending login's token hash, or nothing
-- for a passkey sign-in). id_hash is SHA-256 of the ceremony id the client holds. A
-- ceremony is used up by its first success: used_at goes from NULL once.
CREATE TABLE webauthn_ceremonies (
    id_hash      BLOB    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    user_id      INTEGER REFERENCES users (id) ON DELETE CASCADE,
    binding      BLOB    NOT NULL,
    session_data BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);
CREATE INDEX webauthn_ceremonies_expires_at_idx ON webauthn_ceremonies (expires_at);
