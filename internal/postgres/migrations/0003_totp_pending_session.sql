-- A pending authenticator setup belongs to the session that started it: no other
-- session (a stale or stolen one) may read its secret or confirm it. Rows from before
-- this column (session 0) match no session and simply expire.
ALTER TABLE totp_pending ADD COLUMN session_id BIGINT NOT NULL DEFAULT 0;
