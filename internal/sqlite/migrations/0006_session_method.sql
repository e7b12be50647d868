-- How each session was signed in, and when it last proved a second factor: the
-- OpenID Connect provider's amr/acr claims and forward-auth's two_factor rule read
-- them. Sessions opened before this column existed claim a password only, so they are
-- asked to step up rather than trusted with a factor nobody recorded.
ALTER TABLE sessions ADD COLUMN method TEXT NOT NULL DEFAULT 'password';
ALTER TABLE sessions ADD COLUMN mfa_at INTEGER;
