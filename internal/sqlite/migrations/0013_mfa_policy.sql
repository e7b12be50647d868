-- The require-mfa policy (SPEC §8): each account's deadline to have a second factor,
-- set at the first sign-in the policy meets it at (plus the grace for non-admins) and
-- only ever moved earlier, so a shorter grace applies at once.
CREATE TABLE mfa_deadlines (
    user_id  INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    deadline INTEGER NOT NULL
);
