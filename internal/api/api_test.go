package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/apptest"
	"github.com/latchkey/latchkey/internal/auth"
)

// answer is one JSON response, decoded.
type answer struct {
	code int
	body map[string]any
	raw  string
}

func call(t *testing.T, e *apptest.Env, method, path, token string, body any) answer {
	t.Helper()
	var s string
	switch b := body.(type) {
	case nil:
	case string:
		s = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		s = string(raw)
	}
	return decoded(t, e.JSON(method, path, token, s))
}

func decoded(t *testing.T, rec *httptest.ResponseRecorder) answer {
	t.Helper()
	a := answer{code: rec.Code, raw: rec.Body.String()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && a.raw != "" {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
			t.Fatalf("response %q is not a JSON object: %v", a.raw, err)
		}
	}
	return a
}

// want fails unless the answer has the status and, if given, the error code.
func (a answer) want(t *testing.T, code int, errCode ...string) answer {
	t.Helper()
	if a.code != code {
		t.Fatalf("status = %d, want %d; body %s", a.code, code, a.raw)
	}
	if len(errCode) > 0 {
		e, _ := a.body["error"].(map[string]any)
		if e == nil || e["code"] != errCode[0] {
			t.Fatalf("error = %s, want code %q", a.raw, errCode[0])
		}
	}
	return a
}

func (a answer) str(key string) string { s, _ := a.body[key].(string); return s }

// TestAccountAndMFA walks sign-up, sign-in, enrolment, the second factor (code and
// recovery code), re-authentication, regeneration, password change and removal.
func TestAccountAndMFA(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	call(t, e, "POST", "/api/v1/signup", "", map[string]string{"username": "alice", "email": "alice@example.com", "password": apptest.Password}).want(t, 201)
	call(t, e, "POST", "/api/v1/signup", "", map[string]string{"username": "alice", "email": "a2@example.com", "password": apptest.Password}).want(t, 409)
	bad := call(t, e, "POST", "/api/v1/signup", "", map[string]string{"username": "a", "email": "nope", "password": "x"}).want(t, 400, "invalid_input")
	if f, _ := bad.body["error"].(map[string]any)["fields"].(map[string]any); len(f) != 3 {
		t.Fatalf("invalid sign-up fields = %v, want username, email and password", f)
	}
	call(t, e, "POST", "/api/v1/signup", "", `{"username":`).want(t, 400)
	call(t, e, "POST", "/api/v1/signup", "", `{"username":"x","bogus":1}`).want(t, 400)

	call(t, e, "POST", "/api/v1/login", "", map[string]string{"login": "alice", "password": "wrong password"}).want(t, 401, "invalid_credentials")
	// Only a verified address signs in.
	call(t, e, "POST", "/api/v1/login", "", map[string]string{"login": "alice@example.com", "password": apptest.Password}).want(t, 401, "invalid_credentials")
	call(t, e, "POST", "/api/v1/email/verify", "", map[string]string{"token": e.LinkToken(t, "alice@example.com", "/verify-email")}).want(t, 200)
	login := call(t, e, "POST", "/api/v1/login", "", map[string]string{"login": "alice@example.com", "password": apptest.Password}).want(t, 200)
	tok := login.str("session_token")
	me := call(t, e, "GET", "/api/v1/me", tok, nil).want(t, 200)
	if mfa := me.body["mfa"].(map[string]any); mfa["enabled"] != false || mfa["recovery_codes_remaining"] != nil {
		t.Fatalf("me before MFA = %s", me.raw)
	}

	// Enrolment: the setup, its QR codes, a wrong code, the right one.
	call(t, e, "GET", "/api/v1/mfa/totp/setup/qr.png", tok, nil).want(t, 404, "no_pending_setup")
	setup := call(t, e, "POST", "/api/v1/mfa/totp/setup", tok, nil).want(t, 200)
	for _, f := range []struct{ path, ctype string }{{"/api/v1/mfa/totp/setup/qr.png", "image/png"}, {"/api/v1/mfa/totp/setup/qr.svg", "image/svg+xml"}} {
		rec := e.JSON("GET", f.path, tok, "")
		if rec.Code != 200 || rec.Header().Get("Content-Type") != f.ctype || rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("GET %s = %d %v", f.path, rec.Code, rec.Header())
		}
	}
	secret := secretOf(t, e, tok)
	if setup.str("secret") == "" || !strings.Contains(setup.str("otpauth_uri"), setup.str("secret")) {
		t.Fatalf("setup = %s", setup.raw)
	}
	call(t, e, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": "000000"}).want(t, 400, "invalid_code")
	conf := call(t, e, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": e.Code(secret)}).want(t, 200)
	codes := conf.body["recovery_codes"].([]any)
	if len(codes) != 16 || conf.str("recovery_codes_filename") != "latchkey-recovery-codes.txt" {
		t.Fatalf("confirm = %s", conf.raw)
	}
	call(t, e, "POST", "/api/v1/mfa/totp/setup", tok, nil).want(t, 409, "mfa_already_enabled")
	counts := call(t, e, "GET", "/api/v1/mfa/recovery-codes", tok, nil).want(t, 200)
	if counts.body["remaining"] != 16.0 {
		t.Fatalf("recovery-codes = %s", counts.raw)
	}
	e.Clock.Advance(30_000_000_000)

	// The second factor: a code, then its replay refused, then a recovery code.
	step := call(t, e, "POST", "/api/v1/login", "", map[string]string{"login": "alice", "password": apptest.Password}).want(t, 200)
	if step.str("status") != auth.StatusMFARequired {
		t.Fatalf("login with MFA = %s", step.raw)
	}
	code := e.Code(secret)
	call(t, e, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": step.str("mfa_token"), "code": code}).want(t, 200)
	step = call(t, e, "POST", "/api/v1/login", "", map[string]string{"login": "alice", "password": apptest.Password}).want(t, 200)
	call(t, e, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": step.str("mfa_token"), "code": code}).want(t, 401, "invalid_code")
	rc := call(t, e, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": step.str("mfa_token"), "recovery_code": codes[0].(string)}).want(t, 200)
	if rc.body["recovery_codes_remaining"] != 15.0 {
		t.Fatalf("sign-in with a recovery code = %s", rc.raw)
	}
	call(t, e, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": "nope", "code": code}).want(t, 401, "invalid_mfa_token")
	me = call(t, e, "GET", "/api/v1/me", tok, nil).want(t, 200)
	if mfa := me.body["mfa"].(map[string]any); mfa["enabled"] != true || mfa["recovery_codes_remaining"] != 15.0 {
		t.Fatalf("me with MFA = %s", me.raw)
	}

	// Re-authentication: past the window, sensitive actions ask for it.
	e.Clock.Advance(11 * 60_000_000_000)
	call(t, e, "POST", "/api/v1/mfa/recovery-codes/regenerate", tok, nil).want(t, 403, "reauth_required")
	call(t, e, "POST", "/api/v1/reauth", tok, map[string]string{"password": "wrong password", "code": e.Code(secret)}).want(t, 401)
	call(t, e, "POST", "/api/v1/reauth", tok, map[string]string{"password": apptest.Password, "code": e.Code(secret)}).want(t, 200)
	regen := call(t, e, "POST", "/api/v1/mfa/recovery-codes/regenerate", tok, nil).want(t, 200)
	if len(regen.body["recovery_codes"].([]any)) != 16 {
		t.Fatalf("regenerate = %s", regen.raw)
	}
	call(t, e, "POST", "/api/v1/password", tok, map[string]string{"current_password": "wrong password", "new_password": "another good password"}).want(t, 400, "invalid_input")
	call(t, e, "POST", "/api/v1/password", tok, map[string]string{"current_password": apptest.Password, "new_password": "another good password"}).want(t, 204)
	call(t, e, "DELETE", "/api/v1/mfa", tok, nil).want(t, 200)
	call(t, e, "GET", "/api/v1/mfa/recovery-codes", tok, nil).want(t, 409, "mfa_not_enabled")
	call(t, e, "POST", "/api/v1/logout", tok, nil).want(t, 204)
	call(t, e, "GET", "/api/v1/me", tok, nil).want(t, 401)
}

// secretOf reads the pending setup's secret as the Service holds it.
func secretOf(t *testing.T, e *apptest.Env, tok string) []byte {
	t.Helper()
	st, err := e.Service.PendingSetup(context.Background(), e.Principal(t, tok))
	if err != nil {
		t.Fatalf("PendingSetup = %v", err)
	}
	return st.Secret
}

// TestSessionsTokensAndLog: the lists, a revocation of each, and the security log.
func TestSessionsTokensAndLog(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	e.SignUp(t, "bob")
	tok := e.SignIn(t, "bob", nil)
	other := e.SignIn(t, "bob", nil)

	ss := call(t, e, "GET", "/api/v1/sessions", tok, nil).want(t, 200)
	list := ss.body["sessions"].([]any)
	if len(list) != 2 {
		t.Fatalf("sessions = %s", ss.raw)
	}
	var otherID float64
	for _, s := range list {
		if m := s.(map[string]any); m["current"] == false {
			otherID = m["id"].(float64)
		}
	}
	call(t, e, "DELETE", fmt.Sprintf("/api/v1/sessions/%d", int(otherID)), tok, nil).want(t, 204)
	call(t, e, "GET", "/api/v1/me", other, nil).want(t, 401)
	call(t, e, "DELETE", "/api/v1/sessions/999999", tok, nil).want(t, 404, "not_found")
	call(t, e, "DELETE", "/api/v1/sessions/abc", tok, nil).want(t, 404, "not_found")

	created := call(t, e, "POST", "/api/v1/tokens", tok, map[string]any{"name": "ci", "expires_in_days": 30}).want(t, 201)
	pat := created.str("token")
	if !strings.HasPrefix(pat, auth.TokenPrefix) {
		t.Fatalf("create token = %s", created.raw)
	}
	call(t, e, "GET", "/api/v1/me", pat, nil).want(t, 200)
	call(t, e, "POST", "/api/v1/tokens", pat, map[string]any{"name": "from a token"}).want(t, 403, "forbidden_for_token")
	call(t, e, "POST", "/api/v1/tokens", tok, map[string]any{"name": ""}).want(t, 400)
	tl := call(t, e, "GET", "/api/v1/tokens", tok, nil).want(t, 200)
	toks := tl.body["tokens"].([]any)
	if len(toks) != 1 {
		t.Fatalf("tokens = %s", tl.raw)
	}
	id := int(toks[0].(map[string]any)["id"].(float64))
	call(t, e, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", id), tok, nil).want(t, 204)
	call(t, e, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", id), tok, nil).want(t, 404)
	call(t, e, "GET", "/api/v1/me", pat, nil).want(t, 401)

	log := call(t, e, "GET", "/api/v1/security-log", tok, nil).want(t, 200)
	if !strings.Contains(log.raw, "token_created") || !strings.Contains(log.raw, "session_revoked") {
		t.Fatalf("security log = %s", log.raw)
	}
}

// TestPasswordReset: the forgot form answers the same for any address; the mailed
// link sets a new password once.
func TestPasswordReset(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	e.SignUp(t, "carol")
	call(t, e, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "nobody@example.com"}).want(t, 202)
	call(t, e, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "carol@example.com"}).want(t, 202)
	link := e.LinkToken(t, "carol@example.com", "/password/reset")
	call(t, e, "POST", "/api/v1/password/reset", "", map[string]string{"token": link, "new_password": "short"}).want(t, 400)
	call(t, e, "POST", "/api/v1/password/reset", "", map[string]string{"token": link, "new_password": "a brand new password"}).want(t, 204)
	call(t, e, "POST", "/api/v1/password/reset", "", map[string]string{"token": link, "new_password": "a brand new password"}).want(t, 400, "invalid_token")
	call(t, e, "POST", "/api/v1/login", "", map[string]string{"login": "carol", "password": "a brand new password"}).want(t, 200)
}

// TestRecoveryWithSSHKey: a registered key proves the owner; an operator approves;
// decoys and wrong proofs fail alike; the owner's cancel link works.
func TestRecoveryWithSSHKey(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	if _, err := e.Service.CreateUser(context.Background(), apptest.Client, "root", "root@example.com", apptest.Password, true); err != nil {
		t.Fatal(err)
	}
	e.SignUp(t, "dave")
	tok := e.SignIn(t, "dave", nil)
	key := apptest.NewSSHKey(t)
	call(t, e, "POST", "/api/v1/ssh-keys", tok, map[string]string{"title": "laptop", "public_key": "ssh-rsa AAAA nonsense"}).want(t, 400)
	added := call(t, e, "POST", "/api/v1/ssh-keys", tok, map[string]string{"title": "laptop", "public_key": key.AuthorizedKey}).want(t, 201)
	keys := call(t, e, "GET", "/api/v1/ssh-keys", tok, nil).want(t, 200)
	if len(keys.body["ssh_keys"].([]any)) != 1 || added.str("fingerprint") == "" {
		t.Fatalf("ssh keys = %s / %s", added.raw, keys.raw)
	}

	// A request for an unknown login looks the same and fails at verification.
	decoy := call(t, e, "POST", "/api/v1/recovery", "", map[string]string{"login": "nobody"}).want(t, 202)
	call(t, e, "POST", "/api/v1/recovery/"+decoy.str("request_id")+"/verify", "",
		map[string]string{"ssh_signature": key.Sign(t, decoy.str("namespace"), decoy.str("challenge"))}).want(t, 400, "verification_failed")

	req := call(t, e, "POST", "/api/v1/recovery", "", map[string]string{"login": "dave"}).want(t, 202)
	id := req.str("request_id")
	call(t, e, "POST", "/api/v1/recovery/"+id+"/verify", "", map[string]string{}).want(t, 400)
	call(t, e, "POST", "/api/v1/recovery/"+id+"/verify", "",
		map[string]string{"ssh_signature": key.Sign(t, req.str("namespace"), "another message")}).want(t, 400, "verification_failed")
	call(t, e, "POST", "/api/v1/recovery/"+id+"/verify", "",
		map[string]string{"ssh_signature": key.Sign(t, req.str("namespace"), req.str("challenge"))}).want(t, 200)

	call(t, e, "GET", "/api/v1/admin/recovery-requests", tok, nil).want(t, 403)
	root := e.SignIn(t, "root", nil)
	list := call(t, e, "GET", "/api/v1/admin/recovery-requests", root, nil).want(t, 200)
	if !strings.Contains(list.raw, id) {
		t.Fatalf("admin list = %s", list.raw)
	}
	call(t, e, "POST", "/api/v1/admin/recovery-requests/"+id+"/approve", root, map[string]string{"reason": ""}).want(t, 400)
	call(t, e, "POST", "/api/v1/admin/recovery-requests/"+id+"/approve", root, map[string]string{"reason": "key on file for a year"}).want(t, 200)
	call(t, e, "GET", "/api/v1/me", tok, nil).want(t, 401) // an approval ends the sessions

	// A second request, cancelled by the owner's link.
	call(t, e, "POST", "/api/v1/recovery", "", map[string]string{"login": "dave"}).want(t, 202)
	cancel := e.LinkToken(t, "dave@example.com", "/recover/cancel")
	call(t, e, "POST", "/api/v1/recovery/cancel", "", map[string]string{"token": cancel}).want(t, 200)
	call(t, e, "POST", "/api/v1/recovery/cancel", "", map[string]string{"token": "nope"}).want(t, 400)

	// A third, denied.
	third := call(t, e, "POST", "/api/v1/recovery", "", map[string]string{"login": "dave"}).want(t, 202)
	call(t, e, "POST", "/api/v1/recovery/"+third.str("request_id")+"/verify", "",
		map[string]string{"ssh_signature": key.Sign(t, third.str("namespace"), third.str("challenge"))}).want(t, 200)
	call(t, e, "POST", "/api/v1/admin/recovery-requests/"+third.str("request_id")+"/deny", root, map[string]string{"reason": "not convinced"}).want(t, 200)

	tok = e.SignIn(t, "dave", nil)
	kid := int(keys.body["ssh_keys"].([]any)[0].(map[string]any)["id"].(float64))
	call(t, e, "DELETE", fmt.Sprintf("/api/v1/ssh-keys/%d", kid), tok, nil).want(t, 204)
	call(t, e, "DELETE", fmt.Sprintf("/api/v1/ssh-keys/%d", kid), tok, nil).want(t, 404)
}
