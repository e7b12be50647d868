package auth

import (
	"testing"
	"time"
)

var limitT0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func lt(d time.Duration) time.Time { return limitT0.Add(d) }

// TestLimitPolicy walks the policy through every boundary as a sequence of operations
// at fixed times, checking each decision and the counter after it.
func TestLimitPolicy(t *testing.T) {
	p := LimitPolicy{MaxFailures: 5, BaseLock: 30 * time.Second, MaxLock: 15 * time.Minute}
	type op struct {
		op   LimitOp
		at   time.Duration
		want string // "allow", "busy", "locked"
		// the counter after it
		failures, inFlight int
		lockedFor          time.Duration // from this op's time; 0: not locked
	}
	fail5 := []op{
		{OpCount, 0, "allow", 1, 0, 0},
		{OpCount, 0, "allow", 2, 0, 0},
		{OpCount, 0, "allow", 3, 0, 0},
		{OpCount, 0, "allow", 4, 0, 0},
	}
	tests := []struct {
		name string
		p    LimitPolicy
		ops  []op
	}{
		{"4 failures leave it open, the 5th locks for 30 s, a 6th is refused", p, append(fail5[:4:4],
			op{OpAcquire, 0, "allow", 4, 1, 0},
			op{OpFail, 0, "allow", 5, 0, 30 * time.Second},
			op{OpAcquire, time.Second, "locked", 5, 0, 29 * time.Second},
			op{OpCount, time.Second, "locked", 5, 0, 29 * time.Second},
		)},
		{"the lock ends at its time, not before", p, append(fail5[:4:4],
			op{OpCount, 0, "allow", 5, 0, 30 * time.Second},
			op{OpAcquire, 30*time.Second - time.Microsecond, "locked", 5, 0, time.Microsecond},
			op{OpAcquire, 30 * time.Second, "allow", 5, 1, 0},
		)},
		{"after a lock one check at a time, and its failure locks twice as long", p, append(fail5[:4:4],
			op{OpCount, 0, "allow", 5, 0, 30 * time.Second},
			op{OpAcquire, time.Minute, "allow", 5, 1, 0},
			op{OpAcquire, time.Minute, "busy", 5, 1, 0},
			op{OpFail, time.Minute, "allow", 6, 0, time.Minute},
			op{OpAcquire, 2 * time.Minute, "allow", 6, 1, 0},
			op{OpFail, 2 * time.Minute, "allow", 7, 0, 2 * time.Minute},
		)},
		{"the lock doubles up to the cap", p, func() []op {
			ops := append([]op(nil), fail5...)
			at := time.Duration(0)
			lock := 30 * time.Second
			for f := 5; f <= 12; f++ {
				ops = append(ops, op{OpCount, at, "allow", f, 0, min(lock, 15*time.Minute)})
				at += min(lock, 15*time.Minute)
				lock *= 2
			}
			return ops
		}()},
		{"a success resets failures and lock level", p, append(fail5[:4:4],
			op{OpAcquire, 0, "allow", 4, 1, 0},
			op{OpSucceed, 0, "allow", 0, 0, 0},
			op{OpCount, 0, "allow", 1, 0, 0},
		)},
		{"5 slots while nothing failed, then busy; settling frees one", p, []op{
			{OpAcquire, 0, "allow", 0, 1, 0},
			{OpAcquire, 0, "allow", 0, 2, 0},
			{OpAcquire, 0, "allow", 0, 3, 0},
			{OpAcquire, 0, "allow", 0, 4, 0},
			{OpAcquire, 0, "allow", 0, 5, 0},
			{OpAcquire, 0, "busy", 0, 5, 0},
			{OpSucceed, 0, "allow", 0, 4, 0},
			{OpAcquire, 0, "allow", 0, 5, 0},
		}},
		{"slots shrink with failures: 3 failures leave 2", p, append(fail5[:3:3],
			op{OpAcquire, 0, "allow", 3, 1, 0},
			op{OpAcquire, 0, "allow", 3, 2, 0},
			op{OpAcquire, 0, "busy", 3, 2, 0},
		)},
		{"a refund gives the slot back and counts nothing", p, append(fail5[:4:4],
			op{OpAcquire, 0, "allow", 4, 1, 0},
			op{OpRefund, 0, "allow", 4, 0, 0},
			op{OpAcquire, 0, "allow", 4, 1, 0},
			op{OpRefund, 0, "allow", 4, 0, 0},
			op{OpRefund, 0, "allow", 4, 0, 0}, // nothing left to give back: no harm
		)},
		{"slots lapse after their lease", p, []op{
			{OpAcquire, 0, "allow", 0, 1, 0},
			{OpAcquire, 0, "allow", 0, 2, 0},
			{OpAcquire, 0, "allow", 0, 3, 0},
			{OpAcquire, 0, "allow", 0, 4, 0},
			{OpAcquire, 0, "allow", 0, 5, 0},
			{OpAcquire, SlotLease - time.Microsecond, "busy", 0, 5, 0},
			{OpAcquire, SlotLease, "allow", 0, 1, 0},
		}},
		{"failures in flight when the lock came are counted, the lock is not extended", p, []op{
			{OpAcquire, 0, "allow", 0, 1, 0},
			{OpAcquire, 0, "allow", 0, 2, 0},
			{OpAcquire, 0, "allow", 0, 3, 0},
			{OpAcquire, 0, "allow", 0, 4, 0},
			{OpAcquire, 0, "allow", 0, 5, 0},
			{OpFail, 0, "allow", 1, 4, 0},
			{OpFail, 0, "allow", 2, 3, 0},
			{OpFail, 0, "allow", 3, 2, 0},
			{OpFail, 0, "allow", 4, 1, 0},
			{OpFail, time.Second, "allow", 5, 0, 30 * time.Second},
			{OpAcquire, time.Second, "locked", 5, 0, 30 * time.Second},
		}},
		{"the clock going backwards neither unlocks, forgets, nor frees slots", LimitPolicy{MaxFailures: 5, BaseLock: 30 * time.Second, MaxLock: 15 * time.Minute, ResetAfter: time.Hour}, append(fail5[:4:4],
			op{OpAcquire, 30 * time.Minute, "allow", 4, 1, 0},
			op{OpAcquire, -time.Hour, "busy", 4, 1, 0}, // the slot taken "later" still holds
			op{OpFail, 30 * time.Minute, "allow", 5, 0, 30 * time.Second},
			op{OpAcquire, 10 * time.Minute, "locked", 5, 0, 20*time.Minute + 30*time.Second},
			op{OpAcquire, -time.Hour, "locked", 5, 0, 90*time.Minute + 30*time.Second},
		)},
		{"ResetAfter forgets an idle counter, not a locked one", LimitPolicy{MaxFailures: 5, BaseLock: 2 * time.Hour, MaxLock: 2 * time.Hour, ResetAfter: time.Hour}, append(fail5[:4:4],
			op{OpCount, time.Hour - time.Microsecond, "allow", 5, 0, 2 * time.Hour},
			op{OpCount, 2 * time.Hour, "locked", 5, 0, time.Hour - time.Microsecond},
			op{OpCount, 3*time.Hour - time.Microsecond, "allow", 1, 0, 0},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st AttemptState
			for i, o := range tt.ops {
				now := lt(o.at)
				next, write, d := tt.p.Apply(st, o.op, now)
				got := "allow"
				switch {
				case d.Busy:
					got = "busy"
				case !d.Allowed:
					got = "locked"
				}
				if got != o.want {
					t.Fatalf("op %d (%v at %v): decision %+v = %s, want %s", i, o.op, o.at, d, got, o.want)
				}
				if !d.Allowed && write {
					t.Fatalf("op %d: a refusal writes %+v", i, next)
				}
				if write {
					st = next
				}
				eff := tt.p.effective(st, now)
				lockedFor := time.Duration(0)
				if eff.LockedUntil.After(now) {
					lockedFor = eff.LockedUntil.Sub(now)
				}
				if eff.Failures != o.failures || eff.InFlight != o.inFlight || lockedFor != o.lockedFor {
					t.Fatalf("op %d (%v at %v): counter %+v: failures %d, in flight %d, locked for %v; want %d, %d, %v",
						i, o.op, o.at, st, eff.Failures, eff.InFlight, lockedFor, o.failures, o.inFlight, o.lockedFor)
				}
				if c := tt.p.Check(st, now); (got == "locked") != (!c.Allowed && !c.Busy) && o.op == OpAcquire {
					t.Fatalf("op %d: Check = %+v, but Apply said %s", i, c, got)
				}
			}
		})
	}
}

// TestLimitDecisionLocked: Locked says which failure set the lock, and only that one.
func TestLimitDecisionLocked(t *testing.T) {
	p := LimitPolicy{MaxFailures: 2, BaseLock: time.Minute, MaxLock: time.Hour}
	var st AttemptState
	var locked []bool
	for _, o := range []LimitOp{OpCount, OpCount, OpAcquire} {
		next, write, d := p.Apply(st, o, limitT0)
		if write {
			st = next
		}
		locked = append(locked, d.Locked)
	}
	if locked[0] || !locked[1] || locked[2] {
		t.Fatalf("Locked over count, count, acquire = %v, want false, true, false", locked)
	}
	if got := p.retryAfter(lt(3*time.Hour), limitT0); got != time.Hour {
		t.Fatalf("retryAfter beyond the longest lock = %v, want it capped at %v", got, time.Hour)
	}
}

func TestAddressGroup(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not-an-ip", "not-an-ip"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := AddressGroup(tt.in); got != tt.want {
			t.Errorf("AddressGroup(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestAcquireTouchesTheCounter: a slot marks its counter as updated, so Purge, which
// forgets counters by their last update, never forgets one with a slot in flight.
func TestAcquireTouchesTheCounter(t *testing.T) {
	p := LimitPolicy{MaxFailures: 5, BaseLock: time.Minute, MaxLock: time.Hour}
	next, write, d := p.Apply(AttemptState{}, OpAcquire, limitT0)
	if !d.Allowed || !write || !next.UpdatedAt.Equal(limitT0) {
		t.Fatalf("Apply(acquire) = %+v, %v, %+v; want a write updated at %v", next, write, d, limitT0)
	}
}
