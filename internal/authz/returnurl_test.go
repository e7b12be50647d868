package authz

import (
	"strings"
	"testing"
)

func TestReturnURLsCheck(t *testing.T) {
	https, err := NewReturnURLs("https://id.example.com", "example.com")
	if err != nil {
		t.Fatal(err)
	}
	noDomain, err := NewReturnURLs("https://id.example.com:8443", "")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewReturnURLs("http://localhost:8080", ".Example.COM")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		a    *ReturnURLs
		raw  string
		ok   bool
	}{
		{"subdomain", https, "https://grafana.example.com/d/abc?x=1#top", true},
		{"deep subdomain with port", https, "https://a.b.example.com:8443/", true},
		{"the cookie domain itself", https, "https://example.com/", true},
		{"public-url host", https, "https://id.example.com/settings", true},
		{"upper-case host", https, "https://GRAFANA.Example.com/", true},
		{"upper-case scheme", https, "HTTPS://grafana.example.com/", true},
		{"public host, no cookie domain", noDomain, "https://id.example.com/x", true},
		{"sibling without cookie domain", noDomain, "https://grafana.example.com/", false},
		{"http allowed under http public-url", plain, "http://app.example.com/", true},
		{"localhost under http public-url", plain, "http://localhost:9000/", true},

		{"foreign domain", https, "https://evil.com/", false},
		{"suffix without dot", https, "https://evilexample.com/", false},
		{"cookie domain as a label", https, "https://example.com.evil.com/", false},
		{"trailing dot", https, "https://grafana.example.com./", false},
		{"http when public-url is https", https, "http://grafana.example.com/", false},
		{"scheme-relative", https, "//evil.com/", false},
		{"scheme-relative to our host", https, "//grafana.example.com/", false},
		{"triple slash", https, "https:///evil.com/", false},
		{"relative path", https, "/settings", false},
		{"opaque", https, "https:evil.com", false},
		{"javascript", https, "javascript:alert(1)", false},
		{"javascript with comment", https, "javascript://grafana.example.com/%0aalert(1)", false},
		{"data", https, "data:text/html,<script>alert(1)</script>", false},
		{"userinfo to foreign host", https, "https://grafana.example.com@evil.com/", false},
		{"userinfo to our host", https, "https://evil.com@grafana.example.com/", false},
		{"userinfo with password", https, "https://u:p@grafana.example.com/", false},
		{"encoded at in userinfo", https, "https://evil.com%40grafana.example.com/", false},
		{"at after encoded slash", https, "https://evil.com%2f@grafana.example.com/", false},
		{"backslash authority", https, "https://evil.com\\@grafana.example.com/", false},
		{"backslash path", https, "https://grafana.example.com\\evil.com", false},
		{"backslash scheme-relative", https, "/\\evil.com", false},
		{"encoded dot in host", https, "https://evil%2ecom/", false},
		{"encoded host", https, "https://grafana%2eexample.com/", false},
		{"null byte in host", https, "https://evil.com%00.example.com/", false},
		{"fragment trick", https, "https://evil.com#@grafana.example.com", false},
		{"query trick", https, "https://evil.com?@grafana.example.com", false},
		{"leading space", https, " https://grafana.example.com/", false},
		{"trailing space", https, "https://grafana.example.com/ ", false},
		{"tab in scheme", https, "ht\ttps://evil.com/", false},
		{"newline", https, "https://grafana.example.com/\r\nSet-Cookie:x=y", false},
		{"control char", https, "https://grafana.example.com/\x01", false},
		{"unicode lookalike", https, "https://grafana.exаmple.com/", false},
		{"unicode full stop", https, "https://evil.com。example.com/", false},
		{"port junk", https, "https://grafana.example.com:80x/", false},
		{"ipv6 literal", https, "https://[::1]/", false},
		{"ip address", https, "https://127.0.0.1/", false},
		{"empty", https, "", false},
		{"too long", https, "https://grafana.example.com/" + strings.Repeat("a", 5000), false},
		{"ftp", https, "ftp://grafana.example.com/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := tt.a.Check(tt.raw)
			if (err == nil) != tt.ok {
				t.Fatalf("Check(%q) = %v, %v; want ok %v", tt.raw, u, err, tt.ok)
			}
		})
	}
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"example.com", "example.com", true},
		{".Example.COM", "example.com", true},
		{"com", "", false},
		{"*.example.com", "", false},
		{"example.com.", "", false},
		{"10.0.0.1", "", false},
		{"exa mple.com", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeDomain(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
