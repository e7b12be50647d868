-- An email address counts once verified. Only a verified address is unique: an
-- unverified one blocks nobody, so the unique index becomes partial, and a plain index
-- keeps lookups of every copy (the accounts whose copy is dropped when another
-- account verifies the address) indexed. An account whose copy was dropped has an
-- empty email (validation never lets one in otherwise), so it is asked for a new
-- address at sign-in.
DROP INDEX users_email_key;
CREATE UNIQUE INDEX users_email_key ON users (email_key) WHERE email_verified;
CREATE INDEX users_email_key_any ON users (email_key);

-- Emailed links about an address, stored as SHA-256 of the token: purpose 'verify'
-- confirms the account's current address, 'change' a new address that replaces it
-- when the link is followed, 'undo' puts back the address a change replaced.
CREATE TABLE email_links (
    token_hash BYTEA       PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT        NOT NULL,
    email      TEXT        NOT NULL,
    email_key  TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX email_links_user_id_idx ON email_links (user_id, purpose);
