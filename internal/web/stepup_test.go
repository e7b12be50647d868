package web

import (
	"testing"

	"github.com/latchkey/latchkey/internal/authz"
)

func TestWebReturnTo(t *testing.T) {
	rs, err := authz.NewReturnURLs("https://id.example.com", "example.com")
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{returns: rs}
	tests := []struct{ in, want string }{
		{"https://grafana.example.com/d/1?x=y", "https://grafana.example.com/d/1?x=y"},
		{"/step-up?rd=https%3A%2F%2Fgrafana.example.com%2F", "/step-up?rd=https%3A%2F%2Fgrafana.example.com%2F"},
		{"/oauth2/authorize?client_id=x", "/oauth2/authorize?client_id=x"},
		{"/login?rd=https://evil.com/", ""}, // the sign-in page itself would loop
		{"/signup", ""},
		{"//evil.com/", ""},
		{"/\\evil.com", ""},
		{"https://evil.com/", ""},
		{"http://grafana.example.com/", ""},
		{"javascript:alert(1)", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := h.returnTo(tt.in); got != tt.want {
			t.Errorf("returnTo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := (&Handler{}).returnTo("https://grafana.example.com/"); got != "" {
		t.Errorf("returnTo without a rule = %q, want empty", got)
	}
}

func TestWebCookieName(t *testing.T) {
	for _, tt := range []struct {
		secure bool
		domain string
		want   string
	}{
		{false, "", "latchkey_session"},
		{true, "", "__Host-latchkey_session"},
		{true, "example.com", "__Secure-latchkey_session"},
		{false, "example.com", "latchkey_session"},
	} {
		if got := CookieName(tt.secure, tt.domain); got != tt.want {
			t.Errorf("CookieName(%v, %q) = %q, want %q", tt.secure, tt.domain, got, tt.want)
		}
	}
}
