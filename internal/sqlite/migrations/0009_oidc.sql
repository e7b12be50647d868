-- The OpenID Connect provider (SPEC §9.1). Lists are stored as text: scopes and amr
-- space-separated, redirect URIs newline-separated (validated URIs hold neither).
-- Secrets are never stored usable: client secrets as HMAC-SHA256 under the secret key,
-- codes and refresh tokens as SHA-256, access tokens only by the id sealed inside
-- them, private signing keys sealed with AES-256-GCM.

CREATE TABLE oidc_clients (
    id                        TEXT    PRIMARY KEY,
    name                      TEXT    NOT NULL,
    secret_hash               BLOB,
    public                    INTEGER NOT NULL,
    require_mfa               INTEGER NOT NULL,
    consent                   INTEGER NOT NULL,
    redirect_uris             TEXT    NOT NULL,
    post_logout_redirect_uris TEXT    NOT NULL,
    created_at                INTEGER NOT NULL
);

-- A grant outlives its code's redemption so that a second use of the code can find
-- and revoke what the first one issued (its token family).
CREATE TABLE oidc_grants (
    id             TEXT    PRIMARY KEY,
    code_hash      BLOB    NOT NULL UNIQUE,
    client_id      TEXT    NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id     INTEGER NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    nonce          TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    auth_time      INTEGER,
    amr            TEXT    NOT NULL,
    acr            TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    redeemed_at    INTEGER
);

CREATE TABLE oidc_tokens (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    hash       BLOB    UNIQUE,
    grant_id   TEXT    NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id INTEGER NOT NULL,
    scopes     TEXT    NOT NULL,
    auth_time  INTEGER,
    amr        TEXT    NOT NULL,
    acr        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX oidc_tokens_grant_idx ON oidc_tokens (grant_id);
CREATE INDEX oidc_tokens_user_client_idx ON oidc_tokens (user_id, client_id);

CREATE TABLE oidc_consents (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE oidc_keys (
    id          TEXT    PRIMARY KEY,
    alg         TEXT    NOT NULL,
    seal_key_id TEXT    NOT NULL,
    private_key BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);
