package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// authorizedKey returns a fresh ed25519 public key in authorized_keys form.
func authorizedKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// forgot asks for a reset link for addr and returns its token.
func (s *testServer) forgot(t *testing.T, addr string) string {
	t.Helper()
	s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": addr}).want(t, 202)
	m := resetLink.FindStringSubmatch(lastMailBody(s.outbox(t), addr, "Reset your password"))
	if m == nil {
		t.Fatalf("no reset link mailed to %s", addr)
	}
	return m[1]
}

// TestResetLinks: a reset link works once and dies when a newer one is issued and when
// the password changes; a reset ends every session and, unless asked not to, revokes
// every personal access token and SSH key; the reset page lists them with one
// checkbox, checked.
func TestResetLinks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "rita", "rita@example.com")
		sess := s.login(t, "rita")

		first := s.forgot(t, "rita@example.com")
		second := s.forgot(t, "rita@example.com")
		if first == second {
			t.Fatal("two requests mailed the same link")
		}
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": first, "new_password": "a fresh password 1"}).want(t, 400, "invalid_token")

		// A password change by any path kills the live link.
		s.call(t, "POST", "/api/v1/password", sess, map[string]string{"current_password": testPassword, "new_password": "changed password 2"}).want(t, 204)
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": second, "new_password": "a fresh password 3"}).want(t, 400, "invalid_token")
		sess = mustLogin(t, s, "rita", "changed password 2")

		pat := s.call(t, "POST", "/api/v1/tokens", sess, map[string]any{"name": "deploy bot"}).want(t, 201).str("token")
		s.call(t, "POST", "/api/v1/ssh-keys", sess, map[string]string{"title": "old laptop", "public_key": authorizedKey(t)}).want(t, 201)

		// The page lists what the reset can revoke, with the box checked.
		third := s.forgot(t, "rita@example.com")
		page := string(s.call(t, "GET", "/password/reset?token="+third, "", nil).want(t, 200).Raw)
		for _, want := range []string{"deploy bot", "old laptop", `name="revoke_credentials" value="yes" checked`} {
			if !strings.Contains(page, want) {
				t.Fatalf("reset page lacks %q:\n%s", want, page)
			}
		}
		// The default revokes them all, with every session.
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": third, "new_password": "a fresh password 4"}).want(t, 204)
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": third, "new_password": "a fresh password 5"}).want(t, 400, "invalid_token")
		s.call(t, "GET", "/api/v1/me", sess, nil).want(t, 401)
		s.call(t, "GET", "/api/v1/me", pat, nil).want(t, 401)
		sess = mustLogin(t, s, "rita", "a fresh password 4")
		if keys := s.call(t, "GET", "/api/v1/ssh-keys", sess, nil).want(t, 200).Body["ssh_keys"].([]any); len(keys) != 0 {
			t.Fatalf("SSH keys after a revoking reset: %v", keys)
		}
		if !strings.Contains(lastMailBody(s.outbox(t), "rita@example.com", "Your password was reset"), "revoked") {
			t.Fatal("the reset mail does not say the credentials were revoked")
		}

		// revoke_credentials false keeps them.
		pat = s.call(t, "POST", "/api/v1/tokens", sess, map[string]any{"name": "kept"}).want(t, 201).str("token")
		fourth := s.forgot(t, "rita@example.com")
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]any{"token": fourth, "new_password": "a fresh password 6", "revoke_credentials": false}).want(t, 204)
		s.call(t, "GET", "/api/v1/me", pat, nil).want(t, 200)

		// The page's checkbox, left unchecked, keeps them too.
		c := jarClient(t)
		form := s.pageForm(t, c, "/password/reset?token="+s.forgot(t, "rita@example.com"))
		form.Set("new_password", "a fresh password 7")
		s.postForm(t, c, "/password/reset", form)
		s.call(t, "GET", "/api/v1/me", pat, nil).want(t, 200)
	})
}
