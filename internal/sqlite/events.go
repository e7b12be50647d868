package sqlite

import (
	"context"
	"database/sql"
	"time"

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
const insertEvent = `INSERT INTO security_events
	(user_id, time, event, outcome, ip, user_agent, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`

func insertEventArgs(e *auth.Event) []any {
	return []any{nullUser(e.UserID), micros(e.Time), e.Event, e.Outcome, e.IP, e.UserAgent, e.Detail}
}

// AddEvent appends to the security log and sets e.ID.
func (s *Store) AddEvent(ctx context.Context, e *auth.Event) error {
	id, err := s.insert(ctx, insertEvent, insertEventArgs(e)...)
	if err != nil {
		return mapErr("add event", err)
	}
	e.ID = id
	return nil
}

// Events returns the user's events newest first (user 0: every event), at most limit;
// limit <= 0 means no limit.
func (s *Store) Events(ctx context.Context, user auth.UserID, limit int) ([]auth.Event, error) {
	if limit <= 0 {
		limit = -1 // SQLite reads a negative LIMIT as none
	}
	const cols = `SELECT id, user_id, time, event, outcome, ip, user_agent, detail FROM security_events`
	var rows *sql.Rows
	var err error
	if user == 0 {
		rows, err = s.db.QueryContext(ctx, cols+` ORDER BY id DESC LIMIT ?`, limit)
	} else {
		rows, err = s.db.QueryContext(ctx, cols+` WHERE user_id = ? ORDER BY id DESC LIMIT ?`, user, limit)
	}
	if err != nil {
		return nil, mapErr("events", err)
	}
	defer rows.Close()
	var es []auth.Event
	for rows.Next() {
		var e auth.Event
		var uid sql.NullInt64
		if err := rows.Scan(&e.ID, &uid, timeCol{&e.Time}, &e.Event, &e.Outcome, &e.IP,
			&e.UserAgent, &e.Detail); err != nil {
			return nil, mapErr("events", err)
		}
		e.UserID = auth.UserID(uid.Int64)
		es = append(es, e)
	}
	return es, mapErr("events", rows.Err())
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
			(SELECT id FROM security_events WHERE time < ? ORDER BY id LIMIT ?)`, micros(before), batch)
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
	id, err := s.insert(ctx, `INSERT INTO outbox
		(recipient, subject, key_id, ciphertext, created_at) VALUES (?, ?, ?, ?, ?)`,
		m.To, m.Subject, m.Body.KeyID, m.Body.Ciphertext, micros(m.CreatedAt))
	if err != nil {
		return mapErr("add outbox", err)
	}
	m.ID = id
	return nil
}

// Outbox returns the stored mail, oldest first.
func (s *Store) Outbox(ctx context.Context) ([]auth.OutboxMessage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, recipient, subject, key_id, ciphertext, created_at
		FROM outbox ORDER BY id`)
	if err != nil {
		return nil, mapErr("outbox", err)
	}
	defer rows.Close()
	var ms []auth.OutboxMessage
	for rows.Next() {
		var m auth.OutboxMessage
		if err := rows.Scan(&m.ID, &m.To, &m.Subject, &m.Body.KeyID, &m.Body.Ciphertext,
			timeCol{&m.CreatedAt}); err != nil {
			return nil, mapErr("outbox", err)
		}
		ms = append(ms, m)
	}
	return ms, mapErr("outbox", rows.Err())
}
