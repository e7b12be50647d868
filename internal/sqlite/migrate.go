package sqlite

import (
	"context"
	"embed"
	"github.com/latchkey/latchkey/internal/migrations"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies the migrations not applied yet, in order, each in its own
// transaction together with its schema_migrations row, so a crash leaves every
// migration either fully applied and recorded or not at all. Whether a version is
// applied is read inside its IMMEDIATE transaction, so two processes migrating the
// same file at once apply each version exactly once.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrationFiles, "migrations", "sqlite")
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER))
	)`); err != nil {
		return mapErr("create schema_migrations", err)
	}
	for _, m := range ms {
		err := s.write(ctx, func(tx *wtx) error {
			var n int
			if err := tx.QueryRowContext(ctx,
				`SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if err := tx.execScript(m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, m.Version)
			return err
		})
		if err != nil {
			return mapErr("migration "+m.Name, err)
		}
	}
	return nil
}
