package authz

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzReturnURL: whatever Check accepts is an http(s) URL without user info,
// backslash or control characters whose host a browser would also read as ours —
// parsed again from the accepted string, it lands on the same allowed host.
func FuzzReturnURL(f *testing.F) {
	for _, s := range []string{"https://grafana.example.com/x", "//evil.com", "https://a@b.example.com",
		"https://evil.com\\@grafana.example.com", "javascript:alert(1)", "https://grafana.example.com%2f@evil.com",
		"HTTPS://ID.EXAMPLE.COM:8443/?rd=https://evil.com", "https://[::1]/", "https:evil.com"} {
		f.Add(s)
	}
	a, err := NewReturnURLs("https://id.example.com", "example.com")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := a.Check(raw)
		if err != nil {
			return
		}
		if u.Scheme != "https" || u.User != nil || strings.ContainsAny(raw, "\\ \t\r\n") {
			t.Fatalf("Check(%q) accepted %#v", raw, u)
		}
		again, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("Check(%q) accepted what does not parse: %v", raw, err)
		}
		host := strings.ToLower(again.Hostname())
		if host != "id.example.com" && host != "example.com" && !strings.HasSuffix(host, ".example.com") {
			t.Fatalf("Check(%q) accepted host %q", raw, host)
		}
	})
}
