package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

func newUser(name string) *auth.User {
	return &auth.User{Username: name, Email: name + "@example.com", PasswordHash: "h", CreatedAt: time.Unix(1, 0)}
}

// TestGroupCommitIsolatesFailures runs writes that succeed beside writes that fail
// (a taken username) at once, so that batches hold both: every failure is rolled back
// to its own savepoint and answered with its own error, and every success is there.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, newUser("taken")); err != nil {
		t.Fatal(err)
	}
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("user%d", i)
			if i%2 == 1 {
				name = "taken"
			}
			errs[i] = s.CreateUser(ctx, newUser(name))
		})
	}
	wg.Wait()
	for i, err := range errs {
		var ce *auth.ConflictError
		switch {
		case i%2 == 0 && err != nil:
			t.Errorf("CreateUser(user%d) = %v, want success", i, err)
		case i%2 == 1 && !errors.As(err, &ce):
			t.Errorf("CreateUser(taken) = %v, want a ConflictError", err)
		}
	}
	us, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 1+n/2 {
		t.Fatalf("%d users after the batch, want %d", len(us), 1+n/2)
	}
	for i := 0; i < n; i += 2 {
		if _, err := s.UserByLogin(ctx, fmt.Sprintf("user%d", i)); err != nil {
			t.Errorf("user%d missing after its write succeeded: %v", i, err)
		}
	}
}

// TestGroupCommitSharesCommits holds the writer inside one write while others queue,
// and checks that the queued writes then commit together, in fewer transactions than
// writes, each still answered with its own result.
func TestGroupCommitSharesCommits(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	release := holdWriter(t, s)
	const n = 32
	ids := make([]auth.UserID, n)
	var wg sync.WaitGroup
	var started sync.WaitGroup
	started.Add(n)
	for i := range n {
		wg.Go(func() {
			started.Done()
			u := newUser(fmt.Sprintf("q%d", i))
			if err := s.CreateUser(ctx, u); err != nil {
				t.Errorf("CreateUser = %v", err)
			}
			ids[i] = u.ID
		})
	}
	started.Wait()
	before := s.w.batches.Load()
	release()
	wg.Wait()
	batches := s.w.batches.Load() - before
	if batches >= n {
		t.Fatalf("%d writes took %d commits, want fewer: nothing was batched", n, batches)
	}
	seen := map[auth.UserID]bool{}
	for i, id := range ids {
		if id == 0 || seen[id] {
			t.Fatalf("write %d got id %d: ids must be distinct and set (%v)", i, id, ids)
		}
		seen[id] = true
		u, err := s.UserByID(ctx, id)
		if err != nil || u.Username != fmt.Sprintf("q%d", i) {
			t.Fatalf("UserByID(%d) = %+v, %v, want q%d", id, u, err, i)
		}
	}
	t.Logf("%d writes in %d commits", n, batches)
}

// TestWriteCancelledBeforeStart: a caller whose context has ended gets its error and
// its write never runs.
func TestWriteCancelledBeforeStart(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.CreateUser(ctx, newUser("late"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateUser(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := s.UserByLogin(t.Context(), "late"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("the cancelled write ran: UserByLogin = %v", err)
	}
}

// TestWriteAfterClose: the store answers writes after Close with an error, at once.
func TestWriteAfterClose(t *testing.T) {
	s := newStore(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.CreateUser(t.Context(), newUser("after")); !errors.Is(err, errStoreClosed) {
		t.Fatalf("CreateUser after Close = %v, want errStoreClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// holdWriter runs a write that keeps the writer busy until the returned function is
// called, so that the writes started meanwhile queue up and share the next batch.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.write(t.Context(), func(*wtx) error {
			close(held)
			<-done
			return nil
		})
	}()
	<-held
	return func() {
		// Let the queued writers reach the channel; what follows holds however many did.
		time.Sleep(100 * time.Millisecond)
		close(done)
	}
}

// TestWriteThatEndsTheBatch: a write whose statement ends the shared transaction
// (here a ROLLBACK; in life SQLITE_FULL or SQLITE_IOERR) gets an error, and the writes
// batched with it run again in a new transaction and are all committed.
func TestWriteThatEndsTheBatch(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	release := holdWriter(t, s)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			if i == n/2 {
				errs[i] = s.write(ctx, func(t *wtx) error {
					_, err := t.ExecContext(ctx, "ROLLBACK")
					return err
				})
				return
			}
			errs[i] = s.CreateUser(ctx, newUser(fmt.Sprintf("b%d", i)))
		})
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if i == n/2 {
			if err == nil {
				t.Errorf("the write that ended the transaction reported success")
			}
			continue
		}
		if err != nil {
			t.Errorf("CreateUser(b%d) = %v, want success despite its batch-mate", i, err)
		}
		if _, err := s.UserByLogin(ctx, fmt.Sprintf("b%d", i)); err != nil {
			t.Errorf("b%d not committed: %v", i, err)
		}
	}
	if err := s.CreateUser(ctx, newUser("afterwards")); err != nil {
		t.Fatalf("the writer did not recover: %v", err)
	}
}

// TestWriteIgnoringAFailure: a write that goes on after one of its statements failed
// fails as a whole, and nothing of it is committed.
func TestWriteIgnoringAFailure(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, newUser("first")); err != nil {
		t.Fatal(err)
	}
	err := s.write(ctx, func(t *wtx) error {
		_, _ = t.ExecContext(ctx, `INSERT INTO users (username, username_key, email, email_key,
			email_verified, password_hash, is_admin, created_at) VALUES ('first', 'first', 'x@example.com', 'x@example.com', 0, 'h', 0, 1)`)
		_, err := t.ExecContext(ctx, `UPDATE users SET is_admin = 1`)
		return err
	})
	if err == nil {
		t.Fatal("a write that ignored a failed statement reported success")
	}
	u, err := s.UserByLogin(ctx, "first")
	if err != nil || u.IsAdmin {
		t.Fatalf("UserByLogin(first) = %+v, %v: the statement after the failure ran", u, err)
	}
}

// TestWritePanics: a panic inside a write fails that write, not the process, and the
// writer goes on.
func TestWritePanics(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	err := s.write(ctx, func(t *wtx) error {
		if _, err := t.ExecContext(ctx, `UPDATE users SET is_admin = 1`); err != nil {
			return err
		}
		panic("bug")
	})
	if err == nil || !strings.Contains(err.Error(), "panicked: bug") {
		t.Fatalf("write that panicked = %v, want the panic as an error", err)
	}
	if err := s.CreateUser(ctx, newUser("survivor")); err != nil {
		t.Fatalf("write after a panic = %v", err)
	}
}

// TestConcurrentClose: Close from many goroutines at once, beside writes, is safe.
func TestConcurrentClose(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() { _ = s.CreateUser(t.Context(), newUser(fmt.Sprintf("c%d", i))) })
		wg.Go(func() { _ = s.Close() })
	}
	wg.Wait()
	if err := s.CreateUser(t.Context(), newUser("late")); !errors.Is(err, errStoreClosed) {
		t.Fatalf("write after Close = %v, want errStoreClosed", err)
	}
}

// TestCommitDelayOnlyUnderConcurrency: a client writing one thing after another makes
// batches wait for company at most maxWaitCredit times (what the store's opening left),
// while a write sent during another batch makes its batch wait, and share a commit.
func TestCommitDelayOnlyUnderConcurrency(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	before := s.w.delayed.Load()
	const seq = 60
	for i := range seq {
		if err := s.CreateUser(ctx, newUser(fmt.Sprintf("seq%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if d := s.w.delayed.Load() - before; d > maxWaitCredit {
		t.Fatalf("%d sequential writes waited for company %d times, want at most what an earlier burst left", seq, d)
	}

	// A write sent while another batch was in progress is another writer's: its batch
	// of one waits for company, and a write that comes within the delay shares its
	// commit.
	before, batches := s.w.delayed.Load(), s.w.batches.Load()
	release := holdWriter(t, s)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.CreateUser(ctx, newUser("during")); err != nil {
			t.Errorf("CreateUser = %v", err)
		}
	})
	release()
	time.Sleep(commitDelay / 5) // inside the wait the first write is in
	if err := s.CreateUser(ctx, newUser("company")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// Usually the second write lands in the wait (1 delayed, 2 commits). On a slow
	// machine it may come before the wait starts (0 delayed, the pair batched anyway)
	// or after it ends (1 delayed, 3 commits). What must not happen is the first
	// write committing alone without having waited.
	d, c := s.w.delayed.Load()-before, s.w.batches.Load()-batches
	if d == 0 && c != 2 {
		t.Fatalf("a write sent during another batch committed alone without waiting: %d delayed, %d commits", d, c)
	}
	t.Logf("%d delayed batches, %d commits", d, c)
}
