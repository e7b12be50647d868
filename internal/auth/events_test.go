package auth

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestFoldable(t *testing.T) {
	tests := []struct {
		e    Event
		want bool
	}{
		{Event{UserID: 0, Event: "login", Outcome: "failure"}, true},
		{Event{UserID: 0, Event: "login", Outcome: "locked_ip"}, true},
		{Event{UserID: 0, Event: "recovery_verify", Outcome: "failure"}, true},
		{Event{UserID: 7, Event: "password_forgot", Outcome: "sent"}, true},
		{Event{UserID: 7, Event: "login", Outcome: "locked"}, true},
		{Event{UserID: 7, Event: "recovery_requested", Outcome: "limited"}, true},
		{Event{UserID: 7, Event: "login_mfa", Outcome: "locked"}, true},
		{Event{UserID: 7, Event: "mfa_locked", Outcome: "locked"}, false},
		{Event{UserID: 7, Event: "recovery_closed", Outcome: "locked"}, false},
		{Event{UserID: 7, Event: "login", Outcome: "failure"}, false},
		{Event{UserID: 7, Event: "login", Outcome: "success"}, false},
		{Event{UserID: 7, Event: "mfa_disabled", Outcome: "success"}, false},
	}
	for _, tt := range tests {
		if got := foldable(&tt.e); got != tt.want {
			t.Errorf("foldable(%+v) = %v, want %v", tt.e, got, tt.want)
		}
	}
}

// TestEventFolder: per address and minute, foldPerMinute rows pass; the rest become one
// "N more" row per kind when the minute is over, whether the address comes back or
// another one sweeps; nothing is lost.
func TestEventFolder(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 5, 0, time.UTC)
	var f eventFolder
	ev := func(ip string, d time.Duration, user UserID, name, outcome string) *Event {
		return &Event{UserID: user, Time: t0.Add(d), Event: name, Outcome: outcome, IP: ip, UserAgent: "ua"}
	}
	written := 0
	var due []*Event
	admit := func(e *Event) {
		w, d := f.admit(e)
		if w {
			written++
		}
		due = append(due, d...)
	}
	for i := range 100 {
		// One /64, addresses changing at will.
		admit(ev(fmt.Sprintf("2001:db8::%x", i+1), time.Duration(i)*100*time.Millisecond, 0, "login", "failure"))
	}
	for range 30 {
		admit(ev("2001:db8::1", 20*time.Second, 9, "password_forgot", "limited"))
	}
	admit(ev("192.0.2.1", 30*time.Second, 0, "login", "locked_ip"))
	if written != foldPerMinute+1 || len(due) != 0 {
		t.Fatalf("within the minute: %d written, %d due; want %d written (the /64's limit and the other address) and none due",
			written, len(due), foldPerMinute+1)
	}
	// The next minute: the first event of any address sweeps every finished minute.
	admit(ev("198.51.100.1", time.Minute, 0, "login", "failure"))
	if len(due) != 2 {
		t.Fatalf("after the minute: %d rows due, want 2 (one per kind): %+v", len(due), due)
	}
	counts := map[string]int{}
	for _, e := range due {
		var n int
		if _, err := fmt.Sscanf(e.Detail, "and %d more like this", &n); err != nil || !strings.Contains(e.Detail, "2001:db8::/64") {
			t.Fatalf("\"N more\" row detail = %q", e.Detail)
		}
		counts[fmt.Sprintf("%d %s %s", e.UserID, e.Event, e.Outcome)] = n
	}
	if counts["0 login failure"] != 100-foldPerMinute || counts["9 password_forgot limited"] != 30 {
		t.Fatalf("\"N more\" counts = %v, want 90 login failures and 30 limited forgot-passwords for user 9", counts)
	}
	// The /64 starts afresh in the new minute.
	before := written
	admit(ev("2001:db8::1", time.Minute+time.Second, 0, "login", "failure"))
	if written != before+1 {
		t.Fatal("the address's first event of a new minute was folded")
	}
	if rest := f.flushAll(); len(rest) != 0 {
		t.Fatalf("flushAll after a clean sweep = %+v, want nothing", rest)
	}
}

// TestEventFolderBounds: the addresses and kinds remembered are bounded, and what is
// beyond the bounds is still counted.
func TestEventFolderBounds(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	var f eventFolder
	total := 0
	for i := range foldMaxAddrs + 50 {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		for range foldPerMinute + 1 {
			f.admit(&Event{Time: t0, Event: "login", Outcome: "failure", IP: ip})
		}
		total++
	}
	if len(f.addrs) != foldMaxAddrs || f.others == nil {
		t.Fatalf("remembered %d addresses (others %v), want %d and the rest shared", len(f.addrs), f.others != nil, foldMaxAddrs)
	}
	for k := range foldMaxKinds + 5 {
		f.admit(&Event{Time: t0, UserID: UserID(k + 1), Event: "password_forgot", Outcome: "limited", IP: "10.0.0.0"})
	}
	if n := len(f.addrs["10.0.0.0"].folded); n > foldMaxKinds+1 {
		t.Fatalf("one address holds %d kinds, want at most %d", n, foldMaxKinds+1)
	}
	sum := 0
	for _, e := range f.flushAll() {
		var n int
		fmt.Sscanf(e.Detail, "and %d more like this", &n)
		sum += n
	}
	// Each remembered address folded one login failure; the 50 beyond share a bucket,
	// which passed its first foldPerMinute events and folded the rest; plus the 21
	// forgot-passwords of one address.
	want := foldMaxAddrs + (50*(foldPerMinute+1) - foldPerMinute) + foldMaxKinds + 5
	if sum != want {
		t.Fatalf("\"N more\" rows account for %d events, want %d", sum, want)
	}
	if len(f.addrs) != 0 || f.others != nil {
		t.Fatal("flushAll left buckets behind")
	}
}
