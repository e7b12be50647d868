-- The credentials epoch: every change that ends a user's sessions (password change or
-- reset, MFA on or off, an approved recovery) adds one to users.cred_epoch, and a
-- session or pending login is only ever inserted while the epoch it was checked under
-- is still current. A sign-in that verified the old password just before a change can
-- then never open a session after it. Existing rows start at epoch 0, which is every
-- user's current epoch, so nobody is signed out by the upgrade.
ALTER TABLE users ADD COLUMN cred_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN cred_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pending_logins ADD COLUMN cred_epoch INTEGER NOT NULL DEFAULT 0;
