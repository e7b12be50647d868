-- A deleted account's username stays reserved for a while, so that nobody can take it
-- over and receive what was meant for its former owner. The row outlives the user on
-- purpose: no foreign key.
CREATE TABLE reserved_usernames (
    username_key   TEXT        PRIMARY KEY,
    user_id        BIGINT      NOT NULL,
    reserved_until TIMESTAMPTZ NOT NULL
);

-- An operator may disable an account: it can no longer sign in, and its sessions end.
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;

-- The token or SSH key that verified a recovery request, so that approval can check,
-- in its own statement, that the evidence still holds: revoked, removed or expired
-- evidence closes the request instead. No foreign key: the evidence going away is
-- exactly what must be noticed. Requests verified before these columns existed have
-- NULL here and are not re-checked.
ALTER TABLE recovery_requests ADD COLUMN evidence_token_id BIGINT;
ALTER TABLE recovery_requests ADD COLUMN evidence_key_id BIGINT;
