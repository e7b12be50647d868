package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

const sessionColumns = `id, user_id, token_hash, created_at, last_seen_at, expires_at, reauth_at, ip, user_agent, cred_epoch, method, mfa_at`

func scanSession(row interface{ Scan(...any) error }) (*auth.Session, error) {
	var x auth.Session
	err := row.Scan(&x.ID, &x.UserID, &x.TokenHash, timeCol{&x.CreatedAt}, timeCol{&x.LastSeenAt},
		timeCol{&x.ExpiresAt}, timeCol{&x.ReauthAt}, &x.IP, &x.UserAgent, &x.CredEpoch, &x.Method, timeCol{&x.MFAAt})
	if err != nil {
		return nil, err
	}
	return &x, nil
}

// insertSession inserts a session only while the user's cred_epoch is still the one
// the session was opened under. Check and insert are one statement, so no credential
// change can commit between them; user_id and cred_epoch come from the user's row.
const insertSession = `INSERT INTO sessions
	(user_id, token_hash, created_at, last_seen_at, expires_at, reauth_at, ip, user_agent, method, mfa_at, cred_epoch)
	SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ?, cred_epoch FROM users WHERE id = ? AND cred_epoch = ?`

func insertSessionArgs(x *auth.Session) []any {
	return []any{x.TokenHash, micros(x.CreatedAt), micros(x.LastSeenAt), micros(x.ExpiresAt),
		micros(x.ReauthAt), x.IP, x.UserAgent, sessionMethod(x), micros(x.MFAAt), x.UserID, x.CredEpoch}
}

// sessionMethod is the method stored for x; an unset one is a password-only session.
func sessionMethod(x *auth.Session) string {
	if x.Method == "" {
		return auth.SessionPassword
	}
	return x.Method
}

// insertedID reads the id of the row insertSession added. No row means the epoch moved
// on (or the user is gone): ErrCredentialsChanged.
func insertedID(res sql.Result, err error) (int64, error) {
	n, err := rowsAffected(res, err)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, auth.ErrCredentialsChanged
	}
	return res.LastInsertId()
}

// CreateSession inserts x and sets x.ID, only while the user's cred_epoch equals
// x.CredEpoch; otherwise it inserts nothing and returns ErrCredentialsChanged.
func (s *Store) CreateSession(ctx context.Context, x *auth.Session) error {
	var id int64
	err := s.write(ctx, func(t *wtx) (err error) {
		id, err = insertedID(t.ExecContext(ctx, insertSession, insertSessionArgs(x)...))
		return err
	})
	if err != nil {
		return mapErr("create session", err)
	}
	x.ID = auth.SessionID(id)
	return nil
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

// SetSessionMFA records a second factor proved by the session; ErrNotFound when the
// session is gone.
func (s *Store) SetSessionMFA(ctx context.Context, id auth.SessionID, method string, at time.Time) error {
	return mapErr("set session mfa", mustOne(s.exec(ctx,
		`UPDATE sessions SET method = ?, mfa_at = ? WHERE id = ?`, method, micros(at), id)))
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

// DeleteSessions deletes every session of the user except keep (0: all), with the
// same epoch bump as every other way sessions end, in one transaction.
func (s *Store) DeleteSessions(ctx context.Context, user auth.UserID, keep auth.SessionID) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) error {
		var err error
		n, err = deleteSessions(ctx, tx, user, keep)
		return err
	})
	return int(n), mapErr("delete sessions", err)
}

// deleteSessions ends the user's sessions except keep inside a wider transaction.
// Session ids start at 1, so keep == 0 spares none. Callers run it before they touch
// the factor tables: the postgres store needs the user's row locked first (see its
// deleteSessions), and both stores keep one order so they read alike.
//
// It adds one to the user's cred_epoch and gives the kept session the new epoch, so a
// sign-in that checked the old credentials cannot insert its session or pending login
// afterwards, and the session that made the change stays current.
func deleteSessions(ctx context.Context, q *wtx, user auth.UserID, keep auth.SessionID) (int64, error) {
	var epoch int64
	err := q.QueryRowContext(ctx, `UPDATE users SET cred_epoch = cred_epoch + 1 WHERE id = ?
		RETURNING cred_epoch`, user).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil // no such user, so no sessions: the foreign keys cascade
	}
	if err != nil {
		return 0, err
	}
	// Sign-ins half done (password right, second factor pending) end with the sessions:
	// after a password change or reset, someone who knew the old password must not be
	// able to finish one.
	if _, err := q.ExecContext(ctx, `DELETE FROM pending_logins WHERE user_id = ?`, user); err != nil {
		return 0, err
	}
	n, err := rowsAffected(q.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, user, keep))
	if err != nil {
		return 0, err
	}
	if keep != 0 {
		if _, err := q.ExecContext(ctx, `UPDATE sessions SET cred_epoch = ? WHERE id = ? AND user_id = ?`,
			epoch, keep, user); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// CreatePendingLogin stores the state after a correct password, only while the user's
// cred_epoch equals p.CredEpoch (one conditional INSERT … SELECT, as for sessions);
// otherwise it stores nothing and returns ErrCredentialsChanged.
func (s *Store) CreatePendingLogin(ctx context.Context, p *auth.PendingLogin) error {
	n, err := s.exec(ctx, `INSERT INTO pending_logins
		(token_hash, user_id, created_at, expires_at, ip, user_agent, cred_epoch)
		SELECT ?, id, ?, ?, ?, ?, cred_epoch FROM users WHERE id = ? AND cred_epoch = ?`,
		p.TokenHash, micros(p.CreatedAt), micros(p.ExpiresAt), p.IP, p.UserAgent, p.UserID, p.CredEpoch)
	if err == nil && n == 0 {
		err = auth.ErrCredentialsChanged
	}
	return mapErr("create pending login", err)
}

// PendingSignIn returns the pending login, its user and the TOTP credential with one
// join, so the second-factor step reads once instead of three times.
func (s *Store) PendingSignIn(ctx context.Context, hash []byte) (*auth.PendingSignIn, error) {
	var ps auth.PendingSignIn
	p, u := &ps.Pending, &ps.User
	var c auth.TOTPCredential
	var keyID sql.NullString
	var step sql.NullInt64
	err := s.queryRow(ctx, `SELECT p.token_hash, p.user_id, p.created_at, p.expires_at, p.ip, p.user_agent, p.cred_epoch,
		u.id, u.username, u.email, u.email_verified, u.password_hash, u.is_admin, u.created_at, u.cred_epoch,
		t.key_id, t.ciphertext, t.last_step, t.created_at
		FROM pending_logins p JOIN users u ON u.id = p.user_id
		LEFT JOIN totp_credentials t ON t.user_id = p.user_id
		WHERE p.token_hash = ?`, hash).
		Scan(&p.TokenHash, &p.UserID, timeCol{&p.CreatedAt}, timeCol{&p.ExpiresAt}, &p.IP, &p.UserAgent, &p.CredEpoch,
			&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.PasswordHash, &u.IsAdmin, timeCol{&u.CreatedAt},
			&u.CredEpoch, &keyID, &c.Secret.Ciphertext, &step, timeCol{&c.CreatedAt})
	if err != nil {
		return nil, mapErr("pending sign-in", err)
	}
	if keyID.Valid {
		c.UserID, c.Secret.KeyID, c.LastStep = u.ID, keyID.String, step.Int64
		ps.TOTP = &c
	}
	return &ps, nil
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

// SessionWithUser returns the session, its user and the user's MFA state with one
// join and indexed subqueries, leaving out the columns auth.Store says it does not
// read: each column costs the driver an allocation and a conversion on every
// signed-in request.
func (s *Store) SessionWithUser(ctx context.Context, hash []byte) (*auth.Session, *auth.User, auth.MFAState, error) {
	var x auth.Session
	var u auth.User
	var m auth.MFAState
	err := s.queryRow(ctx, `SELECT s.id, s.user_id, s.created_at, s.last_seen_at,
		s.expires_at, s.reauth_at, s.cred_epoch, s.method, s.mfa_at,
		u.id, u.username, u.email, u.email_verified, u.is_admin, u.created_at, u.cred_epoch,
		EXISTS (SELECT 1 FROM totp_credentials t WHERE t.user_id = u.id),
		(SELECT count(*) FROM webauthn_credentials w WHERE w.user_id = u.id),
		(SELECT deadline FROM mfa_deadlines d WHERE d.user_id = u.id),
		(SELECT count(*) FROM recovery_codes r WHERE r.user_id = u.id),
		(SELECT count(*) FROM recovery_codes r WHERE r.user_id = u.id AND r.used_at IS NULL)
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, hash).
		Scan(&x.ID, &x.UserID, timeCol{&x.CreatedAt}, timeCol{&x.LastSeenAt},
			timeCol{&x.ExpiresAt}, timeCol{&x.ReauthAt}, &x.CredEpoch, &x.Method, timeCol{&x.MFAAt},
			&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.IsAdmin, timeCol{&u.CreatedAt},
			&u.CredEpoch, &m.TOTP, &m.WebAuthnKeys, timeCol{&m.Deadline}, &m.Codes.Total, &m.Codes.Remaining)
	if err != nil {
		return nil, nil, auth.MFAState{}, mapErr("session with user", err)
	}
	m.Enabled = m.TOTP || m.WebAuthnKeys > 0
	x.TokenHash = hash
	return &x, &u, m, nil
}

// The statements of FinishSignIn. Each settles its race by its own condition and
// rows-affected check, exactly as ConsumePendingLogin, AdvanceTOTPStep,
// UseRecoveryCode and CreateSession do on their own.
const (
	finishConsumePending = `DELETE FROM pending_logins WHERE token_hash = ?`
	finishUseCode        = `UPDATE recovery_codes SET used_at = ?
		WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`
)

// FinishSignIn applies a successful sign-in step in one IMMEDIATE transaction: consume
// the pending login, accept the TOTP step or spend the recovery code, insert the
// session under the epoch condition, zero the counters and append the event. Any
// failure rolls everything back, so a factor is never spent without its session and a
// session never opens without its factor. It runs on every sign-in; the write
// connection keeps its statements prepared.
func (s *Store) FinishSignIn(ctx context.Context, f *auth.SignInFinish) error {
	if f.Session == nil {
		return errors.New("sqlite: finish sign-in: no session")
	}
	x := f.Session
	var sessionID, eventID int64
	err := s.write(ctx, func(tx *wtx) error {
		if f.PendingHash != nil {
			n, err := rowsAffected(tx.ExecContext(ctx, finishConsumePending, f.PendingHash))
			if err != nil {
				return err
			}
			if n == 0 {
				return auth.ErrPendingGone
			}
		}
		if f.TOTPStep > 0 {
			n, err := rowsAffected(tx.ExecContext(ctx, advanceStep, f.TOTPStep, x.UserID, f.TOTPStep))
			if err != nil {
				return err
			}
			if n == 0 {
				return auth.ErrFactorUsed
			}
		}
		if f.RecoveryCodeHash != nil {
			n, err := rowsAffected(tx.ExecContext(ctx, finishUseCode,
				micros(x.CreatedAt), x.UserID, f.RecoveryCodeHash))
			if err != nil {
				return err
			}
			if n == 0 {
				return auth.ErrFactorUsed
			}
		}
		var err error
		if sessionID, err = insertedID(tx.ExecContext(ctx, insertSession, insertSessionArgs(x)...)); err != nil {
			return err
		}
		for _, st := range sortedAttemptSteps(f.Counters) {
			if _, err := applyAttemptStep(ctx, tx, st); err != nil {
				return err
			}
		}
		if f.Event != nil {
			res, err := tx.ExecContext(ctx, insertEvent, insertEventArgs(f.Event)...)
			if err != nil {
				return err
			}
			if eventID, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return mapErr("finish sign-in", err)
	}
	// Only now: a rolled-back (or retried) attempt must not leave ids on f.
	x.ID = auth.SessionID(sessionID)
	if f.Event != nil {
		f.Event.ID = eventID
	}
	return nil
}

// sortedAttemptSteps returns a copy of steps sorted by counter (stable), so that every
// transaction writing several counters locks their rows in the same order (on the
// postgres store two sign-ins can then never deadlock on them; SQLite keeps the order
// only so the stores read alike).
func sortedAttemptSteps(steps []auth.AttemptStep) []auth.AttemptStep {
	steps = slices.Clone(steps)
	slices.SortStableFunc(steps, func(a, b auth.AttemptStep) int {
		return cmp.Or(strings.Compare(a.Key.Scope, b.Key.Scope), strings.Compare(a.Key.Key, b.Key.Key))
	})
	return steps
}
