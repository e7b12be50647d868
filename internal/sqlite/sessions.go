package sqlite

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

const sessionColumns = `id, user_id, token_hash, created_at, last_seen_at, expires_at, reauth_at, ip, user_agent`

func scanSession(row interface{ Scan(...any) error }) (*auth.Session, error) {
	var x auth.Session
	err := row.Scan(&x.ID, &x.UserID, &x.TokenHash, timeCol{&x.CreatedAt}, timeCol{&x.LastSeenAt},
		timeCol{&x.ExpiresAt}, timeCol{&x.ReauthAt}, &x.IP, &x.UserAgent)
	if err != nil {
		return nil, err
	}
	return &x, nil
}

// CreateSession inserts x and sets x.ID.
func (s *Store) CreateSession(ctx context.Context, x *auth.Session) error {
	return mapErr("create session", retryBusy(ctx, func() error {
		res, err := s.execStmt(ctx, `INSERT INTO sessions
			(user_id, token_hash, created_at, last_seen_at, expires_at, reauth_at, ip, user_agent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			x.UserID, x.TokenHash, micros(x.CreatedAt), micros(x.LastSeenAt), micros(x.ExpiresAt),
			micros(x.ReauthAt), x.IP, x.UserAgent)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		x.ID = auth.SessionID(id)
		return err
	}))
}

// SessionByTokenHash returns the session, expired or not (the Service decides).
func (s *Store) SessionByTokenHash(ctx context.Context, hash []byte) (*auth.Session, error) {
	x, err := scanSession(s.queryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE token_hash = ?`, hash))
	return x, mapErr("session by token hash", err)
}

// TouchSession sets last_seen_at; ErrNotFound when the session is gone.
func (s *Store) TouchSession(ctx context.Context, id auth.SessionID, at time.Time) error {
	return mapErr("touch session", mustOne(s.exec(ctx,
		`UPDATE sessions SET last_seen_at = ? WHERE id = ?`, micros(at), id)))
}

// SetSessionReauth sets reauth_at; ErrNotFound when the session is gone.
func (s *Store) SetSessionReauth(ctx context.Context, id auth.SessionID, at time.Time) error {
	return mapErr("set session reauth", mustOne(s.exec(ctx,
		`UPDATE sessions SET reauth_at = ? WHERE id = ?`, micros(at), id)))
}

// ListSessions returns the user's sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, user auth.UserID) ([]auth.Session, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? ORDER BY created_at DESC, id DESC`, user)
	if err != nil {
		return nil, mapErr("list sessions", err)
	}
	defer rows.Close()
	var xs []auth.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, mapErr("list sessions", err)
		}
		xs = append(xs, *x)
	}
	return xs, mapErr("list sessions", rows.Err())
}

// DeleteSession deletes the user's session id. The user is part of the condition, so
// one account can never end another's session by guessing ids.
func (s *Store) DeleteSession(ctx context.Context, user auth.UserID, id auth.SessionID) error {
	return mapErr("delete session", mustOne(s.exec(ctx,
		`DELETE FROM sessions WHERE id = ? AND user_id = ?`, id, user)))
}

// DeleteSessions deletes every session of the user except keep (0: all).
func (s *Store) DeleteSessions(ctx context.Context, user auth.UserID, keep auth.SessionID) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, user, keep)
	return int(n), mapErr("delete sessions", err)
}

// deleteSessions is DeleteSessions inside a wider transaction. Session ids start at 1,
// so keep == 0 spares none.
func deleteSessions(ctx context.Context, q execer, user auth.UserID, keep auth.SessionID) (int64, error) {
	// Sign-ins half done (password right, second factor pending) end with the sessions:
	// after a password change or reset, someone who knew the old password must not be
	// able to finish one.
	if _, err := q.ExecContext(ctx, `DELETE FROM pending_logins WHERE user_id = ?`, user); err != nil {
		return 0, err
	}
	return rowsAffected(q.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, user, keep))
}

// CreatePendingLogin stores the state after a correct password.
func (s *Store) CreatePendingLogin(ctx context.Context, p *auth.PendingLogin) error {
	_, err := s.exec(ctx, `INSERT INTO pending_logins
		(token_hash, user_id, created_at, expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?)`,
		p.TokenHash, p.UserID, micros(p.CreatedAt), micros(p.ExpiresAt), p.IP, p.UserAgent)
	return mapErr("create pending login", err)
}

// PendingLoginByTokenHash returns it, expired or not.
func (s *Store) PendingLoginByTokenHash(ctx context.Context, hash []byte) (*auth.PendingLogin, error) {
	var p auth.PendingLogin
	err := s.queryRow(ctx, `SELECT token_hash, user_id, created_at, expires_at, ip, user_agent
		FROM pending_logins WHERE token_hash = ?`, hash).
		Scan(&p.TokenHash, &p.UserID, timeCol{&p.CreatedAt}, timeCol{&p.ExpiresAt}, &p.IP, &p.UserAgent)
	if err != nil {
		return nil, mapErr("pending login by token hash", err)
	}
	return &p, nil
}

// ConsumePendingLogin deletes it and reports whether this call deleted it: of two
// requests finishing the same sign-in, only one gets a session.
func (s *Store) ConsumePendingLogin(ctx context.Context, hash []byte) (bool, error) {
	n, err := s.exec(ctx, `DELETE FROM pending_logins WHERE token_hash = ?`, hash)
	if err != nil {
		return false, mapErr("consume pending login", err)
	}
	return one(n), nil
}

// SessionWithUser returns the session and its user with one join.
func (s *Store) SessionWithUser(ctx context.Context, hash []byte) (*auth.Session, *auth.User, error) {
	var x auth.Session
	var u auth.User
	err := s.queryRow(ctx, `SELECT s.id, s.user_id, s.token_hash, s.created_at, s.last_seen_at,
		s.expires_at, s.reauth_at, s.ip, s.user_agent,
		u.id, u.username, u.email, u.email_verified, u.password_hash, u.is_admin, u.created_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, hash).
		Scan(&x.ID, &x.UserID, &x.TokenHash, timeCol{&x.CreatedAt}, timeCol{&x.LastSeenAt},
			timeCol{&x.ExpiresAt}, timeCol{&x.ReauthAt}, &x.IP, &x.UserAgent,
			&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.PasswordHash, &u.IsAdmin, timeCol{&u.CreatedAt})
	if err != nil {
		return nil, nil, mapErr("session with user", err)
	}
	return &x, &u, nil
}
