package postgres

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pool wraps pgxpool so the store's code sees one small surface: a connection of its
// own for the length of fn. pgxpool bounds the connections, health-checks idle ones
// (a replica survives a database restart without failing a request on a dead socket)
// and never hands out a connection left inside a transaction.
type pool struct {
	cfg    *pgx.ConnConfig // for the migration's dedicated connection
	p      *pgxpool.Pool
	closed atomic.Bool
}

func newPool(url string, max int32) (*pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("postgres: the database URL is not valid")
	}
	pc.MaxConns = max
	p, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, errors.New("postgres: cannot set up the connection pool")
	}
	return &pool{cfg: pc.ConnConfig, p: p}, nil
}

// errClosed is what every call on a closed store gets: an error, never an answer.
func errClosed() error { return errors.New("postgres: store is closed") }

// withConn runs fn on a connection of its own.
func (p *pool) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	if p.closed.Load() {
		return errClosed()
	}
	return p.p.AcquireFunc(ctx, func(c *pgxpool.Conn) error { return fn(c.Conn()) })
}

// close closes every connection; later calls fail with errClosed.
func (p *pool) close() {
	if p.closed.CompareAndSwap(false, true) {
		p.p.Close()
	}
}
