package auth_test

import (
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// casStore is a real store seen only through auth.Store: embedding the interface
// hides the SQLite store's AttemptUpdater, so the Service counts by compare-and-swap
// over Attempt and SaveAttempt, as it does on PostgreSQL.
type casStore struct{ auth.Store }

// TestCountFromAHint runs the compare-and-swap count (the path of a store without
// AttemptUpdater) from hints that are right, stale, absent or wrong: the counter must
// end exactly as a count from a fresh read would leave it, and a hint never refuses.
func TestCountFromAHint(t *testing.T) {
	st := casStore{openStore(t)}
	if _, ok := auth.Store(st).(auth.AttemptUpdater); ok {
		t.Fatal("the store is an AttemptUpdater: this test would not reach the hint")
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	svc := auth.New(auth.Config{}, auth.Deps{Store: st, Clock: func() time.Time { return now }})
	p := svc.Config().MFALimit
	read := func(k auth.AttemptKey) auth.AttemptState {
		t.Helper()
		a, err := st.Attempt(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// count counts from hint and checks that what it returns is what it stored.
	count := func(k auth.AttemptKey, hint *auth.AttemptState) (auth.AttemptState, error) {
		t.Helper()
		got, err := svc.CountFrom(t.Context(), k, p, hint)
		if err == nil {
			if stored := read(k); got != stored {
				t.Fatalf("count returned %+v, but the store holds %+v", got, stored)
			}
		}
		return got, err
	}
	wantFailures := func(name string, k auth.AttemptKey, failures int, version int64) {
		t.Helper()
		if a := read(k); a.Failures != failures || a.Version != version {
			t.Fatalf("%s: counter = %+v, want %d failures at version %d", name, a, failures, version)
		}
	}

	// Right hints, from no row and from a row.
	k := auth.MFACounterKey(1)
	if _, err := count(k, &auth.AttemptState{}); err != nil {
		t.Fatalf("count from the zero hint = %v", err)
	}
	wantFailures("right zero hint", k, 1, 1)
	h := read(k)
	if _, err := count(k, &h); err != nil {
		t.Fatalf("count from a right hint = %v", err)
	}
	wantFailures("right hint", k, 2, 2)

	// Stale hints lose the swap and count from a fresh read: one failure each, none lost.
	if _, err := count(k, &h); err != nil {
		t.Fatalf("count from a stale hint = %v", err)
	}
	wantFailures("stale hint", k, 3, 3)
	if _, err := count(k, &auth.AttemptState{}); err != nil {
		t.Fatalf("count from a zero hint with a row stored = %v", err)
	}
	wantFailures("zero hint over a row", k, 4, 4)

	// A hint that says locked when the counter is not: the fresh read decides.
	k2 := auth.MFACounterKey(2)
	locked := auth.AttemptState{Failures: 5, Locks: 1, LockedUntil: now.Add(time.Minute), UpdatedAt: now, Version: 7}
	if _, err := count(k2, &locked); err != nil {
		t.Fatalf("count from a hint that says locked, with the counter clear = %v, want counted", err)
	}
	wantFailures("locked hint over a clear counter", k2, 1, 1)

	// And the count locks at the fifth failure and refuses the sixth, from hints or not.
	for i := 2; i <= 5; i++ {
		h := read(k2)
		if _, err := count(k2, &h); err != nil {
			t.Fatalf("failure %d = %v", i, err)
		}
	}
	if a := read(k2); a.Failures != 5 || !a.LockedUntil.After(now) {
		t.Fatalf("after five failures = %+v, want locked", a)
	}
	h = read(k2)
	_, err := count(k2, &h)
	if e := auth.AsError(err); e == nil || e.Kind != auth.KindRateLimited {
		t.Fatalf("sixth failure while locked = %v, want rate limited", err)
	}
	_, err = count(k2, &auth.AttemptState{})
	if e := auth.AsError(err); e == nil || e.Kind != auth.KindRateLimited {
		t.Fatalf("sixth failure from a clear hint while locked = %v, want rate limited", err)
	}
	wantFailures("refused while locked", k2, 5, 5)

	// 200 parallel counts from one shared hint: exactly five are counted, one of them
	// returns the locked state (the one that locks, for the owner's mail), and the rest
	// are refused.
	for _, start := range []int{0, 2} {
		k := auth.MFACounterKey(auth.UserID(10 + start))
		for range start {
			if _, err := count(k, nil); err != nil {
				t.Fatal(err)
			}
		}
		shared := read(k)
		var mu sync.Mutex
		counted, locking, refused := 0, 0, 0
		var wg sync.WaitGroup
		for range 200 {
			wg.Go(func() {
				h := shared
				st, err := svc.CountFrom(t.Context(), k, p, &h)
				mu.Lock()
				defer mu.Unlock()
				switch e := auth.AsError(err); {
				case err == nil:
					counted++
					if st.LockedUntil.After(now) {
						locking++
					}
				case e != nil && e.Kind == auth.KindRateLimited:
					refused++
				default:
					t.Errorf("parallel count = %v", err)
				}
			})
		}
		wg.Wait()
		if want := p.MaxFailures - start; counted != want || locking != 1 || refused != 200-want {
			t.Fatalf("from %d failures, 200 parallel counts: %d counted (want %d), %d locking (want 1), %d refused",
				start, counted, want, locking, refused)
		}
		if a := read(k); a.Failures != p.MaxFailures || !a.LockedUntil.After(now) {
			t.Fatalf("after the parallel counts the counter = %+v, want %d failures and locked", a, p.MaxFailures)
		}
	}
}
