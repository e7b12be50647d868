package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

// nullUser stores user 0 ("no account known") as NULL so the foreign key holds.
func nullUser(id auth.UserID) any {
	if id == 0 {
		return nil
	}
	return id
}

// insertEvent appends one line to the security log; AddEvent and FinishSignIn share it.
const insertEvent = `INSERT INTO security_events (user_id, time, event, outcome, ip, user_agent, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`

func insertEventArgs(e *auth.Event) []any {
	return []any{nullUser(e.UserID), ts(e.Time), e.Event, e.Outcome, e.IP, e.UserAgent, e.Detail}
}

// AddEvent appends to the security log and sets e.ID.
func (s *Store) AddEvent(ctx context.Context, e *auth.Event) error {
	return mapErr("add event", s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&e.ID) },
		insertEvent, insertEventArgs(e)...))
}

// Events returns the user's events newest first (user 0: every event), at most limit;
// limit <= 0 means no limit.
func (s *Store) Events(ctx context.Context, user auth.UserID, limit int) ([]auth.Event, error) {
	var lim any // NULL: PostgreSQL reads LIMIT NULL as none
	if limit > 0 {
		lim = limit
	}
	scan := func(r pgx.CollectableRow) (auth.Event, error) {
		var e auth.Event
		var uid *int64
		err := r.Scan(&e.ID, &uid, timeCol{&e.Time}, &e.Event, &e.Outcome, &e.IP, &e.UserAgent, &e.Detail)
		if uid != nil {
			e.UserID = auth.UserID(*uid)
		}
		return e, err
	}
	const cols = `SELECT id, user_id, time, event, outcome, ip, user_agent, detail FROM security_events`
	var es []auth.Event
	var err error
	if user == 0 {
		es, err = query(ctx, s, scan, cols+` ORDER BY id DESC LIMIT $1`, lim)
	} else {
		es, err = query(ctx, s, scan, cols+` WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, user, lim)
	}
	return es, mapErr("events", err)
}

// PurgeEvents deletes rows older than before, batch rows per statement, each statement
// its own commit (see auth.Store.PurgeEvents).
func (s *Store) PurgeEvents(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = 1000
	}
	var total int64
	for {
		n, err := s.exec(ctx, `DELETE FROM security_events WHERE id IN
			(SELECT id FROM security_events WHERE time < $1 ORDER BY id LIMIT $2)`, ts(before), batch)
		if err != nil {
			return total, mapErr("purge events", err)
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// AddOutbox stores a mail that was not sent through SMTP, body sealed, and sets m.ID.
func (s *Store) AddOutbox(ctx context.Context, m *auth.OutboxMessage) error {
	return mapErr("add outbox", s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&m.ID) },
		`INSERT INTO outbox (recipient, subject, key_id, ciphertext, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		m.To, m.Subject, m.Body.KeyID, m.Body.Ciphertext, ts(m.CreatedAt)))
}

// Outbox returns the stored mail, oldest first.
func (s *Store) Outbox(ctx context.Context) ([]auth.OutboxMessage, error) {
	ms, err := query(ctx, s, func(r pgx.CollectableRow) (auth.OutboxMessage, error) {
		var m auth.OutboxMessage
		err := r.Scan(&m.ID, &m.To, &m.Subject, &m.Body.KeyID, &m.Body.Ciphertext, timeCol{&m.CreatedAt})
		return m, err
	}, `SELECT id, recipient, subject, key_id, ciphertext, created_at FROM outbox ORDER BY id`)
	return ms, mapErr("outbox", err)
}
