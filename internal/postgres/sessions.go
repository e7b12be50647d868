package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

const sessionColumns = `id, user_id, token_hash, created_at, last_seen_at, expires_at, reauth_at, ip, user_agent, cred_epoch, method, mfa_at`

func scanSession(row pgx.Row) (auth.Session, error) {
	var x auth.Session
	err := row.Scan(&x.ID, &x.UserID, &x.TokenHash, timeCol{&x.CreatedAt}, timeCol{&x.LastSeenAt},
		timeCol{&x.ExpiresAt}, timeCol{&x.ReauthAt}, &x.IP, &x.UserAgent, &x.CredEpoch, &x.Method, timeCol{&x.MFAAt})
	return x, err
}

// insertSession inserts a session only while the user's cred_epoch is still the one
// the session was opened under; user_id and cred_epoch come from the user's row.
//
// FOR SHARE is what makes the condition hold at commit, not just at the statement's
// snapshot: under READ COMMITTED a plain SELECT would read the old epoch past an
// uncommitted bump and insert a session the bumping transaction's DELETE (already run)
// never sees. Share-locking the row waits for any transaction that bumped it and then
// re-checks the epoch against the committed row; and a bump that comes later waits for
// this insert to commit, so its DELETE of the sessions sees the new row. (The foreign
// key's own KEY SHARE lock does not conflict with an UPDATE of cred_epoch.)
const insertSession = `INSERT INTO sessions
	(user_id, token_hash, created_at, last_seen_at, expires_at, reauth_at, ip, user_agent, method, mfa_at, cred_epoch)
	SELECT id, $2, $3, $4, $5, $6, $7, $8, $10, $11, cred_epoch FROM users WHERE id = $1 AND cred_epoch = $9
	FOR SHARE
	RETURNING id`

func insertSessionArgs(x *auth.Session) []any {
	return []any{x.UserID, x.TokenHash, ts(x.CreatedAt), ts(x.LastSeenAt), ts(x.ExpiresAt),
		ts(x.ReauthAt), x.IP, x.UserAgent, x.CredEpoch, sessionMethod(x), ts(x.MFAAt)}
}

// sessionMethod is the method stored for x; an unset one is a password-only session.
func sessionMethod(x *auth.Session) string {
	if x.Method == "" {
		return auth.SessionPassword
	}
	return x.Method
}

// scanSessionID reads the id insertSession returned. No row means the epoch moved on
// (or the user is gone): ErrCredentialsChanged.
func scanSessionID(r pgx.Row, id *auth.SessionID) error {
	err := r.Scan(id)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.ErrCredentialsChanged
	}
	return err
}

// CreateSession inserts x and sets x.ID, only while the user's cred_epoch equals
// x.CredEpoch; otherwise it inserts nothing and returns ErrCredentialsChanged.
func (s *Store) CreateSession(ctx context.Context, x *auth.Session) error {
	var id auth.SessionID
	err := s.queryRow(ctx, func(r pgx.Row) error { return scanSessionID(r, &id) },
		insertSession, insertSessionArgs(x)...)
	if err != nil {
		return mapErr("create session", err)
	}
	x.ID = id
	return nil
}

// SessionByTokenHash returns the session, expired or not (the Service decides).
func (s *Store) SessionByTokenHash(ctx context.Context, hash []byte) (*auth.Session, error) {
	var x auth.Session
	err := s.queryRow(ctx, func(r pgx.Row) (err error) { x, err = scanSession(r); return err },
		`SELECT `+sessionColumns+` FROM sessions WHERE token_hash = $1`, hash)
	if err != nil {
		return nil, mapErr("session by token hash", err)
	}
	return &x, nil
}

// TouchSession sets last_seen_at; ErrNotFound when the session is gone.
func (s *Store) TouchSession(ctx context.Context, id auth.SessionID, at time.Time) error {
	return mapErr("touch session", mustOne(s.exec(ctx,
		`UPDATE sessions SET last_seen_at = $1 WHERE id = $2`, ts(at), id)))
}

// SetSessionMFA records a second factor proved by the session; ErrNotFound when the
// session is gone.
func (s *Store) SetSessionMFA(ctx context.Context, id auth.SessionID, method string, at time.Time) error {
	return mapErr("set session mfa", mustOne(s.exec(ctx,
		`UPDATE sessions SET method = $1, mfa_at = $2 WHERE id = $3`, method, ts(at), id)))
}

// SetSessionReauth sets reauth_at; ErrNotFound when the session is gone.
func (s *Store) SetSessionReauth(ctx context.Context, id auth.SessionID, at time.Time) error {
	return mapErr("set session reauth", mustOne(s.exec(ctx,
		`UPDATE sessions SET reauth_at = $1 WHERE id = $2`, ts(at), id)))
}

// ListSessions returns the user's sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, user auth.UserID) ([]auth.Session, error) {
	xs, err := query(ctx, s, func(r pgx.CollectableRow) (auth.Session, error) { return scanSession(r) },
		`SELECT `+sessionColumns+` FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, user)
	return xs, mapErr("list sessions", err)
}

// DeleteSession deletes the user's session id. The user is part of the condition, so
// one account can never end another's session by guessing ids.
func (s *Store) DeleteSession(ctx context.Context, user auth.UserID, id auth.SessionID) error {
	return mapErr("delete session", mustOne(s.exec(ctx,
		`DELETE FROM sessions WHERE id = $1 AND user_id = $2`, id, user)))
}

// DeleteSessions deletes every session of the user except keep (0: all), with the
// same epoch bump as every other way sessions end, in one transaction.
func (s *Store) DeleteSessions(ctx context.Context, user auth.UserID, keep auth.SessionID) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		n, err = deleteSessions(ctx, tx, user, keep)
		return err
	})
	return int(n), mapErr("delete sessions", err)
}

// deleteSessions ends the user's sessions except keep inside a wider transaction.
// Session ids start at 1, so keep == 0 spares none.
//
// It adds one to the user's cred_epoch and gives the kept session the new epoch, so a
// sign-in that checked the old credentials cannot insert its session or pending login
// afterwards, and the session that made the change stays current. The bump comes
// first and callers run this before they touch the factor tables: it locks the user's
// row, which FinishSignIn share-locks before anything else, so the two always lock in
// the same order and cannot deadlock; and a racing insert that already holds the
// share lock commits before the DELETEs below run, so they see its row.
func deleteSessions(ctx context.Context, q querier, user auth.UserID, keep auth.SessionID) (int64, error) {
	var epoch int64
	err := q.QueryRow(ctx, `UPDATE users SET cred_epoch = cred_epoch + 1 WHERE id = $1
		RETURNING cred_epoch`, user).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil // no such user, so no sessions: the foreign keys cascade
	}
	if err != nil {
		return 0, err
	}
	// Sign-ins half done (password right, second factor pending) end with the sessions:
	// after a password change or reset, someone who knew the old password must not be
	// able to finish one.
	if _, err := q.Exec(ctx, `DELETE FROM pending_logins WHERE user_id = $1`, user); err != nil {
		return 0, err
	}
	tag, err := q.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id <> $2`, user, keep)
	if err != nil {
		return 0, err
	}
	if keep != 0 {
		if _, err := q.Exec(ctx, `UPDATE sessions SET cred_epoch = $1 WHERE id = $2 AND user_id = $3`,
			epoch, keep, user); err != nil {
			return 0, err
		}
	}
	return tag.RowsAffected(), nil
}

// CreatePendingLogin stores the state after a correct password, only while the user's
// cred_epoch equals p.CredEpoch (one conditional INSERT … SELECT … FOR SHARE, for the
// reason given at insertSession); otherwise it stores nothing and returns
// ErrCredentialsChanged.
func (s *Store) CreatePendingLogin(ctx context.Context, p *auth.PendingLogin) error {
	n, err := s.exec(ctx, `INSERT INTO pending_logins
		(token_hash, user_id, created_at, expires_at, ip, user_agent, cred_epoch)
		SELECT $1, id, $2, $3, $4, $5, cred_epoch FROM users WHERE id = $6 AND cred_epoch = $7
		FOR SHARE`,
		p.TokenHash, ts(p.CreatedAt), ts(p.ExpiresAt), p.IP, p.UserAgent, p.UserID, p.CredEpoch)
	if err == nil && n == 0 {
		err = auth.ErrCredentialsChanged
	}
	return mapErr("create pending login", err)
}

// PendingSignIn returns the pending login, its user and the TOTP credential with one
// join: the second-factor step makes one round trip to read instead of three.
func (s *Store) PendingSignIn(ctx context.Context, hash []byte) (*auth.PendingSignIn, error) {
	var ps auth.PendingSignIn
	p, u := &ps.Pending, &ps.User
	var c auth.TOTPCredential
	var keyID *string
	var step *int64
	err := s.queryRow(ctx, func(r pgx.Row) error {
		return r.Scan(&p.TokenHash, &p.UserID, timeCol{&p.CreatedAt}, timeCol{&p.ExpiresAt}, &p.IP, &p.UserAgent,
			&p.CredEpoch, &u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.PasswordHash, &u.IsAdmin,
			timeCol{&u.CreatedAt}, &u.CredEpoch, &keyID, &c.Secret.Ciphertext, &step, timeCol{&c.CreatedAt})
	}, `SELECT p.token_hash, p.user_id, p.created_at, p.expires_at, p.ip, p.user_agent, p.cred_epoch,
		u.id, u.username, u.email, u.email_verified, u.password_hash, u.is_admin, u.created_at, u.cred_epoch,
		t.key_id, t.ciphertext, t.last_step, t.created_at
		FROM pending_logins p JOIN users u ON u.id = p.user_id
		LEFT JOIN totp_credentials t ON t.user_id = p.user_id
		WHERE p.token_hash = $1`, hash)
	if err != nil {
		return nil, mapErr("pending sign-in", err)
	}
	if keyID != nil && step != nil {
		c.UserID, c.Secret.KeyID, c.LastStep = u.ID, *keyID, *step
		ps.TOTP = &c
	}
	return &ps, nil
}

// ConsumePendingLogin deletes it and reports whether this call deleted it: of two
// requests finishing the same sign-in, only one gets a session.
func (s *Store) ConsumePendingLogin(ctx context.Context, hash []byte) (bool, error) {
	n, err := s.exec(ctx, `DELETE FROM pending_logins WHERE token_hash = $1`, hash)
	if err != nil {
		return false, mapErr("consume pending login", err)
	}
	return one(n), nil
}

// SessionWithUser returns the session, its user and the user's MFA state with one
// join and indexed subqueries, one round trip, leaving out the columns auth.Store says
// it does not read.
func (s *Store) SessionWithUser(ctx context.Context, hash []byte) (*auth.Session, *auth.User, auth.MFAState, error) {
	var x auth.Session
	var u auth.User
	var m auth.MFAState
	err := s.queryRow(ctx, func(r pgx.Row) error {
		return r.Scan(&x.ID, &x.UserID, timeCol{&x.CreatedAt}, timeCol{&x.LastSeenAt},
			timeCol{&x.ExpiresAt}, timeCol{&x.ReauthAt}, &x.CredEpoch, &x.Method, timeCol{&x.MFAAt},
			&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.IsAdmin, timeCol{&u.CreatedAt},
			&u.CredEpoch, &m.TOTP, &m.WebAuthnKeys, timeCol{&m.Deadline}, &m.Codes.Total, &m.Codes.Remaining)
	}, `SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.reauth_at, s.cred_epoch, s.method, s.mfa_at,
		u.id, u.username, u.email, u.email_verified, u.is_admin, u.created_at, u.cred_epoch,
		EXISTS (SELECT 1 FROM totp_credentials t WHERE t.user_id = u.id),
		(SELECT count(*) FROM webauthn_credentials w WHERE w.user_id = u.id),
		(SELECT deadline FROM mfa_deadlines d WHERE d.user_id = u.id),
		(SELECT count(*) FROM recovery_codes r WHERE r.user_id = u.id),
		(SELECT count(*) FROM recovery_codes r WHERE r.user_id = u.id AND r.used_at IS NULL)
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1`, hash)
	if err != nil {
		return nil, nil, auth.MFAState{}, mapErr("session with user", err)
	}
	m.Enabled = m.TOTP || m.WebAuthnKeys > 0
	x.TokenHash = hash
	return &x, &u, m, nil
}

// FinishSignIn applies a successful sign-in step in one transaction: consume the
// pending login, accept the TOTP step or spend the recovery code, insert the session
// under the epoch condition, zero the counters and append the event. Any failure rolls
// everything back, so a factor is never spent without its session and a session never
// opens without its factor. Each step settles its race by its own condition and
// rows-affected check, as ConsumePendingLogin, AdvanceTOTPStep, UseRecoveryCode and
// CreateSession do on their own; pgx caches the prepared statements per connection.
func (s *Store) FinishSignIn(ctx context.Context, f *auth.SignInFinish) error {
	if f.Session == nil {
		return errors.New("postgres: finish sign-in: no session")
	}
	x := f.Session
	var sessionID auth.SessionID
	var eventID int64
	// Every statement goes out in one batch, with the BEGIN, in one round trip, and the
	// results are checked in order: a statement after one that failed its condition may
	// have run, but the error rolls the whole transaction back, so what it did never
	// commits and the error is the first failure's, as if they ran one by one.
	//
	// The user's row first, share-locked for the whole transaction: every credential
	// change locks it before the pending logins, the factors and the sessions (see
	// deleteSessions), so taking it first here as well keeps one lock order and no
	// deadlock; sign-ins share the lock and do not wait for each other.
	b := &pgx.Batch{}
	b.Queue(`SELECT 1 FROM users WHERE id = $1 FOR SHARE`, x.UserID)
	if f.PendingHash != nil {
		b.Queue(`DELETE FROM pending_logins WHERE token_hash = $1`, f.PendingHash)
	}
	if f.TOTPStep > 0 {
		b.Queue(`UPDATE totp_credentials SET last_step = $1 WHERE user_id = $2 AND last_step < $1`,
			f.TOTPStep, x.UserID)
	}
	if f.RecoveryCodeHash != nil {
		b.Queue(`UPDATE recovery_codes SET used_at = $1
			WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL`,
			ts(x.CreatedAt), x.UserID, f.RecoveryCodeHash)
	}
	b.Queue(insertSession, insertSessionArgs(x)...)
	if f.Event != nil {
		b.Queue(insertEvent, insertEventArgs(f.Event)...)
	}
	var counters func(pgx.Tx) error
	if len(f.Counters) > 0 {
		counters = func(q pgx.Tx) error {
			// Last, in one order of counters, so two sign-ins cannot deadlock on them.
			for _, st := range sortedAttemptSteps(f.Counters) {
				if _, err := applyAttemptStep(ctx, q, st); err != nil {
					return err
				}
			}
			return nil
		}
	}
	err := s.batchTx(ctx, b, func(br pgx.BatchResults) error {
		return readFinishBatch(br, f, &sessionID, &eventID)
	}, counters)
	if err != nil {
		return mapErr("finish sign-in", err)
	}
	// Only now: a rolled-back transaction must not leave ids on f.
	x.ID = sessionID
	if f.Event != nil {
		f.Event.ID = eventID
	}
	return nil
}

// readFinishBatch reads FinishSignIn's batch results in the order they were queued and
// returns the first failure.
func readFinishBatch(br pgx.BatchResults, f *auth.SignInFinish, sessionID *auth.SessionID, eventID *int64) error {
	// must reads one conditional statement: no row changed means failed.
	must := func(failed error) error {
		tag, err := br.Exec()
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return failed
		}
		return nil
	}
	if _, err := br.Exec(); err != nil { // the user's lock; a user gone fails the insert below
		return err
	}
	if f.PendingHash != nil {
		if err := must(auth.ErrPendingGone); err != nil {
			return err
		}
	}
	if f.TOTPStep > 0 {
		if err := must(auth.ErrFactorUsed); err != nil {
			return err
		}
	}
	if f.RecoveryCodeHash != nil {
		if err := must(auth.ErrFactorUsed); err != nil {
			return err
		}
	}
	if err := scanSessionID(br.QueryRow(), sessionID); err != nil {
		return err
	}
	if f.Event != nil {
		if err := br.QueryRow().Scan(eventID); err != nil {
			return err
		}
	}
	return nil
}

// sortedAttemptSteps returns a copy of steps sorted by counter (stable), so that every
// transaction writing several counters locks their rows in the same order: two
// transactions writing the same counters can then never deadlock.
func sortedAttemptSteps(steps []auth.AttemptStep) []auth.AttemptStep {
	steps = slices.Clone(steps)
	slices.SortStableFunc(steps, func(a, b auth.AttemptStep) int { return compareKeys(a.Key, b.Key) })
	return steps
}

// compareKeys orders counters by scope, then key.
func compareKeys(a, b auth.AttemptKey) int {
	return cmp.Or(strings.Compare(a.Scope, b.Scope), strings.Compare(a.Key, b.Key))
}
