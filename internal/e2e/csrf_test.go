package e2e

import (
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
)

// stateChangingRoutes reads every unsafe route pattern from the files that register
// routes, so a route added later is covered without touching this test.
func stateChangingRoutes(t *testing.T) (apiRoutes, pageRoutes []string) {
	t.Helper()
	re := regexp.MustCompile(`mux\.Handle(?:Func)?\("((?:POST|PUT|PATCH|DELETE) [^"]+)"`)
	for _, file := range []string{"../server/routes.go", "../web/web.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			if strings.Contains(m[1], " /api/") {
				apiRoutes = append(apiRoutes, m[1])
			} else {
				pageRoutes = append(pageRoutes, m[1])
			}
		}
	}
	if len(apiRoutes) < 10 || len(pageRoutes) < 10 {
		t.Fatalf("found %d API and %d page routes; the pattern no longer matches routes.go or web.go", len(apiRoutes), len(pageRoutes))
	}
	return apiRoutes, pageRoutes
}

// TestCSRFEveryCookieStateChange: every state-changing route, with the session cookie
// and none of the headers http.CrossOriginProtection judges (an old browser posting a
// cross-site form), is refused unless it carries the defence of its kind: the form
// token for pages, Content-Type: application/json for the API, with or without a body.
// Requests authenticated by Authorization: Bearer, and requests with no cookie and no
// browser headers, are not checked.
func TestCSRFEveryCookieStateChange(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	s.signup(t, "carol", "carol@example.com")
	tok := s.login(t, "carol")
	cookie := "latchkey_session=" + tok
	apiRoutes, pageRoutes := stateChangingRoutes(t)
	noRedirect := jarClient(t)
	send := func(method, path, contentType, body string, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	concrete := func(route string) (string, string) {
		method, path, _ := strings.Cut(route, " ")
		return method, regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "1")
	}

	for _, route := range apiRoutes {
		method, path := concrete(route)
		for _, tc := range []struct{ name, contentType, body string }{
			{"no body", "", ""},
			{"empty form", "application/x-www-form-urlencoded", ""},
			{"form body", "application/x-www-form-urlencoded", "name=csrf&login=carol"},
			{"text body", "text/plain", `{"name":"csrf"}`},
		} {
			t.Run(route+"/"+tc.name, func(t *testing.T) {
				resp := send(method, path, tc.contentType, tc.body, map[string]string{"Cookie": cookie})
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("%s %s with the cookie, %s, no browser headers = %d, want 403", method, path, tc.name, resp.StatusCode)
				}
			})
		}
	}
	for _, route := range pageRoutes {
		method, path := concrete(route)
		t.Run(route, func(t *testing.T) {
			for _, body := range []string{"", "login=carol&password=" + url.QueryEscape(testPassword) + "&confirm=on"} {
				resp := send(method, path, "application/x-www-form-urlencoded", body, map[string]string{"Cookie": cookie})
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("%s %s with the cookie, no form token, no browser headers (body %q) = %d, want 403", method, path, body, resp.StatusCode)
				}
			}
		})
	}
	// Nothing above changed anything: the session is alive and no token was made.
	s.callWith(t, http.DefaultClient, "GET", "/api/v1/me", "", nil, map[string]string{"Cookie": cookie}).want(t, 200)
	if toks := s.call(t, "GET", "/api/v1/tokens", tok, nil).want(t, 200); strings.Contains(string(toks.Raw), "csrf") {
		t.Fatalf("a refused request created a token: %s", toks.Raw)
	}

	// What is not checked, and what passes.
	other := s.login(t, "carol")
	cases := []struct {
		name              string
		method, path      string
		contentType, body string
		hdr               map[string]string
		want              int
	}{
		{"cookie, JSON declared, no body", "DELETE", "/api/v1/sessions/999999", "application/json", "", map[string]string{"Cookie": cookie}, 404},
		{"bearer from a foreign origin, no content type", "POST", "/api/v1/logout", "", "",
			map[string]string{"Authorization": "Bearer " + other, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, 204},
		{"no cookie, no browser headers, text body", "POST", "/api/v1/password/forgot", "text/plain", `{"email":"carol@example.com"}`, nil, 202},
		{"no cookie, no browser headers, no body", "POST", "/api/v1/logout", "", "", nil, 401},
		{"no cookie, foreign origin", "POST", "/api/v1/login", "application/json", `{"login":"carol","password":"` + testPassword + `"}`,
			map[string]string{"Origin": "https://evil.example"}, 403},
		{"no cookie, cross-site fetch metadata", "POST", "/api/v1/login", "application/json", `{"login":"carol","password":"` + testPassword + `"}`,
			map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"cookie, foreign origin, JSON", "POST", "/api/v1/logout", "application/json", "", map[string]string{"Cookie": cookie, "Origin": "https://evil.example"}, 403},
		{"cookie, same origin, JSON, no body", "POST", "/api/v1/logout", "application/json", "",
			map[string]string{"Cookie": cookie, "Origin": s.URL, "Sec-Fetch-Site": "same-origin"}, 204},
	}
	for _, tc := range cases {
		resp := send(tc.method, tc.path, tc.contentType, tc.body, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	s.callWith(t, http.DefaultClient, "GET", "/api/v1/me", "", nil, map[string]string{"Cookie": cookie}).want(t, 401)
}
