package storetest

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/auth"
)

// testPurgeEvents: retention deletes exactly the rows older than the cut-off, for
// accounts and anonymous rows alike, in batches smaller than the backlog, and keeps a
// row written at the cut-off itself.
func testPurgeEvents(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	add := func(user auth.UserID, d time.Duration) *auth.Event {
		t.Helper()
		e := &auth.Event{UserID: user, Time: at(d), Event: "login", Outcome: "failure", IP: "192.0.2.1"}
		noErr(t, "AddEvent", s.AddEvent(ctx(t), e))
		return e
	}
	for i := range 7 {
		add(alice.ID, time.Duration(i)*time.Second)
		add(0, time.Duration(i)*time.Second)
	}
	keep := []*auth.Event{add(alice.ID, 10*time.Second), add(0, 10*time.Second), add(alice.ID, time.Hour)}

	n, err := s.PurgeEvents(ctx(t), at(10*time.Second), 3)
	noErr(t, "PurgeEvents", err)
	if n != 14 {
		t.Fatalf("PurgeEvents removed %d rows, want the 14 older than the cut-off", n)
	}
	es, err := s.Events(ctx(t), 0, 0)
	noErr(t, "Events", err)
	if len(es) != len(keep) {
		t.Fatalf("after PurgeEvents %d rows remain, want %d: %+v", len(es), len(keep), es)
	}
	for i, e := range es {
		if want := keep[len(keep)-1-i]; e.ID != want.ID {
			t.Fatalf("row %d after PurgeEvents = %+v, want %+v", i, e, *want)
		}
	}
	n, err = s.PurgeEvents(ctx(t), at(10*time.Second), 3)
	noErr(t, "PurgeEvents again", err)
	if n != 0 {
		t.Fatalf("a second PurgeEvents removed %d rows, want 0", n)
	}
}

// testEventUserAgent: a user agent as the Service stores it (cut to its limit on a rune
// boundary, invalid UTF-8 replaced) reads back byte for byte.
func testEventUserAgent(t *testing.T, s auth.Store) {
	ua := strings.Repeat("é", 99) + "x" // 199 bytes, multi-byte runes up to the end
	if !utf8.ValidString(ua) {
		t.Fatal("test user agent is not UTF-8")
	}
	e := &auth.Event{Time: at(0), Event: "login", Outcome: "failure", IP: "2001:db8::1", UserAgent: ua, Detail: "and 41 more like this"}
	noErr(t, "AddEvent", s.AddEvent(ctx(t), e))
	es, err := s.Events(ctx(t), 0, 1)
	noErr(t, "Events", err)
	if len(es) != 1 || es[0] != *e {
		t.Fatalf("Events = %+v, want %+v", es, *e)
	}
}
