package auth

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// LimitPolicy is the shape of every attempt limit: after MaxFailures failures the
// counter locks for BaseLock, doubling on each further lock up to MaxLock. Only a
// success resets it; the end of a lock does not, so the next failure locks again for
// twice as long. ResetAfter, when set, forgets a counter that saw no failure for that
// long (per-address counters, which no one success can fairly reset).
//
// The policy is pure: Apply takes a counter, an operation and the time, and returns
// the counter to write and the decision. Stores only run it inside their one write
// (Store.UpdateAttempts), so every limit in Latchkey is decided here, once.
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

// LimitOp is what happens to a counter.
type LimitOp int

// The operations. A count-first check takes a slot (OpAcquire) before it checks
// anything, in its own committed write, and settles it once it knows: OpFail, OpSucceed,
// or OpRefund when the check never ran (overload, the client gone). OpCount counts a
// use or failure that took no slot (per-address failures, mails sent).
const (
	OpAcquire LimitOp = iota
	OpFail
	OpSucceed
	OpRefund
	OpCount
)

// SlotLease is how long an acquired slot is held at most. A check settles long before
// (hashing waits at most a few seconds); the lease only frees the slots of a process
// that died mid-check.
const SlotLease = time.Minute

// Decision is the policy's answer.
type Decision struct {
	// Allowed: the operation took effect (a slot taken, a use counted, a settlement).
	Allowed bool
	// Busy: refused because every slot left before the lock is held by a check still
	// in flight. Nothing failed yet; the caller may wait for a slot.
	Busy bool
	// LockedUntil is set while the counter is locked: when refused for it, or after
	// this operation.
	LockedUntil time.Time
	// Locked: this operation's failure locked the counter.
	Locked bool
}

// lockFor returns the length of the lock number locks (0-based).
func (p LimitPolicy) lockFor(locks int) time.Duration {
	d := p.BaseLock
	for i := 0; i < locks && d < p.MaxLock; i++ {
		d *= 2
	}
	return min(d, p.MaxLock)
}

// effective is the counter as it stands at now: lapsed slots are gone, and with
// ResetAfter a counter idle that long (and not locked) counts from zero again. A clock
// that went backwards makes nothing lapse and nothing idle: it never unlocks.
func (p LimitPolicy) effective(st AttemptState, now time.Time) AttemptState {
	if st.InFlight > 0 && !now.Before(st.InFlightUntil) {
		st.InFlight, st.InFlightUntil = 0, time.Time{}
	}
	if st.InFlight <= 0 {
		st.InFlight, st.InFlightUntil = 0, time.Time{}
	}
	if p.ResetAfter > 0 && !st.LockedUntil.After(now) && (st.Failures > 0 || st.Locks > 0) &&
		now.Sub(st.UpdatedAt) >= p.ResetAfter {
		st.Failures, st.Locks, st.LockedUntil = 0, 0, time.Time{}
	}
	return st
}

// slots is how many checks may be in flight at once: as many as failures are left
// before the lock, and one at a time once the limit was reached and its lock ran out,
// so that each further failure locks again.
func (p LimitPolicy) slots(st AttemptState) int {
	return max(p.MaxFailures-st.Failures, 1)
}

// Check is the decision for a counter read at now, without changing it: locked, busy
// or free.
func (p LimitPolicy) Check(st AttemptState, now time.Time) Decision {
	st = p.effective(st, now)
	if st.LockedUntil.After(now) {
		return Decision{LockedUntil: st.LockedUntil}
	}
	if st.InFlight >= p.slots(st) {
		return Decision{Busy: true}
	}
	return Decision{Allowed: true}
}

// Apply computes op on prev at now: the counter to write (write false: leave it as it
// is) and the decision.
func (p LimitPolicy) Apply(prev AttemptState, op LimitOp, now time.Time) (next AttemptState, write bool, d Decision) {
	st := p.effective(prev, now)
	locked := st.LockedUntil.After(now)
	switch op {
	case OpAcquire:
		if locked {
			return prev, false, Decision{LockedUntil: st.LockedUntil}
		}
		if st.InFlight >= p.slots(st) {
			return prev, false, Decision{Busy: true}
		}
		st.InFlight++
		st.InFlightUntil = maxTime(st.InFlightUntil, now.Add(SlotLease))
		// Touched, so Purge (which forgets counters by their last update) never
		// forgets one whose slot is in flight.
		st.UpdatedAt = maxTime(st.UpdatedAt, now)
	case OpCount:
		if locked {
			return prev, false, Decision{LockedUntil: st.LockedUntil}
		}
		p.fail(&st, now)
	case OpFail:
		release(&st)
		p.fail(&st, now)
	case OpSucceed:
		release(&st)
		st.Failures, st.Locks, st.LockedUntil = 0, 0, time.Time{}
		st.UpdatedAt = now
	case OpRefund:
		release(&st)
	default:
		panic("auth: unknown limit operation " + strconv.Itoa(int(op)))
	}
	d = Decision{Allowed: true, Locked: st.Locks > prevLocks(p, prev, now)}
	if st.LockedUntil.After(now) {
		d.LockedUntil = st.LockedUntil
	}
	st.Version = prev.Version
	return st, st != prev, d
}

// prevLocks is the lock level of prev as Apply starts from it.
func prevLocks(p LimitPolicy, prev AttemptState, now time.Time) int {
	return p.effective(prev, now).Locks
}

// fail counts one failure, locking the counter when it reaches the limit. A failure
// that settles while the counter is already locked (a check in flight when another
// locked it) is counted but neither extends nor doubles that lock.
func (p LimitPolicy) fail(st *AttemptState, now time.Time) {
	st.Failures++
	st.UpdatedAt = now
	if st.Failures >= p.MaxFailures && !st.LockedUntil.After(now) {
		st.LockedUntil = now.Add(p.lockFor(st.Locks))
		st.Locks++
	}
}

// release gives back one slot (none left: nothing to give back, as after a lapse).
func release(st *AttemptState) {
	st.InFlight = max(st.InFlight-1, 0)
	if st.InFlight == 0 {
		st.InFlightUntil = time.Time{}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// retryAfter is the Retry-After of a lock: never more than the policy's longest lock,
// even when the clock went backwards.
func (p LimitPolicy) retryAfter(until, now time.Time) time.Duration {
	return min(until.Sub(now), p.MaxLock)
}

// limitStep is op under p as a store step; d receives the decision of the run that
// was written.
func (s *Service) limitStep(key AttemptKey, p LimitPolicy, op LimitOp, now time.Time, d *Decision) AttemptStep {
	return AttemptStep{Key: key, Step: func(prev AttemptState) (AttemptState, bool) {
		next, write, dec := p.Apply(prev, op, now)
		if d != nil {
			*d = dec
		}
		return next, write
	}}
}

// limit applies op to one counter in one committed write and returns the decision.
func (s *Service) limit(ctx context.Context, key AttemptKey, p LimitPolicy, op LimitOp) (Decision, AttemptState, error) {
	var d Decision
	sts, err := s.store.UpdateAttempts(ctx, []AttemptStep{s.limitStep(key, p, op, s.now(), &d)})
	if err != nil {
		return Decision{}, AttemptState{}, fmt.Errorf("attempt counter %s: %w", key.Scope, err)
	}
	return d, sts[0], nil
}

// checkLimit refuses with RateLimited when the counter is locked, counting nothing.
func (s *Service) checkLimit(ctx context.Context, key AttemptKey, p LimitPolicy) error {
	st, err := s.store.Attempt(ctx, key)
	if err != nil {
		return fmt.Errorf("reading attempt counter %s: %w", key.Scope, err)
	}
	now := s.now()
	if d := p.Check(st, now); !d.LockedUntil.IsZero() {
		return RateLimited(p.retryAfter(d.LockedUntil, now))
	}
	return nil
}

// countUse counts one use without a slot (OpCount), refusing with RateLimited while
// the counter is locked.
func (s *Service) countUse(ctx context.Context, key AttemptKey, p LimitPolicy) error {
	d, _, err := s.limit(ctx, key, p, OpCount)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return RateLimited(p.retryAfter(d.LockedUntil, s.now()))
	}
	return nil
}

// SlotWait is how long a check waits for a slot held by checks in flight before it
// answers 503 overloaded (never 429: nothing failed).
const SlotWait = 2 * time.Second

// slot is one count-first check in flight on a counter: taken before the check, in
// its own committed write, and settled once: as a failure, a success, or given back
// when the check never ran.
type slot struct {
	s       *Service
	key     AttemptKey
	p       LimitPolicy
	settled bool
}

// acquire takes a slot on key, counted and committed before it returns ("count
// first"), so parallel checks can never evaluate more than the limit allows. A locked
// counter refuses with RateLimited, checking nothing. While every slot before the lock
// is held by checks in flight it waits for one (polling reads, not writes) up to
// SlotWait, then answers Overloaded: parallel right answers to one account wait their
// turn instead of seeing 429.
func (s *Service) acquire(ctx context.Context, key AttemptKey, p LimitPolicy) (*slot, error) {
	start := time.Now() // real time: the wait is about latency, not about the rule
	pause := 2 * time.Millisecond
	for {
		d, _, err := s.limit(ctx, key, p, OpAcquire)
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			return &slot{s: s, key: key, p: p}, nil
		}
		for {
			if !d.Busy {
				return nil, RateLimited(p.retryAfter(d.LockedUntil, s.now()))
			}
			if time.Since(start)+pause > SlotWait {
				return nil, Overloaded(time.Second)
			}
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			pause = min(pause*2, 50*time.Millisecond)
			st, err := s.store.Attempt(ctx, key)
			if err != nil {
				return nil, fmt.Errorf("reading attempt counter %s: %w", key.Scope, err)
			}
			if d = p.Check(st, s.now()); d.Allowed {
				break
			}
		}
	}
}

// step is the slot's settlement op as a store step, for a write that also does other
// things (FinishSignIn); the caller marks the slot settled once that write committed.
func (sl *slot) step(op LimitOp, d *Decision) AttemptStep {
	return sl.s.limitStep(sl.key, sl.p, op, sl.s.now(), d)
}

// settle applies op to the slot in its own committed write, even when the request's
// context has ended: an outcome known is recorded whatever the client does.
func (sl *slot) settle(ctx context.Context, op LimitOp) (Decision, AttemptState, error) {
	d, st, err := sl.s.limit(context.WithoutCancel(ctx), sl.key, sl.p, op)
	if err == nil {
		sl.settled = true
	}
	return d, st, err
}

// fail settles the slot as a failure and returns the decision (Locked: this failure
// locked the counter) and the counter after it.
func (sl *slot) fail(ctx context.Context) (Decision, AttemptState, error) {
	return sl.settle(ctx, OpFail)
}

// succeed settles the slot as a success: the counter is reset.
func (sl *slot) succeed(ctx context.Context) error {
	_, _, err := sl.settle(ctx, OpSucceed)
	return err
}

// release gives the slot back unless it was settled: the check never ran, or its
// outcome was never recorded (overload, the client gone, a deadline, a database
// error), and none of those is a failure of the user's. It runs even when the
// request's context has ended.
func (sl *slot) release(ctx context.Context) {
	if sl == nil || sl.settled {
		return
	}
	if _, _, err := sl.settle(ctx, OpRefund); err != nil {
		sl.s.log.Error("giving back an attempt", "scope", sl.key.Scope, "err", err)
	}
}

// MFACounterScope is the scope of the per-account second-factor counters.
const MFACounterScope = "mfa"

// MFACounterKey is the key of u's second-factor counter.
func MFACounterKey(u UserID) AttemptKey {
	return AttemptKey{Scope: MFACounterScope, Key: strconv.FormatInt(int64(u), 10)}
}

func passwordKey(u UserID) AttemptKey {
	return AttemptKey{Scope: "pw-account", Key: strconv.FormatInt(int64(u), 10)}
}

// Scopes of the counters Purge forgets once stale: per address, per reset mail, and
// per recovery request (a request lives 15 minutes).
const (
	scopeIP       = "pw-ip"
	scopeSignupIP = "signup-ip"
	scopeResetIP  = "reset-ip"
	scopeForgotIP = "forgot-ip"
	scopeResetTo  = "reset-mail"
	// scopeVerifyMail counts verification mails asked for per account.
	scopeVerifyMail = "verify-mail"
	scopeRecovery   = "recovery"
)

// addressKey is the counter of a client address: IPv4 as it is, IPv6 grouped per /64
// (one subscriber's allocation, which they can spread over at will).
func addressKey(scope, ip string) AttemptKey {
	return AttemptKey{Scope: scope, Key: AddressGroup(ip)}
}

// AddressGroup is the address a per-address limit counts: IPv4 (and IPv4-mapped IPv6)
// as the address, IPv6 as its /64 prefix. Text that is no address is kept as it is.
func AddressGroup(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	pfx, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return pfx.String()
}
