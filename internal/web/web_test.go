package web

import (
	"testing"
	"time"
)

func TestLocalPath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"/settings/authentication", "/settings/authentication"},
		{"/settings/sessions?done=x", "/settings/sessions?done=x"},
		{"", ""},
		{"settings", ""},
		{"//evil.example/", ""},
		{"/\\evil.example", ""},
		{"https://evil.example/", ""},
		{"/ok\r\nSet-Cookie: x=y", ""},
		{"/%0d%0a", "/%0d%0a"},
	}
	for _, tt := range tests {
		if got := localPath(tt.in); got != tt.want {
			t.Errorf("localPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormTokenDiffersPerCookie(t *testing.T) {
	a, b := formToken("cookie-one-0123456789abcdef0123456789"), formToken("cookie-two-0123456789abcdef0123456789")
	if a == b || a == "" {
		t.Fatalf("formToken gave %q and %q, want two different tokens", a, b)
	}
}

func TestGroupsOfFour(t *testing.T) {
	if got := groupsOfFour("ABCDEFGHIJ"); got != "ABCD EFGH IJ" {
		t.Errorf("groupsOfFour = %q, want %q", got, "ABCD EFGH IJ")
	}
}

func TestWebTokenExpiry(t *testing.T) {
	tests := []struct {
		name, choice, days string
		want               int
		bad                bool
	}{
		{"one day", "days", "1", 1, false},
		{"a year", "days", "365", 365, false},
		{"spaces", "days", " 30 ", 30, false},
		{"no expiry", "never", "abc", 0, false},
		{"zero", "days", "0", 0, true},
		{"too long", "days", "366", 0, true},
		{"negative", "days", "-5", 0, true},
		{"words", "days", "ten", 0, true},
		{"fraction", "days", "1.5", 0, true},
		{"empty", "", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problem := tokenExpiry(tt.choice, tt.days)
			if got != tt.want || (problem != "") != tt.bad {
				t.Errorf("tokenExpiry(%q, %q) = %d, %q; want %d, problem %v", tt.choice, tt.days, got, problem, tt.want, tt.bad)
			}
		})
	}
}

func TestWebAge(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		before time.Duration
		want   string
	}{
		{30 * time.Second, "less than a minute"},
		{time.Minute, "1 minute"},
		{59 * time.Minute, "59 minutes"},
		{47 * time.Hour, "47 hours"},
		{400 * 24 * time.Hour, "400 days"},
	}
	for _, tt := range tests {
		if got := age(at.Add(-tt.before), at); got != tt.want {
			t.Errorf("age(%v before) = %q, want %q", tt.before, got, tt.want)
		}
	}
	if got := age(time.Time{}, at); got != "" {
		t.Errorf("age(zero) = %q, want empty", got)
	}
}

func TestWebSentence(t *testing.T) {
	for in, want := range map[string]string{
		"more than one line; add one key at a time": "More than one line; add one key at a time.",
		"Already a sentence.":                       "Already a sentence.",
		"":                                          "",
	} {
		if got := sentence(in); got != want {
			t.Errorf("sentence(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWebSettingsPageOf(t *testing.T) {
	for in, want := range map[string]string{
		"/settings/tokens":                "/settings/tokens",
		"/settings/tokens/3/revoke":       "/settings/tokens",
		"/settings/ssh-keys":              "/settings/ssh-keys",
		"/admin/recovery/abc/approve":     "/admin/recovery",
		"/settings/authentication/remove": "/settings/authentication",
		"/settings/sessions/4/revoke":     "/settings/sessions",
	} {
		if got := settingsPageOf(in); got != want {
			t.Errorf("settingsPageOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWebShownChallenge(t *testing.T) {
	for in, want := range map[string]bool{
		"latchkey-recovery:0123456789abcdef0123456789abcdef":    true,
		"latchkey-recovery:0123456789ABCDEF0123456789abcdef":    false,
		"latchkey-recovery:0123456789abcdef0123456789abcdef\n":  false,
		"<b>latchkey-recovery:0123456789abcdef0123456789abcdef": false,
		"": false,
	} {
		if got := shownChallenge.MatchString(in); got != want {
			t.Errorf("shownChallenge.MatchString(%q) = %v, want %v", in, got, want)
		}
	}
}
