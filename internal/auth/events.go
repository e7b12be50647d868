package auth

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// maxUserAgent is how much of a client's User-Agent any row keeps. Desktop and phone
// browsers send fewer than 200 bytes (some in-app browsers more, cut but still
// recognisable); the header is the client's own text, so beyond that it only makes
// every row it lands in bigger.
const maxUserAgent = 200

// Limits of the security-log folding: per client address (IPv6 per /64), the first
// foldPerMinute foldable events of a minute are written as they come; the rest of
// that minute are counted and written as one "and N more like this" row per kind of
// event. foldMaxAddrs bounds the addresses remembered at once (beyond it, new
// addresses share one bucket), foldMaxKinds the kinds per address.
const (
	foldPerMinute = 10
	foldMaxAddrs  = 10000
	foldMaxKinds  = 16
)

// foldable says whether an event is one an anonymous client can repeat at will, and so
// is limited per address and folded: every event of no known account (unknown login,
// locked address, malformed or unknown ids), every forgot-password, and an attempt
// refused for a limit ("locked", "limited"). The events that record a lock or a closure
// as it happens (mfa_locked, recovery_closed) happen once, and are not folded. Folding
// loses no event: each is a row or counted in an "N more" row. Everything else a person
// does on their account is written as it happens.
func foldable(e *Event) bool {
	if e.UserID == 0 || e.Event == "password_forgot" {
		return true
	}
	switch e.Outcome {
	case "locked", "limited", "locked_ip":
		return !onceEvents[e.Event]
	}
	return false
}

// onceEvents are the events that say a lock or a closure began: one row each, never
// folded, whatever their outcome says.
var onceEvents = map[string]bool{"mfa_locked": true, "recovery_closed": true}

// eventFolder holds the counts of folded events until their minute is over.
type eventFolder struct {
	mu        sync.Mutex
	addrs     map[string]*addrFold
	others    *addrFold // addresses beyond foldMaxAddrs
	lastSweep time.Time
}

type addrFold struct {
	group   string
	minute  time.Time
	written int
	folded  map[foldKind]*foldCount
}

type foldKind struct {
	user           UserID
	event, outcome string
}

type foldCount struct {
	n    int
	last Event
}

// admit decides whether e is written now, and returns the "N more" rows that became
// due: its address's earlier minute, and once a minute every address's past minute.
func (f *eventFolder) admit(e *Event) (write bool, due []*Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	minute := e.Time.Truncate(time.Minute)
	if f.addrs == nil {
		f.addrs = map[string]*addrFold{}
	}
	if minute.After(f.lastSweep) {
		due = f.sweepLocked(minute)
		f.lastSweep = minute
	}
	group := AddressGroup(e.IP)
	b := f.addrs[group]
	if b == nil {
		if len(f.addrs) >= foldMaxAddrs {
			if f.others == nil {
				f.others = &addrFold{group: "other addresses"}
			}
			b = f.others
		} else {
			b = &addrFold{group: group}
			f.addrs[group] = b
		}
	}
	if !b.minute.Equal(minute) {
		due = append(due, b.flush()...)
		b.minute = minute
		b.written = 0
	}
	if b.written < foldPerMinute {
		b.written++
		return true, due
	}
	k := foldKind{e.UserID, e.Event, e.Outcome}
	if b.folded == nil {
		b.folded = map[foldKind]*foldCount{}
	}
	c := b.folded[k]
	if c == nil {
		if len(b.folded) >= foldMaxKinds {
			k = foldKind{0, "security_log", "folded"}
			if c = b.folded[k]; c == nil {
				c = &foldCount{}
				b.folded[k] = c
			}
		} else {
			c = &foldCount{}
			b.folded[k] = c
		}
	}
	c.n++
	c.last = *e
	return false, due
}

// sweepLocked flushes every address whose minute is before minute and forgets it.
func (f *eventFolder) sweepLocked(minute time.Time) []*Event {
	var due []*Event
	for g, b := range f.addrs {
		if b.minute.Before(minute) {
			due = append(due, b.flush()...)
			delete(f.addrs, g)
		}
	}
	if f.others != nil && f.others.minute.Before(minute) {
		due = append(due, f.others.flush()...)
		f.others = nil
	}
	return due
}

// flushAll returns every pending "N more" row, of the current minute too.
func (f *eventFolder) flushAll() []*Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sweepLocked(time.Unix(1<<40, 0))
}

// flush returns the bucket's "N more" rows and empties it.
func (b *addrFold) flush() []*Event {
	var due []*Event
	for k, c := range b.folded {
		e := c.last
		e.ID = 0
		e.UserID, e.Event, e.Outcome = k.user, k.event, k.outcome
		e.Detail = fmt.Sprintf("and %d more like this from %s in the minute from %s", c.n, b.group, b.minute.UTC().Format("2006-01-02 15:04 UTC"))
		due = append(due, &e)
	}
	b.folded = nil
	return due
}

// writeEvents stores rows off the request path (the "N more" rows of a sweep can be
// many); Wait waits for them.
func (s *Service) writeEvents(due []*Event) {
	if len(due) == 0 {
		return
	}
	s.mailWG.Add(1)
	go func() {
		defer s.mailWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.storeEvents(ctx, due)
	}()
}

func (s *Service) storeEvents(ctx context.Context, due []*Event) {
	for _, e := range due {
		if err := s.store.AddEvent(ctx, e); err != nil {
			s.log.Error("writing security log", "event", e.Event, "err", err)
		}
	}
}

// FlushSecurityLog writes the "N more" rows still pending: those of minutes already
// over, or with all set every one, the current minute's too (at shutdown, so that no
// count is lost).
func (s *Service) FlushSecurityLog(ctx context.Context, all bool) {
	var due []*Event
	if all {
		due = s.folds.flushAll()
	} else {
		s.folds.mu.Lock()
		due = s.folds.sweepLocked(s.now().Truncate(time.Minute))
		s.folds.mu.Unlock()
	}
	s.storeEvents(ctx, due)
}

// securityLogPurgeBatch bounds each delete of the retention purge.
const securityLogPurgeBatch = 5000

// PurgeSecurityLog deletes security-log rows older than the retention (0: none).
func (s *Service) PurgeSecurityLog(ctx context.Context) (int64, error) {
	if s.cfg.SecurityLogRetention <= 0 {
		return 0, nil
	}
	n, err := s.store.PurgeEvents(ctx, s.now().Add(-s.cfg.SecurityLogRetention), securityLogPurgeBatch)
	if err != nil {
		return n, fmt.Errorf("purging the security log: %w", err)
	}
	return n, nil
}
