package oidc

import (
	"testing"

	"github.com/latchkey/latchkey/internal/auth"
)

func TestValidateRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/cb", true},
		{"https://app.example.com:8443/cb?x=1", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:3000/cb", true},
		{"http://[::1]:3000/cb", true},
		{"http://app.example.com/cb", false},
		{"http://localhost.evil.com/cb", false},
		{"https://app.example.com/cb#frag", false},
		{"https://user@app.example.com/cb", false},
		{"https://app.example.com/c b", false},
		{"/cb", false},
		{"app.example.com/cb", false},
		{"javascript:alert(1)", false},
		{"ftp://app.example.com/cb", false},
	} {
		if err := ValidateRedirectURI(tc.uri); (err == nil) != tc.ok {
			t.Errorf("ValidateRedirectURI(%q) = %v, want ok %v", tc.uri, err, tc.ok)
		}
	}
}

func TestRedirectAllowed(t *testing.T) {
	conf := &auth.OIDCClient{RedirectURIs: []string{"https://app.example.com/cb", "http://127.0.0.1/cb"}}
	pub := &auth.OIDCClient{Public: true, RedirectURIs: conf.RedirectURIs}
	for _, tc := range []struct {
		c   *auth.OIDCClient
		uri string
		ok  bool
	}{
		{conf, "https://app.example.com/cb", true},
		{conf, "https://app.example.com/cb/", false},
		{conf, "https://APP.example.com/cb", false},
		{conf, "https://app.example.com/cb?x=1", false},
		{conf, "http://127.0.0.1:5000/cb", false}, // ports differ only for public clients
		{pub, "http://127.0.0.1:5000/cb", true},
		{pub, "http://127.0.0.1:5000/other", false},
		{pub, "http://127.0.0.1:5000/cb?x=1", false},
		{pub, "http://[::1]:5000/cb", false}, // another host, even if loopback
		{pub, "https://app.example.com:444/cb", false},
	} {
		if got := redirectAllowed(tc.c, tc.uri); got != tc.ok {
			t.Errorf("redirectAllowed(public %v, %q) = %v, want %v", tc.c.Public, tc.uri, got, tc.ok)
		}
	}
}
