// Package authz holds the pure rules of signing other applications in through a
// reverse proxy: which return URLs may be redirected to, and which policy a host
// gets. It does no I/O, so the pages, the forward-auth endpoints and the
// configuration share one definition and test it with tables.
package authz

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// maxReturnURL bounds a return URL: longer ones are refused rather than parsed, so a
// crafted parameter cannot make every answer expensive or fill a log line.
const maxReturnURL = 4096

// ReturnURLs decides which absolute URLs Latchkey may send a browser back to after
// signing in: only its own host and the hosts under cookie-domain, the hosts that
// receive the session cookie anyway. Anything else would make Latchkey an open
// redirect (oauth2-proxy CVE-2020-5233 and its many follow-ups).
type ReturnURLs struct {
	httpsOnly    bool
	publicHost   string // lower-case host of public-url, without the port
	cookieDomain string // lower-case, without a leading dot; "" when unset
}

// NewReturnURLs builds the rule from public-url and cookie-domain (may be empty).
func NewReturnURLs(publicURL, cookieDomain string) (*ReturnURLs, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("public-url %q is not an absolute http(s) URL", publicURL)
	}
	cd, err := NormalizeDomain(cookieDomain)
	if err != nil {
		return nil, err
	}
	return &ReturnURLs{httpsOnly: u.Scheme == "https", publicHost: strings.ToLower(u.Hostname()), cookieDomain: cd}, nil
}

// NormalizeDomain checks a cookie domain ("example.com", a leading dot tolerated) and
// returns it in lower case without the dot; "" stays "". It must have at least two
// labels, so that a typo such as "com" cannot hand the session cookie to a whole
// top-level domain.
func NormalizeDomain(d string) (string, error) {
	d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "."))
	if d == "" {
		return "", nil
	}
	if !validHostname(d) || !strings.Contains(d, ".") || net.ParseIP(d) != nil {
		return "", fmt.Errorf("cookie-domain %q must be a domain name such as example.com", d)
	}
	return d, nil
}

// ErrReturnURL is why Check refused a URL; the detail never reaches a browser.
var ErrReturnURL = errors.New("return URL not allowed")

// Check parses raw and returns it if Latchkey may redirect there: an absolute http(s)
// URL (https when public-url is), without user info, backslashes, whitespace or
// control characters, whose host is public-url's host, cookie-domain or a subdomain
// of it. The string is checked before parsing as well as after, because browsers
// repair what Go's parser keeps (a backslash is a slash to them, a tab vanishes).
func (a *ReturnURLs) Check(raw string) (*url.URL, error) {
	if raw == "" || len(raw) > maxReturnURL {
		return nil, fmt.Errorf("%w: empty or too long", ErrReturnURL)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return nil, fmt.Errorf("%w: whitespace, control, backslash or non-ASCII byte", ErrReturnURL)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReturnURL, err)
	}
	switch {
	case u.Scheme != "https" && (u.Scheme != "http" || a.httpsOnly):
		return nil, fmt.Errorf("%w: scheme %q", ErrReturnURL, u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return nil, fmt.Errorf("%w: not an absolute URL with a host", ErrReturnURL)
	case u.User != nil || strings.Contains(authority(raw), "@"):
		return nil, fmt.Errorf("%w: user info", ErrReturnURL)
	}
	if !a.HostAllowed(u.Host) {
		return nil, fmt.Errorf("%w: host %q", ErrReturnURL, u.Host)
	}
	return u, nil
}

// HostAllowed reports whether hostport (a URL's host, with or without a port) is
// public-url's host, cookie-domain or a subdomain of it. Only plain DNS names and
// public-url's own host pass: no percent-encoding, no Unicode, no trailing dot.
func (a *ReturnURLs) HostAllowed(hostport string) bool {
	host, port := splitHostPort(hostport)
	if port != "" && !allDigits(port) {
		return false
	}
	host = strings.ToLower(host)
	if host == a.publicHost && host != "" {
		return true
	}
	if a.cookieDomain == "" || !validHostname(host) {
		return false
	}
	return host == a.cookieDomain || strings.HasSuffix(host, "."+a.cookieDomain)
}

// authority is the part of an absolute URL between "//" and the next "/", "?" or "#".
func authority(raw string) string {
	_, rest, ok := strings.Cut(raw, "//")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// splitHostPort splits "host:port", "[v6]:port", "host" and "[v6]" without failing.
func splitHostPort(hp string) (host, port string) {
	if strings.HasPrefix(hp, "[") {
		end := strings.Index(hp, "]")
		if end < 0 {
			return hp, ""
		}
		host, rest := hp[:end+1], hp[end+1:]
		if strings.HasPrefix(rest, ":") {
			return host, rest[1:]
		}
		if rest != "" {
			return hp, "x" // junk after the bracket: never a valid port
		}
		return host, ""
	}
	if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		return hp[:i], hp[i+1:]
	}
	return hp, ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0 && len(s) <= 5
}

// validHostname accepts an ASCII DNS name: labels of letters, digits and hyphens, not
// starting or ending with a hyphen, separated by single dots, no trailing dot.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
