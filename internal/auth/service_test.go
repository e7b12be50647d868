package auth

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"\xff\xfebad", 20, "\uFFFDbad"},
		{"héllo", 2, "h"}, // é is 2 bytes: never cut inside it
		{"日本語", 4, "日"},
	}
	for _, tt := range tests {
		got := truncate(tt.in, tt.n)
		if got != tt.want || !utf8.ValidString(got) || len(got) > max(tt.n, len(tt.want)) {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// TestNewTokenAvoidsPrefix feeds randomness that encodes to "lk_…" first: the token
// must be drawn again, or a session would be taken for a personal access token.
func TestNewTokenAvoidsPrefix(t *testing.T) {
	// base64url of 0x96 0x4f 0xff is "lk__": the first draw starts with "lk_".
	first := append([]byte{0x96, 0x4f, 0xff}, bytes.Repeat([]byte{0}, 29)...)
	second := bytes.Repeat([]byte{7}, 32)
	s := New(Config{}, Deps{Rand: bytes.NewReader(append(first, second...))})
	tok, hash, err := s.newToken(32)
	if err != nil || strings.HasPrefix(tok, TokenPrefix) || len(hash) != 32 {
		t.Fatalf("newToken = %q, %v; want a token without the %q prefix", tok, err, TokenPrefix)
	}
}

func TestSessionMethod(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	tests := []struct {
		factor  string
		mfaAt   time.Time
		method  string
		wantMFA bool
	}{
		{"", at, SessionPassword, false},
		{MethodTOTP, at, SessionPasswordTOTP, true},
		{MethodRecoveryCode, at, SessionPasswordRecoveryCode, true},
		{MethodTOTP, time.Time{}, SessionPasswordTOTP, false}, // a method without its time claims nothing
		{"sms", at, SessionPassword, false},
	}
	for _, tt := range tests {
		m := SessionMethodFor(tt.factor)
		s := Session{Method: m, MFAAt: tt.mfaAt}
		if m != tt.method || s.HasMFA() != tt.wantMFA {
			t.Errorf("SessionMethodFor(%q) = %q (HasMFA %v), want %q (%v)", tt.factor, m, s.HasMFA(), tt.method, tt.wantMFA)
		}
	}
}
