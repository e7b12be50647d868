package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit.
//
// SQLite has one writer at a time, and with synchronous=FULL every commit waits for an
// fsync of the WAL: on the CI machine about 200 µs, during which no other write can
// start. A second-factor step needs two commits (the count-first write, then the
// finish), a password sign-in several. Left to busy_timeout, concurrent writers take
// turns, one fsync each, and sleep in SQLite's busy handler between tries.
//
// Every write of this store therefore goes to one goroutine that owns the only write
// connection. It takes all the writes waiting at that moment (up to maxBatch) and runs
// them in one IMMEDIATE transaction, each inside its own SAVEPOINT, and commits once:
// one fsync for the whole batch. A write whose function fails is rolled back to its
// savepoint and leaves the others untouched. No caller hears its result before the
// COMMIT has returned, so a write reported done is durable, and a count-first write is
// committed before its caller checks the code, exactly as when it committed alone.
// If the commit fails, nothing of the batch happened, and every write of it runs again
// in a fresh transaction (at most writeAttempts times in all).
//
// The statements of a batch run under the writer's own context, never a caller's: a
// caller that goes away must not interrupt a statement, because SQLite rolls the
// whole transaction back on an interrupt, which would undo the other callers' writes
// too. A caller whose context ends before its write starts gets the context's error
// and changes nothing; once started, its write finishes or fails with the batch.

// Commit delay.
//
// Under steady concurrent writes that arrive a few milliseconds apart (sign-ins while
// argon2id saturates the CPU, ~90 writes/s), batches hold one write each and every
// write pays its own fsync. Each fsync holds one of the process's Ps while it blocks,
// and the I/O's interrupts and context switches cost the hashing around it its caches,
// a few per cent of sign-in throughput (the README's *How it is built* gives the
// measurement with and without the delay).
//
// So a batch of one write may wait up to commitDelay for a second before it commits,
// but only while waiting pays: the writer holds a credit of waits, set to maxWaitCredit
// whenever a write turns out to have been sent before the last batch's callers heard
// back (so by a concurrent writer) or a wait caught a write, and one less after a wait
// that caught none. The wait ends at the first write it catches. A lone client writing
// one thing after another sends its next write only after the last one's answer, so it
// never sets the credit, its waits catch nothing, and the credit left by an earlier
// burst is gone after maxWaitCredit of them. Clients in lockstep (their writes already
// share a batch) never wait. Durability is unchanged: no caller hears its result before
// the commit.
const (
	commitDelay   = 5 * time.Millisecond
	maxWaitCredit = 8
)

// maxBatch bounds how many writes share one transaction, so that one commit's latency
// stays bounded under a flood.
const maxBatch = 128

// writeAttempts is how many times a write runs at most when its batch cannot commit
// (SQLITE_BUSY from another process holding the lock past busy_timeout, say).
const writeAttempts = busyRetries

// maxWriteStmts bounds the write connection's statement cache; query texts past it
// run unprepared. Only constant texts are cached, so the bound is never reached in
// practice.
const maxWriteStmts = 256

var errStoreClosed = errors.New("sqlite: store closed")

// writeOp is one caller's write waiting for its batch.
type writeOp struct {
	ctx  context.Context
	fn   func(*wtx) error
	err  error
	runs int
	sent time.Time
	done chan struct{}
}

// writer is the goroutine that owns the write connection.
type writer struct {
	db    *sql.DB // MaxOpenConns(1): the write connection
	conn  *sql.Conn
	ctx   context.Context // the statements' context; cancelled only after the loop ends
	stop  context.CancelFunc
	stmts map[string]*sql.Stmt
	ops   chan *writeOp // unbuffered: a send succeeds only while the loop runs
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
	cerr  error
	// delay is commitDelay, or zero for no delay (tests).
	delay time.Duration
	// answered is when the last committed batch's callers were told: a write sent
	// before it came while a batch was in progress, so from a concurrent writer.
	answered time.Time
	// batches counts the transactions committed, and delayed the batches that waited
	// for more writes, for tests that check batching.
	batches atomic.Int64
	delayed atomic.Int64
}

func newWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	conn, err := db.Conn(wctx)
	if err != nil {
		stop()
		return nil, err
	}
	w := &writer{db: db, conn: conn, ctx: wctx, stop: stop, stmts: map[string]*sql.Stmt{},
		ops: make(chan *writeOp), quit: make(chan struct{}), done: make(chan struct{}), delay: commitDelay}
	go w.loop()
	return w, nil
}

// close stops taking writes, lets the batch in progress finish, and releases the
// connection. Writes that arrive later fail with errStoreClosed.
func (w *writer) close() error {
	w.once.Do(func() {
		close(w.quit)
		<-w.done
		for _, st := range w.stmts {
			_ = st.Close()
		}
		err := w.conn.Close()
		w.stop()
		w.cerr = errors.Join(err, w.db.Close())
	})
	return w.cerr
}

// write runs fn in the next batch and returns once that batch has committed (fn's
// effects are durable) or fn's error, fn having changed nothing. fn may run more than
// once, if a batch cannot commit; only the run that committed counts, so fn must set
// its results afresh on each run.
func (s *Store) write(ctx context.Context, fn func(*wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, fn: fn, sent: time.Now(), done: make(chan struct{})}
	select {
	case s.w.ops <- op:
	case <-s.w.quit:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once taken, the write is waited for whatever the context says: it may already
	// be committed, and its caller must learn which.
	<-op.done
	return op.err
}

func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*writeOp, 0, maxBatch)
	credit := 0 // how many more batches of one may wait (see commitDelay)
	for {
		select {
		case op := <-w.ops:
			batch = append(batch[:0], op)
		case <-w.quit:
			return
		}
		batch = w.gather(batch)
		for _, op := range batch {
			if op.sent.Before(w.answered) {
				// Sent before the last batch's callers heard back: by another writer.
				credit = maxWaitCredit
				break
			}
		}
		if w.delay > 0 && len(batch) == 1 && credit > 0 {
			if batch = w.wait(batch); len(batch) > 1 {
				credit = maxWaitCredit
			} else {
				credit--
			}
		}
		w.commit(batch)
	}
}

// wait adds to a batch of one the first write that arrives within w.delay, with any
// others already waiting behind it, unless the store closes first.
func (w *writer) wait(batch []*writeOp) []*writeOp {
	w.delayed.Add(1)
	t := time.NewTimer(w.delay)
	defer t.Stop()
	select {
	case op := <-w.ops:
		batch = append(batch, op)
	case <-t.C:
		return batch
	case <-w.quit:
		return batch
	}
	return w.gather(batch)
}

// gather adds to batch the writes already waiting, up to maxBatch, without blocking.
func (w *writer) gather(batch []*writeOp) []*writeOp {
	for len(batch) < maxBatch {
		select {
		case op := <-w.ops:
			batch = append(batch, op)
		default:
			return batch
		}
	}
	return batch
}

// commit runs the batch until every write has its answer.
func (w *writer) commit(batch []*writeOp) {
	pending := batch
	for len(pending) > 0 {
		pending = w.try(pending)
	}
}

// finish hands op its answer.
func finish(op *writeOp, err error) {
	op.err = err
	close(op.done)
}

// try runs the writes in one transaction and returns those that must run again.
func (w *writer) try(ops []*writeOp) (again []*writeOp) {
	if err := w.begin(); err != nil {
		for _, op := range ops {
			finish(op, err)
		}
		return nil
	}
	ran := ops[:0:0]
	for i, op := range ops {
		if op.runs == 0 && op.ctx.Err() != nil {
			finish(op, op.ctx.Err()) // not started: nothing changed
			continue
		}
		op.runs++
		var gone bool
		gone, op.err = w.run(op)
		if gone {
			// The failure ended the transaction (an I/O error, say): this write has
			// its answer, and the others of the batch run again in a new one. They
			// get the failure only as text: its error values (ErrNotFound, say) are
			// this write's, not theirs.
			finish(op, op.err)
			return w.retry(append(ran, ops[i+1:]...),
				fmt.Errorf("sqlite: write batch aborted by another write's failure: %v", op.err))
		}
		ran = append(ran, op)
	}
	if _, err := w.control("COMMIT"); err != nil {
		return w.retry(ran, fmt.Errorf("sqlite: commit: %w", err))
	}
	w.batches.Add(1)
	w.answered = time.Now()
	for _, op := range ran {
		close(op.done) // op.err is the answer of the committed run
	}
	return nil
}

// retry returns the writes that may run again after their batch failed with err, and
// fails the others with err.
func (w *writer) retry(ops []*writeOp, err error) (again []*writeOp) {
	// The transaction may be over already; then ROLLBACK only says so. Any other
	// failure leaves the connection in an unknown state: replace it, or every later
	// BEGIN would fail on it.
	if _, rerr := w.control("ROLLBACK"); rerr != nil && !strings.Contains(rerr.Error(), "no transaction is active") {
		_ = w.reset()
	}
	for _, op := range ops {
		if op.runs >= writeAttempts {
			finish(op, err)
		} else {
			again = append(again, op)
		}
	}
	return again
}

// begin opens the batch's transaction, waiting for the lock as the other connections
// do (busy_timeout), and a few times more if another process holds it longer.
func (w *writer) begin() error {
	begin := func() error {
		_, err := w.control("BEGIN IMMEDIATE")
		return err
	}
	err := retryBusy(w.ctx, begin)
	if err != nil && !isBusy(err) {
		// Not the lock: the connection itself (left inside a transaction, or gone bad).
		// One fresh connection, one more try.
		if rerr := w.reset(); rerr != nil {
			return errors.Join(err, rerr)
		}
		err = retryBusy(w.ctx, begin)
	}
	return err
}

// reset drops the write connection and its statements and opens a new one.
func (w *writer) reset() error {
	for _, st := range w.stmts {
		_ = st.Close()
	}
	clear(w.stmts)
	// ErrBadConn from Raw makes database/sql discard the connection instead of
	// returning it to the pool, so the next Conn is a new one.
	_ = w.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = w.conn.Close()
	conn, err := w.db.Conn(w.ctx)
	if err != nil {
		return fmt.Errorf("sqlite: reopen write connection: %w", err)
	}
	w.conn = conn
	return nil
}

// control runs one of the writer's own statements (BEGIN, SAVEPOINT, COMMIT, …).
func (w *writer) control(query string) (sql.Result, error) {
	return (&wtx{w: w}).ExecContext(w.ctx, query)
}

// run runs one write inside its own savepoint, rolled back if the write fails. gone
// reports that the transaction itself ended: SQLite ends it on its own after some
// errors (SQLITE_FULL, SQLITE_IOERR, an interrupt), and then the savepoint is gone too.
func (w *writer) run(op *writeOp) (gone bool, err error) {
	if _, err := w.control("SAVEPOINT write"); err != nil {
		return true, err
	}
	t := &wtx{w: w}
	err = call(op.fn, t)
	if err == nil && t.failed != nil {
		err = t.failed // a statement failed and fn went on as if not: the write failed
	}
	if err != nil {
		if _, rerr := w.control("ROLLBACK TO write"); rerr != nil {
			return true, errors.Join(err, rerr)
		}
	}
	if _, rerr := w.control("RELEASE write"); rerr != nil {
		return true, errors.Join(err, rerr)
	}
	return false, err
}

// call runs fn, turning a panic into an error: fn runs on the writer goroutine, where
// a panic would otherwise end the process instead of one request.
func call(fn func(*wtx) error, t *wtx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sqlite: write panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(t)
}

// wtx is one write's view of the write connection inside its batch. It offers what
// *sql.Tx does for the store's helpers; the context arguments are ignored in
// favour of the writer's, for the reason given at the top of this file. Statements
// are prepared once on the write connection and kept.
//
// After a statement fails, the write's later statements fail at once without running:
// SQLite may have ended the whole transaction (SQLITE_FULL, SQLITE_IOERR), and a
// statement run then would autocommit on its own, outside the batch.
type wtx struct {
	w      *writer
	failed error
}

func (t *wtx) stmt(query string) *sql.Stmt {
	if st, ok := t.w.stmts[query]; ok {
		return st
	}
	if len(t.w.stmts) >= maxWriteStmts {
		return nil
	}
	st, err := t.w.conn.PrepareContext(t.w.ctx, query)
	if err != nil {
		return nil // the unprepared statement runs, and reports the same error
	}
	t.w.stmts[query] = st
	return st
}

// ExecContext runs one statement of the write.
func (t *wtx) ExecContext(_ context.Context, query string, args ...any) (res sql.Result, err error) {
	if t.failed != nil {
		return nil, t.failed
	}
	if st := t.stmt(query); st != nil {
		res, err = st.ExecContext(t.w.ctx, args...)
	} else {
		res, err = t.w.conn.ExecContext(t.w.ctx, query, args...)
	}
	if err != nil {
		t.failed = err
	}
	return res, err
}

// QueryContext runs one query of the write; the caller closes the rows before the
// write returns.
func (t *wtx) QueryContext(_ context.Context, query string, args ...any) (rows *sql.Rows, err error) {
	if t.failed != nil {
		return nil, t.failed
	}
	if st := t.stmt(query); st != nil {
		rows, err = st.QueryContext(t.w.ctx, args...)
	} else {
		rows, err = t.w.conn.QueryContext(t.w.ctx, query, args...)
	}
	if err != nil {
		t.failed = err
	}
	return rows, err
}

// QueryRowContext runs one single-row query (or UPDATE … RETURNING) of the write.
func (t *wtx) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(query); st != nil {
		return st.QueryRowContext(t.w.ctx, args...)
	}
	return t.w.conn.QueryRowContext(t.w.ctx, query, args...)
}

// execScript runs a text of several statements unprepared (a migration).
func (t *wtx) execScript(script string) error {
	if t.failed != nil {
		return t.failed
	}
	if _, err := t.w.conn.ExecContext(t.w.ctx, script); err != nil {
		t.failed = err
		return err
	}
	return nil
}
