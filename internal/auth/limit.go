package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// LimitPolicy is the shape of every failure back-off: after MaxFailures consecutive
// failures the counter locks for BaseLock, doubling on each further lock up to MaxLock.
// Only a success resets it; the end of a lock does not, so the next failure locks again
// for twice as long. ResetAfter, when set, forgets a counter that saw no failure for
// that long (used for per-IP counters, which no success can fairly reset).
type LimitPolicy struct {
	MaxFailures int
	BaseLock    time.Duration
	MaxLock     time.Duration
	ResetAfter  time.Duration
}

func (p LimitPolicy) withDefaults(n int, base, max time.Duration) LimitPolicy {
	if p.MaxFailures <= 0 {
		p.MaxFailures = n
	}
	if p.BaseLock <= 0 {
		p.BaseLock = base
	}
	if p.MaxLock <= 0 {
		p.MaxLock = max
	}
	return p
}

// lockFor returns the length of the lock number locks (0-based).
func (p LimitPolicy) lockFor(locks int) time.Duration {
	d := p.BaseLock
	for i := 0; i < locks && d < p.MaxLock; i++ {
		d *= 2
	}
	return min(d, p.MaxLock)
}

// maxCASRetries bounds the compare-and-swap loop. Losing that many races in a row
// means heavy contention on one counter — an attack — and the answer is to deny.
const maxCASRetries = 64

// errContention is updateAttempt's answer when it lost maxCASRetries races in a row.
var errContention = errors.New("too much contention")

// effective applies ResetAfter: a counter idle that long counts from zero again.
func (p LimitPolicy) effective(st AttemptState, now time.Time) AttemptState {
	if p.ResetAfter > 0 && !st.LockedUntil.After(now) && st.Version != 0 && now.Sub(st.UpdatedAt) >= p.ResetAfter {
		st.Failures, st.Locks = 0, 0
	}
	return st
}

// stepFunc computes a counter's next state at now (see AttemptStep).
type stepFunc func(prev AttemptState, now time.Time) (next AttemptState, write bool, err error)

// at fixes a step's time, making it an AttemptStep's function.
func (f stepFunc) at(now time.Time) func(AttemptState) (AttemptState, bool, error) {
	return func(prev AttemptState) (AttemptState, bool, error) { return f(prev, now) }
}

// countRecord is what one count changed, so that a refund can take exactly that back:
// the counter before the count (after the idle reset) and after it.
type countRecord struct {
	before, after AttemptState
}

// countStep counts one failure, or refuses with RateLimited while the counter is
// locked; the state written is locked already when this is the last attempt allowed.
// When rec is not nil, it records what the count wrote (a store may run the step more
// than once; the last run is the one written).
func countStep(p LimitPolicy, rec *countRecord) stepFunc {
	return func(prev AttemptState, now time.Time) (AttemptState, bool, error) {
		before := p.effective(prev, now)
		if before.LockedUntil.After(now) {
			return before, false, RateLimited(before.LockedUntil.Sub(now))
		}
		next := before
		next.Failures++
		next.UpdatedAt = now
		if next.Failures >= p.MaxFailures {
			next.LockedUntil = now.Add(p.lockFor(next.Locks))
			next.Locks++
		}
		if rec != nil {
			*rec = countRecord{before: before, after: next}
		}
		return next, true, nil
	}
}

// resetStep clears a counter after a success.
func resetStep(prev AttemptState, now time.Time) (AttemptState, bool, error) {
	if prev.Version == 0 || (prev.Failures == 0 && prev.Locks == 0 && prev.LockedUntil.IsZero()) {
		return prev, false, nil
	}
	return AttemptState{UpdatedAt: now}, true, nil
}

// refundStep takes back the failure that count c recorded, for an attempt that turned
// out not to be one (a right password, or an attempt another counter refused), as
// exactly as other writes since allow:
//   - the lock c set, if it is still the counter's lock, goes with its level (a right
//     password after a lock ran out must not lock the IP again, twice as long);
//   - the idle time runs from before c, if nothing was written since (a success must
//     not keep a counter from being forgotten);
//   - otherwise, if the counter is locked only because of such counts (fewer real
//     failures than the limit), that lock goes too, so one success behind a shared IP
//     never leaves the IP locked.
func refundStep(p LimitPolicy, c countRecord) stepFunc {
	return func(prev AttemptState, now time.Time) (AttemptState, bool, error) {
		if prev.Version == 0 || prev.Failures == 0 {
			return prev, false, nil
		}
		next := prev
		next.Failures--
		setByCount := c.after.LockedUntil.After(c.after.UpdatedAt) && prev.LockedUntil.Equal(c.after.LockedUntil)
		switch {
		case setByCount:
			next.LockedUntil, next.Locks = c.before.LockedUntil, c.before.Locks
		case prev.LockedUntil.After(now) && next.Failures < p.MaxFailures:
			next.LockedUntil = time.Time{}
			next.Locks = max(prev.Locks-1, 0)
		}
		if prev.UpdatedAt.Equal(c.after.UpdatedAt) {
			next.UpdatedAt = c.before.UpdatedAt
		}
		return next, true, nil
	}
}

// updateAttempt applies one step to one counter. With an AttemptUpdater store it is
// one serialized write; otherwise the compare-and-swap loop: read the counter, let step
// compute the next state (or decline to write), and write it only if nobody else wrote
// in between; on a lost race, start over. It returns the state written (with its new
// version), or prev when step declined; a refusing step's error comes back unchanged.
func (s *Service) updateAttempt(ctx context.Context, key AttemptKey, verb string, step stepFunc) (AttemptState, error) {
	return s.updateAttemptFrom(ctx, key, verb, step, nil)
}

// updateAttemptFrom is updateAttempt whose first compare-and-swap starts from hint, if
// not nil: the counter as a store read it a moment ago with other data, which saves
// the loop its first read. The hint decides nothing. A stale one loses the swap and
// the loop reads afresh; and when the step would not write from it (a lock, say), it is
// dropped for a fresh read, so no refusal rests on it.
func (s *Service) updateAttemptFrom(ctx context.Context, key AttemptKey, verb string, step stepFunc, hint *AttemptState) (AttemptState, error) {
	if u, ok := s.store.(AttemptUpdater); ok {
		sts, refused, err := u.UpdateAttempts(ctx, []AttemptStep{{Key: key, Step: step.at(s.now())}})
		switch {
		case refused >= 0:
			return AttemptState{}, err
		case err != nil:
			return AttemptState{}, fmt.Errorf("%s attempt counter %s: %w", verb, key.Scope, err)
		}
		return sts[0], nil
	}
	// The hint's pass comes on top of the retries: it is a read saved, not a race lost.
	passes := maxCASRetries
	if hint != nil {
		passes++
	}
	for range passes {
		now := s.now()
		var prev AttemptState
		fromHint := hint != nil
		if fromHint {
			prev, hint = *hint, nil
		} else {
			var err error
			if prev, err = s.store.Attempt(ctx, key); err != nil {
				return prev, fmt.Errorf("reading attempt counter %s: %w", key.Scope, err)
			}
		}
		next, write, err := step(prev, now)
		if fromHint && (err != nil || !write) {
			continue
		}
		if err != nil || !write {
			return prev, err
		}
		next.Version = prev.Version
		won, err := s.store.SaveAttempt(ctx, key, prev, next)
		if err != nil {
			return prev, fmt.Errorf("%s attempt counter %s: %w", verb, key.Scope, err)
		}
		if won {
			next.Version = prev.Version + 1
			return next, nil
		}
	}
	return AttemptState{}, fmt.Errorf("%s attempt counter %s: %w", verb, key.Scope, errContention)
}

// checkLimit refuses when the counter is locked, without counting anything.
func (s *Service) checkLimit(ctx context.Context, key AttemptKey, p LimitPolicy) error {
	now := s.now()
	st, err := s.store.Attempt(ctx, key)
	if err != nil {
		return fmt.Errorf("reading attempt counter %s: %w", key.Scope, err)
	}
	if eff := p.effective(st, now); eff.LockedUntil.After(now) {
		return RateLimited(eff.LockedUntil.Sub(now))
	}
	return nil
}

// countFailure records one failure before the attempt is evaluated ("count first"):
// its own committed write, so parallel guesses cannot outrun the count and a
// rolled-back request cannot erase it. It returns RateLimited, counting nothing, while
// the counter is locked; otherwise the state after the count, which is locked already
// when this attempt is the last one allowed.
func (s *Service) countFailure(ctx context.Context, key AttemptKey, p LimitPolicy) (AttemptState, error) {
	return s.countRecorded(ctx, key, p, nil)
}

// countRecorded is countFailure that also records, in rec if not nil, what the count
// wrote, for a refund.
func (s *Service) countRecorded(ctx context.Context, key AttemptKey, p LimitPolicy, rec *countRecord) (AttemptState, error) {
	return s.countFrom(ctx, key, p, rec, nil)
}

// countFrom is countRecorded starting from hint (see updateAttemptFrom).
func (s *Service) countFrom(ctx context.Context, key AttemptKey, p LimitPolicy, rec *countRecord, hint *AttemptState) (AttemptState, error) {
	st, err := s.updateAttemptFrom(ctx, key, "counting", countStep(p, rec), hint)
	if errors.Is(err, errContention) {
		// Fail closed: never "unlocked" when the count could not be written.
		return AttemptState{}, RateLimited(time.Second)
	}
	return st, err
}

// limitCount is one counter to count a failure on, under its policy; rec, if not
// nil, receives what the count wrote, for a refund.
type limitCount struct {
	key    AttemptKey
	policy LimitPolicy
	rec    *countRecord
}

// countFailures counts one failure first on each counter, in order, committed before
// it returns. With an AttemptUpdater store that is one write, so the counters of one
// attempt cost one commit. When a counter is locked, no count stays: it returns that
// counter's index and RateLimited (refused is -1 otherwise).
func (s *Service) countFailures(ctx context.Context, counts []limitCount) (refused int, err error) {
	if u, ok := s.store.(AttemptUpdater); ok {
		now := s.now()
		steps := make([]AttemptStep, len(counts))
		for i, c := range counts {
			steps[i] = AttemptStep{Key: c.key, Step: countStep(c.policy, c.rec).at(now)}
		}
		_, refused, err := u.UpdateAttempts(ctx, steps)
		switch {
		case refused >= 0:
			return refused, err
		case err != nil:
			return -1, fmt.Errorf("counting attempts: %w", err)
		}
		return -1, nil
	}
	recs := make([]countRecord, len(counts))
	for i, c := range counts {
		_, err := s.countRecorded(ctx, c.key, c.policy, &recs[i])
		if err == nil {
			if c.rec != nil {
				*c.rec = recs[i]
			}
			continue
		}
		if AsError(err) == nil {
			return -1, err
		}
		// A refused attempt checks nothing: take back the counts before this one.
		for j, d := range counts[:i] {
			if rerr := s.refund(ctx, d.key, d.policy, recs[j]); rerr != nil {
				return -1, rerr
			}
		}
		return i, err
	}
	return -1, nil
}

// updateAttempts applies steps that never refuse (resets, refunds): one write with an
// AttemptUpdater store, one compare-and-swap each otherwise.
func (s *Service) updateAttempts(ctx context.Context, verb string, steps []AttemptStep) error {
	if u, ok := s.store.(AttemptUpdater); ok {
		if _, _, err := u.UpdateAttempts(ctx, steps); err != nil {
			return fmt.Errorf("%s attempt counters: %w", verb, err)
		}
		return nil
	}
	for _, st := range steps {
		step := func(prev AttemptState, _ time.Time) (AttemptState, bool, error) { return st.Step(prev) }
		if _, err := s.updateAttempt(ctx, st.Key, verb, step); err != nil {
			return err
		}
	}
	return nil
}

// resetLimit clears a counter after a success.
func (s *Service) resetLimit(ctx context.Context, key AttemptKey) error {
	_, err := s.updateAttempt(ctx, key, "resetting", resetStep)
	return err
}

// refund takes back the failure count c recorded (see refundStep).
func (s *Service) refund(ctx context.Context, key AttemptKey, p LimitPolicy, c countRecord) error {
	_, err := s.updateAttempt(ctx, key, "refunding", refundStep(p, c))
	return err
}

// MFACounterScope is the scope of the per-account second-factor counters.
const MFACounterScope = "mfa"

// MFACounterKey is the key of u's second-factor counter: its Key is u's id in decimal,
// which a store that reads the counter in a join (see PendingSignIn.MFACounter) relies on.
func MFACounterKey(u UserID) AttemptKey {
	return AttemptKey{Scope: MFACounterScope, Key: strconv.FormatInt(int64(u), 10)}
}

func passwordKey(u UserID) AttemptKey {
	return AttemptKey{Scope: "pw-account", Key: fmt.Sprint(int64(u))}
}

func ipKey(ip string) AttemptKey { return AttemptKey{Scope: "pw-ip", Key: ip} }
