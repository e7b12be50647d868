package web

import "testing"

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
