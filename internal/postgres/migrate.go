package postgres

import (
	"context"
	"embed"
	"github.com/latchkey/latchkey/internal/migrations"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey is the pg_advisory_lock key that serializes Migrate across replicas
// ("latchkey" in ASCII). It is fixed forever: replicas of different versions must
// agree on it.
const migrateLockKey int64 = 0x6c617463686b6579

// Migrate applies the migrations not applied yet, in order, each in its own
// transaction together with its schema_migrations row. Replicas starting at once
// queue on a session-level advisory lock held on a connection of Migrate's own,
// outside the pool: closing that connection releases the lock whatever happens, so a
// failed migration can never leave a pooled connection holding it.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrationFiles, "migrations", "postgres")
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, s.pool.cfg)
	if err != nil {
		return mapErr("migrate: connect", err)
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return mapErr("migrate: lock", err)
	}
	// Everything below runs under the lock, the CREATE TABLE IF NOT EXISTS included:
	// run concurrently, it can fail on the catalog's own unique index.
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return mapErr("create schema_migrations", err)
	}
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`,
				m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			// No arguments: pgx sends the file with the simple protocol, which runs
			// several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version)
			return err
		})
		if err != nil {
			return mapErr("migration "+m.Name, err)
		}
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrateLockKey); err != nil {
		return mapErr("migrate: unlock", err)
	}
	return nil
}

// closeConn closes c without letting an unreachable server stall the caller.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
