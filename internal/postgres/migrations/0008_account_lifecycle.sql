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
