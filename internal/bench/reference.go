package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey/latchkey/internal/auth"
)

// unbatchedSQLite is the second-factor reference on SQLite: the store's own
// conditional step update, run as one autocommitted statement on a pool of its own
// connections, outside the store's group commit. Each call waits for the write lock
// and pays for its own commit (and fsync), which is the database's raw rate of one-row
// committed updates.
type unbatchedSQLite struct {
	db   *sql.DB
	stmt *sql.Stmt
}

// openUnbatchedSQLite opens the database file at path, which the store has already
// created and migrated, with the store's durability settings (WAL, synchronous=FULL).
func openUnbatchedSQLite(ctx context.Context, path string, conns int) (*unbatchedSQLite, error) {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("reference connection: %w", err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	st, err := db.PrepareContext(ctx, `UPDATE totp_credentials SET last_step = ? WHERE user_id = ? AND last_step < ?`)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("reference statement: %w", err)
	}
	return &unbatchedSQLite{db: db, stmt: st}, nil
}

// advance sets user's last step to step if it is later, and reports whether it did.
// A statement that finds the database busy despite busy_timeout (a snapshot gone
// stale while it waited) is tried again, as the store does, up to three times.
func (u *unbatchedSQLite) advance(ctx context.Context, user auth.UserID, step int64) (bool, error) {
	var err error
	for range 3 {
		var res sql.Result
		if res, err = u.stmt.ExecContext(ctx, step, user, step); err == nil {
			n, err := res.RowsAffected()
			return n == 1, err
		}
		var e *sqlite.Error
		if !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || ctx.Err() != nil {
			break
		}
	}
	return false, fmt.Errorf("advance totp step: %w", err)
}

func (u *unbatchedSQLite) close() error {
	return errors.Join(u.stmt.Close(), u.db.Close())
}
