package postgres

import (
	"context"

	"github.com/latchkey/latchkey/internal/auth"
)

// Purge deletes rows that can never be used again (see auth.Store.Purge). Each
// statement commits on its own: a purge cut short leaves nothing half done.
func (s *Store) Purge(ctx context.Context, p auth.PurgeBefore) (int64, error) {
	now := ts(p.Now)
	stmts := []struct {
		query string
		args  []any
	}{
		{`DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, []any{now, ts(p.IdleBefore)}},
		{`DELETE FROM pending_logins WHERE expires_at <= $1`, []any{now}},
		{`DELETE FROM totp_pending WHERE expires_at <= $1`, []any{now}},
		// A WebAuthn ceremony is finished within 5 minutes or never.
		{`DELETE FROM webauthn_ceremonies WHERE expires_at <= $1`, []any{now}},
		{`DELETE FROM password_resets WHERE expires_at <= $1 OR used_at IS NOT NULL`, []any{now}},
		{`DELETE FROM email_links WHERE expires_at <= $1 OR used_at IS NOT NULL`, []any{now}},
		{`DELETE FROM reserved_usernames WHERE reserved_until <= $1`, []any{now}},
		// Recovery requests never verified are kept a day past expiry for the record.
		{`DELETE FROM recovery_requests WHERE status = 'pending' AND expires_at <= $1`, []any{ts(p.Now.Add(-auth.RecoveryRetention))}},
	}
	for _, scope := range p.AttemptScopes {
		stmts = append(stmts, struct {
			query string
			args  []any
		}{`DELETE FROM attempts WHERE scope = $1 AND updated_at <= $2 AND (locked_until IS NULL OR locked_until <= $3)`,
			[]any{scope, ts(p.StaleAttemptsBefore), now}})
	}
	var total int64
	for _, st := range stmts {
		n, err := s.exec(ctx, st.query, st.args...)
		if err != nil {
			return total, mapErr("purge", err)
		}
		total += n
	}
	return total, nil
}
