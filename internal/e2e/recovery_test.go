package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// sshKey is a key pair made by the real ssh-keygen.
type sshKey struct {
	path string // private key; path+".pub" is the public key
	pub  string
	fp   string // as `ssh-keygen -lf` prints it
}

func newSSHKey(t *testing.T, typ string, bits string) sshKey {
	t.Helper()
	bin := requireTool(t, "ssh-keygen")
	path := filepath.Join(t.TempDir(), "id_"+typ)
	args := []string{"-q", "-t", typ, "-N", "", "-C", "test@example.com", "-f", path}
	if bits != "" {
		args = append(args, "-b", bits)
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-lf", path+".pub").Output()
	if err != nil {
		t.Fatalf("ssh-keygen -lf: %v", err)
	}
	return sshKey{path: path, pub: string(pub), fp: strings.Fields(string(out))[1]}
}

// sign signs msg (written as is, no newline added) with ssh-keygen -Y sign.
func (k sshKey) sign(t *testing.T, namespace, msg string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "challenge")
	if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(requireTool(t, "ssh-keygen"), "-Y", "sign", "-f", k.path, "-n", namespace, file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(file + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return string(sig)
}

// openRecovery opens a request and checks the answer's shape.
func (s *testServer) openRecovery(t *testing.T, login string) (id, challenge string) {
	t.Helper()
	r := s.call(t, "POST", "/api/v1/recovery", "", map[string]string{"login": login}).want(t, 202)
	id, challenge = r.str("request_id"), r.str("challenge")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) ||
		!regexp.MustCompile(`^latchkey-recovery:[0-9a-f]{32}$`).MatchString(challenge) ||
		r.str("namespace") != "latchkey-recovery" || r.str("expires_at") == "" || len(r.Body) != 4 {
		t.Fatalf("POST /api/v1/recovery = %s, want request_id, challenge, namespace, expires_at", r.Raw)
	}
	return id, challenge
}

func (s *testServer) verifyRecovery(t *testing.T, id string, body map[string]string) *response {
	t.Helper()
	return s.call(t, "POST", "/api/v1/recovery/"+id+"/verify", "", body)
}

func (s *testServer) addKey(t *testing.T, tok, title string, k sshKey) *response {
	t.Helper()
	return s.call(t, "POST", "/api/v1/ssh-keys", tok, map[string]string{"title": title, "public_key": k.pub})
}

func (s *testServer) newPAT(t *testing.T, tok string, days int) (id float64, secret string) {
	t.Helper()
	body := map[string]any{"name": "recovery"}
	if days > 0 {
		body["expires_in_days"] = days
	}
	r := s.call(t, "POST", "/api/v1/tokens", tok, body).want(t, 201)
	return r.Body["id"].(float64), r.str("token")
}

func TestRecoveryWithSSHKeys(t *testing.T) {
	requireTool(t, "ssh-keygen")
	keys := map[string]sshKey{
		"ed25519": newSSHKey(t, "ed25519", ""),
		"ecdsa":   newSSHKey(t, "ecdsa", "256"),
		"rsa":     newSSHKey(t, "rsa", "3072"),
	}
	other := newSSHKey(t, "ed25519", "")
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "alice", "alice@example.com")
		s.signup(t, "bob", "bob@example.com")
		alice, bob := s.login(t, "alice"), s.login(t, "bob")
		s.enrol(t, alice)
		alice = s.login2faFresh(t, "alice", alice)

		for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
			r := s.addKey(t, alice, typ+" laptop", keys[typ]).want(t, 201)
			if r.str("fingerprint") != keys[typ].fp {
				t.Errorf("%s fingerprint = %q, want ssh-keygen's %q", typ, r.str("fingerprint"), keys[typ].fp)
			}
		}
		s.addKey(t, bob, "bob's", other).want(t, 201)
		// The same key twice on one account, garbage, a PAT: all refused. Another account
		// may register alice's public key (it cannot squat it), which proves nothing for
		// alice's account and, without the private key, nothing for bob's either.
		s.addKey(t, alice, "again", keys["ed25519"]).want(t, 409, "duplicate_ssh_key")
		s.addKey(t, bob, "copied", keys["ed25519"]).want(t, 201)
		s.call(t, "POST", "/api/v1/ssh-keys", alice, map[string]string{"title": "x", "public_key": "ssh-dss AAAA"}).want(t, 400, "invalid_ssh_key")
		_, pat := s.newPAT(t, alice, 0)
		s.addKey(t, pat, "via token", other).want(t, 403, "forbidden_for_token")
		list := s.call(t, "GET", "/api/v1/ssh-keys", alice, nil).want(t, 200).Body["ssh_keys"].([]any)
		if len(list) != 3 {
			t.Fatalf("alice has %d keys, want 3", len(list))
		}

		for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
			id, ch := s.openRecovery(t, "alice")
			r := s.verifyRecovery(t, id, map[string]string{"ssh_signature": keys[typ].sign(t, "latchkey-recovery", ch)}).want(t, 200)
			if r.str("status") != "verified" || r.str("method") != "ssh_key" || r.str("key_fingerprint") != keys[typ].fp {
				t.Errorf("verify with %s = %s", typ, r.Raw)
			}
		}

		// Refusals leave the challenge valid; then the right signature works once.
		id, ch := s.openRecovery(t, "alice")
		for name, sig := range map[string]string{
			"key of another account": other.sign(t, "latchkey-recovery", ch),
			"namespace git":          keys["ed25519"].sign(t, "git", ch),
			"namespace file":         keys["ed25519"].sign(t, "file", ch),
			"challenge plus newline": keys["ed25519"].sign(t, "latchkey-recovery", ch+"\n"),
		} {
			if r := s.verifyRecovery(t, id, map[string]string{"ssh_signature": sig}); r.Status != 400 || r.errCode() != "verification_failed" {
				t.Errorf("verify with %s = %d %s, want 400 verification_failed", name, r.Status, r.Raw)
			}
		}
		good := keys["ed25519"].sign(t, "latchkey-recovery", ch)
		s.verifyRecovery(t, id, map[string]string{"ssh_signature": good}).want(t, 200)
		s.verifyRecovery(t, id, map[string]string{"ssh_signature": good}).want(t, 400, "verification_failed")

		id, ch = s.openRecovery(t, "alice")
		s.Clock.Advance(16 * time.Minute)
		s.verifyRecovery(t, id, map[string]string{"ssh_signature": keys["rsa"].sign(t, "latchkey-recovery", ch)}).want(t, 400, "verification_failed")

		// The per-account limit is 5 an hour; the next hour starts fresh.
		r := s.call(t, "POST", "/api/v1/recovery", "", map[string]string{"login": "alice"}).want(t, 429, "too_many_attempts")
		if r.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		s.Clock.Advance(time.Hour)

		// Sixteen parallel verifications of one good signature: exactly one wins.
		id, ch = s.openRecovery(t, "alice")
		good = keys["ecdsa"].sign(t, "latchkey-recovery", ch)
		var wg sync.WaitGroup
		statuses := make(chan int, 16)
		for range 16 {
			wg.Go(func() { statuses <- s.verifyRecovery(t, id, map[string]string{"ssh_signature": good}).Status })
		}
		wg.Wait()
		close(statuses)
		wins := 0
		for st := range statuses {
			if st == 200 {
				wins++
			}
		}
		if wins != 1 {
			t.Errorf("16 parallel verifications: %d succeeded, want exactly 1", wins)
		}

		// Five failures close the request: 429 then and ever after.
		id, ch = s.openRecovery(t, "alice")
		bad := other.sign(t, "latchkey-recovery", ch)
		for i := 1; i <= 4; i++ {
			s.verifyRecovery(t, id, map[string]string{"ssh_signature": bad}).want(t, 400, "verification_failed")
		}
		s.verifyRecovery(t, id, map[string]string{"ssh_signature": bad}).want(t, 429, "too_many_attempts")
		s.verifyRecovery(t, id, map[string]string{"ssh_signature": keys["ed25519"].sign(t, "latchkey-recovery", ch)}).want(t, 429)

		// An unknown login gets the same shape; its verification fails like a wrong key.
		id, ch = s.openRecovery(t, "nobody")
		s.verifyRecovery(t, id, map[string]string{"ssh_signature": other.sign(t, "latchkey-recovery", ch)}).want(t, 400, "verification_failed")

		if !hasMail(s.outbox(t), "alice@example.com", "A recovery request was opened for your account") {
			t.Error("alice was not told of the recovery request")
		}
		// Deleting a key: PAT refused, session works, then it no longer verifies.
		kid := int(list[0].(map[string]any)["id"].(float64))
		path := "/api/v1/ssh-keys/" + itoa(kid)
		s.call(t, "DELETE", path, pat, nil).want(t, 403, "forbidden_for_token")
		s.call(t, "DELETE", path, bob, nil).want(t, 404)
		s.call(t, "DELETE", path, alice, nil).want(t, 204)
		s.call(t, "DELETE", path, alice, nil).want(t, 404)
	})
}

func itoa(i int) string { return ftoa(float64(i)) }

// login2faFresh returns the session as is: enrolment keeps the current session, and
// it signed in within the re-authentication window.
func (s *testServer) login2faFresh(t *testing.T, login, tok string) string {
	t.Helper()
	s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 200)
	return tok
}

func TestRecoveryWithTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "alice", "alice@example.com")
		s.signup(t, "bob", "bob@example.com")
		alice, bob := s.login(t, "alice"), s.login(t, "bob")
		_, pat := s.newPAT(t, alice, 0)
		_, shortPAT := s.newPAT(t, alice, 1)
		revokedID, revoked := s.newPAT(t, alice, 0)
		_, bobPAT := s.newPAT(t, bob, 0)
		s.call(t, "DELETE", "/api/v1/tokens/"+itoa(int(revokedID)), alice, nil).want(t, 204)

		id, _ := s.openRecovery(t, "alice")
		for name, tok := range map[string]string{"revoked": revoked, "another account's": bobPAT, "garbage": "lk_nope"} {
			if r := s.verifyRecovery(t, id, map[string]string{"personal_access_token": tok}); r.Status != 400 || r.errCode() != "verification_failed" {
				t.Errorf("verify with a %s token = %d %s", name, r.Status, r.Raw)
			}
		}
		r := s.verifyRecovery(t, id, map[string]string{"personal_access_token": pat}).want(t, 200)
		if r.str("method") != "personal_access_token" || r.Body["key_fingerprint"] != nil {
			t.Errorf("verify with a token = %s", r.Raw)
		}
		// Both proofs at once, or none: a clear 400.
		s.verifyRecovery(t, id, map[string]string{}).want(t, 400, "invalid_input")

		s.Clock.Advance(25 * time.Hour)
		id, _ = s.openRecovery(t, "alice")
		s.verifyRecovery(t, id, map[string]string{"personal_access_token": shortPAT}).want(t, 400, "verification_failed")
		s.verifyRecovery(t, id, map[string]string{"personal_access_token": pat}).want(t, 200)
	})
}

// cancelToken finds the cancel link's token in the newest mail to addr.
func cancelToken(t *testing.T, mails []outboxMail, addr string) string {
	t.Helper()
	re := regexp.MustCompile(`/recover/cancel\?token=([A-Za-z0-9_-]+)`)
	for i := len(mails) - 1; i >= 0; i-- {
		if m := re.FindStringSubmatch(mails[i].Body); mails[i].To == addr && m != nil {
			return m[1]
		}
	}
	t.Fatalf("no cancel link mailed to %s", addr)
	return ""
}

func resetToken(t *testing.T, mails []outboxMail, addr string) string {
	t.Helper()
	re := regexp.MustCompile(`/password/reset\?token=([A-Za-z0-9_-]+)`)
	for i := len(mails) - 1; i >= 0; i-- {
		if m := re.FindStringSubmatch(mails[i].Body); mails[i].To == addr && mails[i].Subject == "Your recovery request was approved" && m != nil {
			return m[1]
		}
	}
	t.Fatalf("no approval mail with a reset link to %s", addr)
	return ""
}

// verifiedRequest gives user MFA and a verified recovery request (by token) and
// returns the request id and the user's session.
func (s *testServer) verifiedRequest(t *testing.T, user string) (string, string) {
	t.Helper()
	s.signup(t, user, user+"@example.com")
	tok := s.login(t, user)
	s.enrol(t, tok)
	_, pat := s.newPAT(t, tok, 0)
	id, _ := s.openRecovery(t, user)
	s.verifyRecovery(t, id, map[string]string{"personal_access_token": pat}).want(t, 200)
	return id, tok
}

// wantRecovered checks the effects of an approval: no MFA, no session, a reset mail,
// and the old password still working until the link is used.
func (s *testServer) wantRecovered(t *testing.T, user, oldSession string) {
	t.Helper()
	s.call(t, "GET", "/api/v1/me", oldSession, nil).want(t, 401)
	link := resetToken(t, s.outbox(t), user+"@example.com")
	tok := s.login(t, user) // password unchanged, and no MFA step
	me := s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 200)
	if me.Body["mfa"].(map[string]any)["enabled"] != false {
		t.Fatalf("%s still has MFA after approval: %s", user, me.Raw)
	}
	s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": link, "new_password": "a brand new password"}).want(t, 204)
	s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": user, "password": testPassword}).want(t, 401)
}

func (s *testServer) wantUntouched(t *testing.T, user, session string) {
	t.Helper()
	me := s.call(t, "GET", "/api/v1/me", session, nil).want(t, 200)
	if me.Body["mfa"].(map[string]any)["enabled"] != true {
		t.Fatalf("%s lost MFA: %s", user, me.Raw)
	}
	s.pending(t, user)
}

func TestRecoveryApproval(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		s := startServer(t, cfg, nil)
		if code, _, errs := runCLI(t, cfg, testPassword+"\n", "admin", "create-user", "--username", "olga", "--email", "olga@example.com", "--admin"); code != 0 {
			t.Fatalf("create-user: %s", errs)
		}

		// Through the CLI, with its one-line errors first.
		id, aliceSession := s.verifiedRequest(t, "alice")
		pendingID, _ := s.openRecovery(t, "alice") // another open request, closed by the approval
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"admin", "recovery", "approve", id}, "reason"},
			{[]string{"admin", "recovery", "approve", "--reason", "x", "0123456789abcdef0123456789abcdef"}, "No such recovery request"},
			{[]string{"admin", "recovery", "approve", pendingID, "--reason", "x"}, "verified"},
			{[]string{"admin", "recovery", "frob"}, "unknown admin recovery command"},
		} {
			code, out, errs := runCLI(t, cfg, "", tc.args...)
			if code == 0 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("%v = %d, stdout %q, stderr %q; want non-zero and one line with %q", tc.args, code, out, errs, tc.want)
			}
		}
		code, out, errs := runCLI(t, cfg, "", "admin", "recovery", "list", "--status", "verified")
		if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "alice") || !strings.Contains(out, "recovery") {
			t.Fatalf("recovery list = %d %q %q", code, out, errs)
		}
		code, out, errs = runCLI(t, cfg, "", "admin", "recovery", "approve", id, "--reason", "matched the token, called the user")
		if code != 0 || !strings.Contains(out, "approved") {
			t.Fatalf("recovery approve = %d %q %q", code, out, errs)
		}
		s.wantRecovered(t, "alice", aliceSession)
		code, out, _ = runCLI(t, cfg, "", "admin", "recovery", "list")
		if code != 0 || !regexp.MustCompile(pendingID+`\s+alice\s+closed`).MatchString(out) {
			t.Errorf("after approval the other request is not closed:\n%s", out)
		}

		// Through the API: operators only, by session, within the reauth window.
		id, carolSession := s.verifiedRequest(t, "carol")
		olga := s.login(t, "olga")
		s.enrol(t, olga) // operators must have MFA (require-mfa=admins, the default)
		_, olgaPAT := s.newPAT(t, olga, 0)
		path := "/api/v1/admin/recovery-requests/" + id
		s.call(t, "GET", "/api/v1/admin/recovery-requests", carolSession, nil).want(t, 403, "forbidden")
		s.call(t, "POST", path+"/approve", carolSession, map[string]string{"reason": "me"}).want(t, 403, "forbidden")
		s.call(t, "POST", path+"/approve", olgaPAT, map[string]string{"reason": "ok"}).want(t, 403, "forbidden_for_token")
		s.call(t, "POST", path+"/approve", olga, map[string]string{}).want(t, 400, "invalid_input")
		list := s.call(t, "GET", "/api/v1/admin/recovery-requests?status=verified", olga, nil).want(t, 200).Body["recovery_requests"].([]any)
		if len(list) != 1 {
			t.Fatalf("verified requests = %v, want carol's only", list)
		}
		ev := list[0].(map[string]any)
		if ev["username"] != "carol" || ev["method"] != "personal_access_token" || ev["token_name"] != "recovery" ||
			ev["ip"] == "" || ev["cancel_link_used"] != false || ev["key_created_at"] == nil {
			t.Errorf("evidence = %v", ev)
		}
		s.call(t, "POST", path+"/approve", olga, map[string]string{"reason": "video call"}).want(t, 200)
		s.call(t, "POST", path+"/approve", olga, map[string]string{"reason": "again"}).want(t, 409, "request_closed")
		s.wantRecovered(t, "carol", carolSession)

		// Deny and owner-cancel leave the account untouched.
		id, daveSession := s.verifiedRequest(t, "dave")
		code, _, errs = runCLI(t, cfg, "", "admin", "recovery", "deny", id, "--reason", "could not confirm")
		if code != 0 {
			t.Fatalf("deny: %s", errs)
		}
		s.wantUntouched(t, "dave", daveSession)
		if !hasMail(s.outbox(t), "dave@example.com", "Your recovery request was denied") {
			t.Error("dave was not told of the denial")
		}

		id, erinSession := s.verifiedRequest(t, "erin")
		tok := cancelToken(t, s.outbox(t), "erin@example.com")
		s.call(t, "POST", "/api/v1/recovery/cancel", "", map[string]string{"token": tok}).want(t, 200)
		s.call(t, "POST", "/api/v1/recovery/cancel", "", map[string]string{"token": tok}).want(t, 400, "invalid_token")
		s.call(t, "POST", "/api/v1/admin/recovery-requests/"+id+"/approve", olga, map[string]string{"reason": "x"}).want(t, 409, "request_closed")
		s.wantUntouched(t, "erin", erinSession)
		list = s.call(t, "GET", "/api/v1/admin/recovery-requests?status=cancelled", olga, nil).want(t, 200).Body["recovery_requests"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["cancel_link_used"] != true {
			t.Errorf("cancelled requests = %v", list)
		}

		// Auto-approval is off by default.
		s.Clock.Advance(1000 * time.Hour)
		if n, err := s.App.Service.AutoApproveDue(context.Background()); err != nil || n != 0 {
			t.Errorf("AutoApproveDue with the default config = %d, %v; want 0", n, err)
		}
	})
}

func TestRecoveryAutoApproval(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.RecoveryAutoApproveAfter = 72 * time.Hour
		s := startServer(t, cfg, nil)
		ctx := context.Background()
		_, aliceSession := s.verifiedRequest(t, "alice")
		_, bobSession := s.verifiedRequest(t, "bob")
		tok := cancelToken(t, s.outbox(t), "bob@example.com")

		s.Clock.Advance(36 * time.Hour)
		if n, err := s.App.Service.AutoApproveDue(ctx); err != nil || n != 0 {
			t.Fatalf("AutoApproveDue at 36h = %d, %v", n, err)
		}
		if !hasMail(s.outbox(t), "alice@example.com", "Reminder: a recovery request for your account will be approved") {
			t.Error("no halfway reminder")
		}
		s.call(t, "POST", "/api/v1/recovery/cancel", "", map[string]string{"token": tok}).want(t, 200)

		s.Clock.Advance(35 * time.Hour) // 71h
		if n, err := s.App.Service.AutoApproveDue(ctx); err != nil || n != 0 {
			t.Fatalf("AutoApproveDue at 71h = %d, %v", n, err)
		}
		s.call(t, "GET", "/api/v1/me", aliceSession, nil).want(t, 200)

		s.Clock.Advance(time.Hour + time.Second) // past 72h
		if n, err := s.App.Service.AutoApproveDue(ctx); err != nil || n != 1 {
			t.Fatalf("AutoApproveDue after 72h = %d, %v; want 1 (alice; bob cancelled)", n, err)
		}
		s.wantRecovered(t, "alice", aliceSession)
		s.wantUntouched(t, "bob", bobSession)
	})
}
