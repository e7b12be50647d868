package e2e

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

func obj(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	v, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%q is %T (%v), want an object", key, m[key], m[key])
	}
	return v
}

// registerKey adds k to the account of the session tok and returns the answer.
func (s *testServer) registerKey(t *testing.T, tok string, k *softKey, name string) *response {
	t.Helper()
	b := s.call(t, "POST", "/api/v1/mfa/webauthn/register/begin", tok, nil).want(t, 200)
	return s.call(t, "POST", "/api/v1/mfa/webauthn/register/finish", tok, map[string]any{
		"ceremony_id": b.str("ceremony_id"), "name": name, "credential": k.create(t, obj(t, b.Body, "publicKey"))})
}

// passwordStep signs in with the password and returns the mfa_required answer.
func (s *testServer) passwordStep(t *testing.T, login string) *response {
	t.Helper()
	r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": login, "password": testPassword}).want(t, 200)
	if r.str("status") != "mfa_required" {
		t.Fatalf("login status = %q, want mfa_required", r.str("status"))
	}
	return r
}

func mfaPublicKey(t *testing.T, r *response) map[string]any {
	t.Helper()
	return obj(t, obj(t, r.Body, "webauthn"), "publicKey")
}

func (s *testServer) keyStep(t *testing.T, pending *response, assertion map[string]any) *response {
	t.Helper()
	return s.call(t, "POST", "/api/v1/login/mfa", "", map[string]any{"mfa_token": pending.str("mfa_token"), "webauthn": assertion})
}

func (s *testServer) passkeyBegin(t *testing.T) *response {
	t.Helper()
	return s.call(t, "POST", "/api/v1/login/passkey/begin", "", nil).want(t, 200)
}

func (s *testServer) passkeyFinish(t *testing.T, begin *response, assertion map[string]any) *response {
	t.Helper()
	return s.call(t, "POST", "/api/v1/login/passkey/finish", "", map[string]any{
		"ceremony_id": begin.str("ceremony_id"), "credential": assertion})
}

func securityEvents(t *testing.T, s *testServer, tok string) []string {
	t.Helper()
	r := s.call(t, "GET", "/api/v1/security-log", tok, nil).want(t, 200)
	var out []string
	for _, e := range r.Body["events"].([]any) {
		ev := e.(map[string]any)
		out = append(out, ev["event"].(string)+":"+ev["outcome"].(string))
	}
	return out
}

// TestWebAuthnAPI drives security keys and passkeys through the JSON API with a
// software authenticator, on both stores: registration, the key as second factor,
// passkey sign-in, re-authentication and removal, and every refusal THREATS.md lists.
func TestWebAuthnAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		srv := startServer(t, testConfig(t, dbURL), nil)
		srv.signup(t, "alice", "alice@example.com")
		srv.signup(t, "bob", "bob@example.com")
		alice := srv.login(t, "alice")
		other := srv.login(t, "alice") // a second session, ended when MFA turns on

		// Registration options as SPEC §8 lists them.
		b := srv.call(t, "POST", "/api/v1/mfa/webauthn/register/begin", alice, nil).want(t, 200)
		pk := obj(t, b.Body, "publicKey")
		rp, user := obj(t, pk, "rp"), obj(t, pk, "user")
		handle, _ := b64.DecodeString(user["id"].(string))
		challenge, _ := b64.DecodeString(pk["challenge"].(string))
		sel := obj(t, pk, "authenticatorSelection")
		var algs []float64
		for _, p := range pk["pubKeyCredParams"].([]any) {
			algs = append(algs, p.(map[string]any)["alg"].(float64))
		}
		if rp["id"] != "localhost" || rp["name"] != "Latchkey" || len(handle) != 64 || len(challenge) != 32 ||
			user["name"] != "alice" || pk["timeout"] != 300000.0 || pk["attestation"] != "none" ||
			sel["residentKey"] != "preferred" || sel["userVerification"] != "preferred" ||
			!slices.Equal(algs, []float64{-8, -7, -257}) || obj(t, pk, "extensions")["credProps"] != true {
			t.Fatalf("registration options = %s", b.Raw)
		}
		key := newSoftKey(t)
		fin := srv.call(t, "POST", "/api/v1/mfa/webauthn/register/finish", alice, map[string]any{
			"ceremony_id": b.str("ceremony_id"), "name": "Laptop", "credential": key.create(t, pk)}).want(t, 201)
		k := obj(t, fin.Body, "key")
		if k["name"] != "Laptop" || k["passkey"] != true || k["backed_up"] != false || k["last_used_at"] != nil ||
			len(fin.Body["recovery_codes"].([]any)) != 16 || !strings.HasSuffix(fin.str("recovery_codes_filename"), ".txt") {
			t.Fatalf("register finish = %s", fin.Raw)
		}
		if m := obj(t, fin.Body, "mfa"); m["enabled"] != true || !slices.Equal(strs(m["methods"]), []string{"webauthn", "recovery_code"}) {
			t.Fatalf("register finish mfa = %v", m)
		}
		codes := strs(fin.Body["recovery_codes"])
		keyID := int64(k["id"].(float64))
		// The first second factor turned MFA on: the other session ended.
		srv.call(t, "GET", "/api/v1/me", other, nil).want(t, 401)
		me := srv.call(t, "GET", "/api/v1/me", alice, nil).want(t, 200)
		if m := obj(t, me.Body, "mfa"); m["enabled"] != true || m["webauthn_keys"] != 1.0 ||
			!slices.Equal(strs(m["methods"]), []string{"webauthn", "recovery_code"}) || m["recovery_codes_remaining"] != 16.0 {
			t.Fatalf("/me mfa = %v", m)
		}
		// The ceremony is used up: finishing it again is refused.
		srv.call(t, "POST", "/api/v1/mfa/webauthn/register/finish", alice, map[string]any{
			"ceremony_id": b.str("ceremony_id"), "name": "Again", "credential": key.create(t, pk)}).want(t, 404, "no_pending_ceremony")
		// The same credential again, on a fresh ceremony: duplicate_key.
		srv.registerKey(t, alice, key, "Again").want(t, 409, "duplicate_key")
		// Bob cannot register alice's credential either (unique across accounts).
		bob := srv.login(t, "bob")
		srv.registerKey(t, bob, key, "Stolen").want(t, 409, "duplicate_key")
		// A name is 1–64 characters.
		srv.registerKey(t, alice, newSoftKey(t), strings.Repeat("n", 65)).want(t, 400, "invalid_input")
		// A personal access token never adds a key.
		pat := srv.call(t, "POST", "/api/v1/tokens", alice, map[string]any{"name": "ci", "expires_in_days": 30}).want(t, 201)
		srv.call(t, "POST", "/api/v1/mfa/webauthn/register/begin", pat.str("token"), nil).want(t, 403, "forbidden_for_token")
		// An expired ceremony is refused.
		b2 := srv.call(t, "POST", "/api/v1/mfa/webauthn/register/begin", alice, nil).want(t, 200)
		srv.Clock.Advance(5 * time.Minute)
		srv.call(t, "POST", "/api/v1/mfa/webauthn/register/finish", alice, map[string]any{
			"ceremony_id": b2.str("ceremony_id"), "name": "Late", "credential": newSoftKey(t).create(t, obj(t, b2.Body, "publicKey"))}).
			want(t, 404, "no_pending_ceremony")

		// Bob gets his own key, so his pending login has a challenge too.
		bobKey := newSoftKey(t)
		bob = srv.login(t, "bob")
		srv.registerKey(t, bob, bobKey, "Bob's key").want(t, 201)

		// Sign-in with password + key.
		p := srv.passwordStep(t, "alice")
		if !slices.Equal(strs(p.Body["methods"]), []string{"webauthn", "recovery_code"}) {
			t.Fatalf("mfa_required methods = %v", p.Body["methods"])
		}
		req := mfaPublicKey(t, p)
		allow := req["allowCredentials"].([]any)
		if req["rpId"] != "localhost" || req["userVerification"] != "preferred" || len(allow) != 1 ||
			allow[0].(map[string]any)["id"] != b64.EncodeToString(key.id) {
			t.Fatalf("mfa_required webauthn = %v", req)
		}
		good := key.get(t, req)
		r := srv.keyStep(t, p, good).want(t, 200)
		aliceKeyed := r.str("session_token")
		me = srv.call(t, "GET", "/api/v1/me", aliceKeyed, nil).want(t, 200)
		if obj(t, me.Body, "session")["method"] != auth.SessionPasswordWebAuthn {
			t.Fatalf("session after password + key = %v", me.Body["session"])
		}
		// Replayed: the pending login is gone, and on a new one the challenge differs.
		p2 := srv.passwordStep(t, "alice")
		srv.keyStep(t, p2, good).want(t, 401, "invalid_assertion")
		// Made for another account's challenge: alice's key over bob's challenge, sent
		// on alice's pending login, and on bob's.
		pb := srv.passwordStep(t, "bob")
		srv.keyStep(t, p2, key.get(t, mfaPublicKey(t, pb))).want(t, 401, "invalid_assertion")
		srv.keyStep(t, pb, key.get(t, mfaPublicKey(t, pb))).want(t, 401, "invalid_assertion")
		// Bob's own key still works on his (counted failures reset by the success).
		srv.keyStep(t, pb, bobKey.get(t, mfaPublicKey(t, pb))).want(t, 200)

		// A regressed counter: refused, logged and mailed; the key stays.
		p3 := srv.passwordStep(t, "alice")
		// The count the last success stored, sent again (as a clone would).
		stale := key.assert(t, mfaPublicKey(t, p3)["challenge"].(string), 1, flagUP|flagUV)
		srv.keyStep(t, p3, stale).want(t, 401, "invalid_assertion")
		if ev := securityEvents(t, srv, aliceKeyed); !slices.Contains(ev, "webauthn_counter_regression:failure") {
			t.Fatalf("security log lacks the counter regression: %v", ev)
		}
		if !slices.ContainsFunc(srv.outbox(t), func(m outboxMail) bool {
			return m.To == "alice@example.com" && strings.Contains(m.Subject, "copied")
		}) {
			t.Fatal("no mail about the counter regression")
		}
		srv.keyStep(t, p3, key.get(t, mfaPublicKey(t, p3))).want(t, 200)

		// Wrong assertions count in the per-account second-factor counter shared with
		// codes: five, then even the right key and a right recovery code get 429.
		p4 := srv.passwordStep(t, "alice")
		for i := range 5 {
			if r := srv.keyStep(t, p4, key.forged(t, mfaPublicKey(t, p4))); r.Status != 401 {
				t.Fatalf("forged assertion %d: status %d, want 401", i+1, r.Status)
			}
		}
		srv.keyStep(t, p4, key.get(t, mfaPublicKey(t, p4))).want(t, 429, "too_many_attempts")
		srv.call(t, "POST", "/api/v1/login/mfa", "", map[string]any{"mfa_token": p4.str("mfa_token"), "recovery_code": codes[0]}).
			want(t, 429, "too_many_attempts")
		srv.Clock.Advance(31 * time.Second)
		srv.keyStep(t, p4, key.get(t, mfaPublicKey(t, p4))).want(t, 200)

		// Passkey sign-in: no password, user verification required, counts as MFA.
		pb1 := srv.passkeyBegin(t)
		ppk := obj(t, pb1.Body, "publicKey")
		if ppk["userVerification"] != "required" || ppk["rpId"] != "localhost" || len(ppk["allowCredentials"].([]any)) != 0 {
			t.Fatalf("passkey begin = %s", pb1.Raw)
		}
		pass := key.get(t, ppk)
		r = srv.passkeyFinish(t, pb1, pass).want(t, 200)
		if r.str("method") != "passkey" || obj(t, r.Body, "user")["username"] != "alice" {
			t.Fatalf("passkey finish = %s", r.Raw)
		}
		passkeySession := r.str("session_token")
		me = srv.call(t, "GET", "/api/v1/me", passkeySession, nil).want(t, 200)
		if s := obj(t, me.Body, "session"); s["method"] != "passkey" || s["mfa_at"] == nil {
			t.Fatalf("passkey session = %v", s)
		}
		// Replayed on the same ceremony: used up.
		srv.passkeyFinish(t, pb1, pass).want(t, 401, "invalid_assertion")
		// Without user verification a passkey does not sign in.
		pb2 := srv.passkeyBegin(t)
		key.count++
		srv.passkeyFinish(t, pb2, key.assert(t, obj(t, pb2.Body, "publicKey")["challenge"].(string), key.count, flagUP)).
			want(t, 401, "invalid_assertion")

		// Re-authentication with the key alone, and with the password and the key.
		srv.Clock.Advance(11 * time.Minute)
		srv.call(t, "DELETE", "/api/v1/mfa/webauthn/"+strconv.FormatInt(keyID, 10), passkeySession, nil).want(t, 403, "reauth_required")
		ra := srv.call(t, "POST", "/api/v1/reauth/webauthn", passkeySession, nil).want(t, 200)
		if obj(t, ra.Body, "publicKey")["userVerification"] != "required" {
			t.Fatalf("reauth/webauthn = %s", ra.Raw)
		}
		srv.call(t, "POST", "/api/v1/reauth", passkeySession, map[string]any{
			"ceremony_id": ra.str("ceremony_id"), "webauthn": key.get(t, obj(t, ra.Body, "publicKey"))}).want(t, 200)
		rp2 := srv.call(t, "POST", "/api/v1/reauth/webauthn", aliceKeyed, map[string]any{"with_password": true}).want(t, 200)
		if obj(t, rp2.Body, "publicKey")["userVerification"] != "preferred" {
			t.Fatalf("reauth/webauthn with password = %s", rp2.Raw)
		}
		srv.call(t, "POST", "/api/v1/reauth", aliceKeyed, map[string]any{"password": testPassword,
			"ceremony_id": rp2.str("ceremony_id"), "webauthn": key.get(t, obj(t, rp2.Body, "publicKey"))}).want(t, 200)

		// Rename, list.
		srv.call(t, "PATCH", "/api/v1/mfa/webauthn/"+strconv.FormatInt(keyID, 10), passkeySession, map[string]any{"name": "YubiKey 5"}).want(t, 200)
		list := srv.call(t, "GET", "/api/v1/mfa/webauthn", passkeySession, nil).want(t, 200)
		ks := list.Body["keys"].([]any)
		if len(ks) != 1 || ks[0].(map[string]any)["name"] != "YubiKey 5" || ks[0].(map[string]any)["last_used_at"] == nil {
			t.Fatalf("keys = %s", list.Raw)
		}
		srv.call(t, "PATCH", "/api/v1/mfa/webauthn/"+strconv.FormatInt(keyID, 10), bob, map[string]any{"name": "mine"}).want(t, 404)

		// Removing the last key turns MFA off; the removed key never works again.
		del := srv.call(t, "DELETE", "/api/v1/mfa/webauthn/"+strconv.FormatInt(keyID, 10), passkeySession, nil).want(t, 200)
		if m := obj(t, del.Body, "mfa"); m["enabled"] != false {
			t.Fatalf("delete last key = %s", del.Raw)
		}
		srv.call(t, "GET", "/api/v1/me", aliceKeyed, nil).want(t, 401) // other sessions ended
		pb3 := srv.passkeyBegin(t)
		srv.passkeyFinish(t, pb3, key.get(t, obj(t, pb3.Body, "publicKey"))).want(t, 401, "invalid_assertion")
		srv.login(t, "alice") // no MFA any more
		ev := securityEvents(t, srv, passkeySession)
		for _, want := range []string{"webauthn_key_added:success", "webauthn_key_renamed:success",
			"webauthn_key_removed:success", "mfa_enabled:success", "mfa_disabled:success", "login_passkey:success"} {
			if !slices.Contains(ev, want) {
				t.Errorf("security log lacks %s: %v", want, ev)
			}
		}
	})
}

// TestPasskeyFailuresCountLikePasswords: a wrong assertion at passwordless sign-in
// counts on the account's password counter (and the client's), so five of them lock
// the password step too.
func TestPasskeyFailuresCountLikePasswords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		srv := startServer(t, testConfig(t, dbURL), nil)
		srv.signup(t, "carol", "carol@example.com")
		tok := srv.login(t, "carol")
		key := newSoftKey(t)
		srv.registerKey(t, tok, key, "Phone").want(t, 201)
		for i := range 5 {
			b := srv.passkeyBegin(t)
			if r := srv.passkeyFinish(t, b, key.forged(t, obj(t, b.Body, "publicKey"))); r.Status != 401 {
				t.Fatalf("forged passkey %d: %d %s", i+1, r.Status, r.Raw)
			}
		}
		srv.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "carol", "password": testPassword}).
			want(t, 429, "too_many_attempts")
		b := srv.passkeyBegin(t)
		srv.passkeyFinish(t, b, key.get(t, obj(t, b.Body, "publicKey"))).want(t, 429, "too_many_attempts")
	})
}

// TestWebAuthnSyncedPasskeyZeroCounter: synced passkeys send a counter of 0 every
// time, and that is no regression.
func TestWebAuthnSyncedPasskeyZeroCounter(t *testing.T) {
	srv := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/l.db"), nil)
	srv.signup(t, "dave", "dave@example.com")
	tok := srv.login(t, "dave")
	key := newSoftKey(t)
	key.zero = true
	srv.registerKey(t, tok, key, "Synced").want(t, 201)
	for range 2 {
		b := srv.passkeyBegin(t)
		srv.passkeyFinish(t, b, key.get(t, obj(t, b.Body, "publicKey"))).want(t, 200)
	}
}

// TestWebAuthnUnavailable: a public-url with an IP-address host turns WebAuthn off.
func TestWebAuthnUnavailable(t *testing.T) {
	cfg := testConfig(t, "sqlite:"+t.TempDir()+"/l.db")
	cfg.PublicURL = "http://127.0.0.1:8080"
	srv := startServer(t, cfg, nil)
	srv.signup(t, "erin", "erin@example.com")
	tok := srv.login(t, "erin")
	srv.call(t, "POST", "/api/v1/mfa/webauthn/register/begin", tok, nil).want(t, 409, "webauthn_unavailable")
	srv.call(t, "POST", "/api/v1/login/passkey/begin", "", nil).want(t, 409, "webauthn_unavailable")
	if why := srv.App.Service.WebAuthnUnavailable(); !strings.Contains(why, "IP address") {
		t.Fatalf("WebAuthnUnavailable = %q", why)
	}
}

// TestWebAuthnPagesCSP: only the pages that run WebAuthn load the script, with
// script-src 'self' and no inline script; every other page forbids script, and with
// WebAuthn off no page loads it.
func TestWebAuthnPagesCSP(t *testing.T) {
	for _, tc := range []struct {
		publicURL string
		script    bool
	}{{"http://localhost:8080", true}, {"http://127.0.0.1:8080", false}} {
		cfg := testConfig(t, "sqlite:"+t.TempDir()+"/l.db")
		cfg.PublicURL = tc.publicURL
		srv := startServer(t, cfg, nil)
		for _, path := range []string{"/login", "/signup"} {
			r := srv.call(t, "GET", path, "", nil).want(t, 200)
			csp, body := r.Header.Get("Content-Security-Policy"), string(r.Raw)
			want := tc.script && path == "/login"
			if strings.Contains(csp, "script-src 'self'") != want || strings.Contains(body, "/static/webauthn.js") != want {
				t.Errorf("%s %s: CSP %q, loads the script %v; want script %v", tc.publicURL, path, csp,
					strings.Contains(body, "/static/webauthn.js"), want)
			}
			if strings.Contains(body, "<script>") {
				t.Errorf("%s has inline script", path)
			}
		}
	}
}
