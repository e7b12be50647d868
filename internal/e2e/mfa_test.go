package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// oathtool returns the real oathtool's TOTP code for secret at time at.
func oathtool(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	bin := requireTool(t, "oathtool")
	out, err := exec.Command(bin, "--totp", "-b", secret, "-N", "@"+strconv.FormatInt(at.Unix(), 10)).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

var codeFormat = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

// enrol turns MFA on for the session and returns the secret and the recovery codes.
func (s *testServer) enrol(t *testing.T, tok string) (string, []string) {
	t.Helper()
	setup := s.call(t, "POST", "/api/v1/mfa/totp/setup", tok, nil).want(t, 200)
	secret := setup.str("secret")
	code := oathtool(t, secret, s.Clock.Now())
	r := s.call(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": code}).want(t, 200)
	var codes []string
	for _, c := range r.Body["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	return secret, codes
}

// pending runs the password step of an MFA account and returns the mfa_token.
func (s *testServer) pending(t *testing.T, login string) string {
	t.Helper()
	r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": login, "password": testPassword}).want(t, 200)
	if r.str("status") != "mfa_required" {
		t.Fatalf("login status = %q, want mfa_required", r.str("status"))
	}
	return r.str("mfa_token")
}

func (s *testServer) mfa(t *testing.T, mfaToken, field, code string) *response {
	t.Helper()
	return s.call(t, "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": mfaToken, field: code})
}

// TestSeedStory walks SPEC §2 items 1–6 through the API on both stores.
func TestSeedStory(t *testing.T) {
	zbar := requireTool(t, "zbarimg")
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "alice", "alice@example.com")
		tok := s.login(t, "alice")
		other := s.login(t, "alice")

		// Setup: the details for manual entry and a QR code of the same URI.
		setup := s.call(t, "POST", "/api/v1/mfa/totp/setup", tok, nil).want(t, 200)
		secret := setup.str("secret")
		if len(secret) != 32 || setup.str("algorithm") != "SHA1" || setup.Body["digits"] != 6.0 || setup.Body["period"] != 30.0 ||
			setup.str("issuer") != "Latchkey" || setup.str("account") != "alice" {
			t.Fatalf("setup = %s", setup.Raw)
		}
		wantURI := "otpauth://totp/Latchkey:alice?secret=" + secret + "&issuer=Latchkey&algorithm=SHA1&digits=6&period=30"
		if setup.str("otpauth_uri") != wantURI {
			t.Fatalf("otpauth_uri = %q, want %q", setup.str("otpauth_uri"), wantURI)
		}
		png := s.call(t, "GET", setup.str("qr_png_url"), tok, nil).want(t, 200)
		if png.Header.Get("Content-Type") != "image/png" || png.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("qr.png headers = %v", png.Header)
		}
		file := filepath.Join(t.TempDir(), "qr.png")
		if err := os.WriteFile(file, png.Raw, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zbar, "--quiet", "--raw", file).Output()
		if err != nil {
			t.Fatalf("zbarimg: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != wantURI {
			t.Fatalf("QR decodes to %q, want %q", got, wantURI)
		}
		svg := s.call(t, "GET", setup.str("qr_svg_url"), tok, nil).want(t, 200)
		if !strings.HasPrefix(string(svg.Raw), "<svg") || svg.Header.Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("qr.svg = %.80s (%s)", svg.Raw, svg.Header.Get("Content-Type"))
		}

		// A wrong code changes nothing.
		s.call(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": "000000"}).want(t, 400, "invalid_code")
		if s.call(t, "GET", "/api/v1/me", tok, nil).Body["mfa"].(map[string]any)["enabled"] != false {
			t.Fatal("a wrong code enabled MFA")
		}
		s.call(t, "GET", "/api/v1/me", other, nil).want(t, 200)

		// The right code: 16 codes, the file name, this session kept, the other ended.
		enrolCode := oathtool(t, secret, s.Clock.Now())
		r := s.call(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": enrolCode}).want(t, 200)
		codes := r.Body["recovery_codes"].([]any)
		if len(codes) != 16 || r.str("recovery_codes_filename") != "latchkey-recovery-codes.txt" || r.Body["enabled"] != true {
			t.Fatalf("confirm = %s", r.Raw)
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if !codeFormat.MatchString(c.(string)) || seen[c.(string)] {
				t.Fatalf("bad or repeated recovery code %q", c)
			}
			seen[c.(string)] = true
		}
		s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 200)
		s.call(t, "GET", "/api/v1/me", other, nil).want(t, 401)
		me := s.call(t, "GET", "/api/v1/me", tok, nil).Body["mfa"].(map[string]any)
		if me["enabled"] != true || me["recovery_codes_remaining"] != 16.0 || fmt.Sprint(me["methods"]) != "[totp recovery_code]" {
			t.Fatalf("me.mfa = %v", me)
		}
		s.call(t, "GET", "/api/v1/mfa/recovery-codes", tok, nil).want(t, 200)
		s.call(t, "POST", "/api/v1/mfa/totp/setup", tok, nil).want(t, 409, "mfa_already_enabled")
		s.call(t, "POST", "/api/v1/logout", tok, nil).want(t, 204)

		// Sign in: password, then the app's code. The enrolment code is already used.
		mt := s.pending(t, "alice")
		s.mfa(t, mt, "code", enrolCode).want(t, 401, "invalid_code")
		s.Clock.Advance(30 * time.Second)
		code := oathtool(t, secret, s.Clock.Now())
		ok := s.mfa(t, mt, "code", code).want(t, 200)
		if ok.str("status") != "authenticated" || ok.str("session_token") == "" || ok.str("session_token") == mt {
			t.Fatalf("login/mfa = %s", ok.Raw)
		}
		// The pending token is consumed; the code can't be replayed on a fresh login.
		s.mfa(t, mt, "code", code).want(t, 401, "invalid_mfa_token")
		s.mfa(t, s.pending(t, "alice"), "code", code).want(t, 401, "invalid_code")

		// A recovery code typed in upper case with spaces; it works once.
		rc := codes[3].(string)
		typed := strings.ToUpper(strings.ReplaceAll(rc, "-", " "))
		rr := s.mfa(t, s.pending(t, "alice"), "recovery_code", typed).want(t, 200)
		if rr.Body["recovery_codes_remaining"] != 15.0 {
			t.Fatalf("recovery_codes_remaining = %v, want 15", rr.Body["recovery_codes_remaining"])
		}
		s.mfa(t, s.pending(t, "alice"), "recovery_code", rc).want(t, 401, "invalid_code")
		tok = rr.str("session_token")

		// Regenerate: old codes stop working at once, new ones work.
		g := s.call(t, "POST", "/api/v1/mfa/recovery-codes/regenerate", tok, nil).want(t, 200)
		fresh := g.Body["recovery_codes"].([]any)
		if len(fresh) != 16 || g.str("recovery_codes_filename") != "latchkey-recovery-codes.txt" {
			t.Fatalf("regenerate = %s", g.Raw)
		}
		s.mfa(t, s.pending(t, "alice"), "recovery_code", codes[5].(string)).want(t, 401, "invalid_code")
		tok = s.mfa(t, s.pending(t, "alice"), "recovery_code", fresh[0].(string)).want(t, 200).str("session_token")
		n := s.call(t, "GET", "/api/v1/mfa/recovery-codes", tok, nil).want(t, 200)
		if n.Body["total"] != 16.0 || n.Body["remaining"] != 15.0 {
			t.Fatalf("recovery-codes = %s", n.Raw)
		}

		// Remove clears everything; sign-in is back to one step; re-enrolment gets a new secret.
		s.call(t, "DELETE", "/api/v1/mfa", tok, nil).want(t, 200)
		if me := s.call(t, "GET", "/api/v1/me", tok, nil).Body["mfa"].(map[string]any); me["enabled"] != false || me["recovery_codes_remaining"] != nil {
			t.Fatalf("after Remove me.mfa = %v", me)
		}
		s.call(t, "GET", "/api/v1/mfa/recovery-codes", tok, nil).want(t, 409, "mfa_not_enabled")
		s.call(t, "POST", "/api/v1/mfa/recovery-codes/regenerate", tok, nil).want(t, 409, "mfa_not_enabled")
		tok = s.login(t, "alice")
		again := s.call(t, "POST", "/api/v1/mfa/totp/setup", tok, nil).want(t, 200)
		if again.str("secret") == secret {
			t.Fatal("re-enrolment reused the old secret")
		}

		// Every step told the user by mail.
		mails := s.outbox(t)
		for _, subj := range []string{"Multiple-factor authentication is on", "A recovery code was used",
			"Your recovery codes were regenerated", "Multiple-factor authentication is off"} {
			if !hasMail(mails, "alice@example.com", subj) {
				t.Errorf("no mail %q", subj)
			}
		}
		for _, m := range mails {
			if m.Subject == "A recovery code was used" && !strings.Contains(m.Body, "15 of your recovery codes remain") {
				t.Errorf("recovery-code mail lacks the count: %q", m.Body)
			}
		}
	})
}

func TestTOTPReplayAndWindow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.MFAMaxFailures = 100 // every code below must be evaluated, not locked out
		s := startServer(t, cfg, nil)
		s.signup(t, "erin", "erin@example.com")
		secret, _ := s.enrol(t, s.login(t, "erin"))
		s.Clock.Advance(5 * time.Minute)
		now := s.Clock.Now()
		// Too old and too new steps are refused; ±1 step accepted; an earlier step
		// after a later one is refused.
		s.mfa(t, s.pending(t, "erin"), "code", oathtool(t, secret, now.Add(-60*time.Second))).want(t, 401, "invalid_code")
		s.mfa(t, s.pending(t, "erin"), "code", oathtool(t, secret, now.Add(60*time.Second))).want(t, 401, "invalid_code")
		s.mfa(t, s.pending(t, "erin"), "code", oathtool(t, secret, now.Add(30*time.Second))).want(t, 200)
		s.mfa(t, s.pending(t, "erin"), "code", oathtool(t, secret, now)).want(t, 401, "invalid_code")
		s.mfa(t, s.pending(t, "erin"), "code", oathtool(t, secret, now.Add(-30*time.Second))).want(t, 401, "invalid_code")
		// Malformed codes are wrong codes (the right code with a sign, a digit short,
		// zero-padded, in other scripts, spaced); an empty one is no code at all.
		right := oathtool(t, secret, now.Add(60*time.Second))
		for _, bad := range []string{"+" + right[1:], right[1:], "0" + right, "٠٨١٨٠٤", "０８１８０４", right[:3] + " " + right[3:], "abcdef"} {
			s.mfa(t, s.pending(t, "erin"), "code", bad).want(t, 401, "invalid_code")
		}
		s.mfa(t, s.pending(t, "erin"), "code", "").want(t, 400, "invalid_input")
		s.Clock.Advance(30 * time.Second) // now+60s is one step ahead again
		s.mfa(t, s.pending(t, "erin"), "code", right).want(t, 200)
	})
}

func TestSecondFactorLock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "Frank", "frank@example.com")
		secret, codes := s.enrol(t, s.login(t, "frank"))
		s.Clock.Advance(time.Minute)

		// Guesses from fresh logins with every spelling hit one count: 5 evaluated,
		// then 429 with Retry-After.
		spellings := []string{"frank", "Frank", "FRANK", "frank@example.com", "Frank@Example.com"}
		evaluated, refused := 0, 0
		for i := 0; i < 40; i++ {
			r := s.mfa(t, s.pending(t, spellings[i%len(spellings)]), "code", fmt.Sprintf("%06d", i))
			switch r.Status {
			case 401:
				evaluated++
			case 429:
				refused++
				if r.errCode() != "too_many_attempts" || r.Header.Get("Retry-After") == "" {
					t.Fatalf("429 without code/Retry-After: %v %s", r.Header, r.Raw)
				}
			default:
				t.Fatalf("guess %d: status %d", i, r.Status)
			}
		}
		if evaluated != 5 || refused != 35 {
			t.Fatalf("evaluated %d, refused %d; want 5 and 35", evaluated, refused)
		}
		// During the lock the right code and a right recovery code are refused, from
		// a fresh pending login too, and /login still answers mfa_required.
		mt := s.pending(t, "frank")
		right := oathtool(t, secret, s.Clock.Now())
		r := s.mfa(t, mt, "code", right).want(t, 429, "too_many_attempts")
		if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 1 || ra > 30 {
			t.Fatalf("Retry-After = %q, want 1..30", r.Header.Get("Retry-After"))
		}
		s.mfa(t, mt, "recovery_code", codes[0]).want(t, 429)

		// After 30 s one more wrong code locks again, for twice as long.
		s.Clock.Advance(31 * time.Second)
		s.mfa(t, mt, "code", "999999").want(t, 401)
		r = s.mfa(t, mt, "code", right).want(t, 429)
		if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra <= 30 || ra > 60 {
			t.Fatalf("second lock Retry-After = %q, want 31..60", r.Header.Get("Retry-After"))
		}
		s.Clock.Advance(61 * time.Second)
		// Success resets the count.
		s.mfa(t, mt, "code", oathtool(t, secret, s.Clock.Now())).want(t, 200)
		for i := 0; i < 4; i++ {
			s.mfa(t, s.pending(t, "frank"), "code", "000001").want(t, 401)
		}
		s.mfa(t, s.pending(t, "frank"), "recovery_code", codes[1]).want(t, 200)

		ev := s.call(t, "GET", "/api/v1/security-log", s.login2fa(t, "frank", secret), nil).want(t, 200).Body["events"].([]any)
		locked := 0
		for _, e := range ev {
			if e.(map[string]any)["event"] == "mfa_locked" {
				locked++
			}
		}
		if locked != 2 {
			t.Errorf("mfa_locked events = %d, want 2", locked)
		}
		if !hasMail(s.outbox(t), "frank@example.com", "Too many wrong sign-in codes") {
			t.Error("no lock mail")
		}
	})
}

// login2fa signs in with the next TOTP step.
func (s *testServer) login2fa(t *testing.T, login, secret string) string {
	t.Helper()
	s.Clock.Advance(30 * time.Second)
	return s.mfa(t, s.pending(t, login), "code", oathtool(t, secret, s.Clock.Now())).want(t, 200).str("session_token")
}

// TestParallelGuesses sends 200 wrong codes at once: at most 5 are evaluated.
func TestParallelGuesses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "gina", "gina@example.com")
		s.enrol(t, s.login(t, "gina"))
		tokens := make([]string, 8)
		for i := range tokens {
			tokens[i] = s.pending(t, "gina")
		}
		counts := parallel(t, 200, func(i int) int {
			return s.mfa(t, tokens[i%len(tokens)], "code", fmt.Sprintf("%06d", 100000+i)).Status
		})
		// The rest wait for a slot and then see the lock (429); on a slow machine some
		// wait past 2 s and get 503, which evaluates nothing either.
		if counts[401] > 5 || counts[401]+counts[429]+counts[503] != 200 {
			t.Fatalf("status counts %v: want at most 5 × 401 and the rest 429 or 503", counts)
		}
	})
}

// parallel runs f n times at once (released together) and counts the results.
func parallel(t *testing.T, n int, f func(i int) int) map[int]int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := make(chan struct{})
	counts := map[int]int{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st := f(i)
			mu.Lock()
			counts[st]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

// TestCodeRaces: one TOTP code and one recovery code, each sent 16 times at once,
// succeed exactly once.
func TestCodeRaces(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "hank", "hank@example.com")
		secret, codes := s.enrol(t, s.login(t, "hank"))
		s.Clock.Advance(30 * time.Second)
		for _, tc := range []struct{ field, code string }{
			{"code", oathtool(t, secret, s.Clock.Now())},
			{"recovery_code", codes[7]},
		} {
			tokens := make([]string, 16)
			for i := range tokens {
				tokens[i] = s.pending(t, "hank")
			}
			counts := parallel(t, 16, func(i int) int { return s.mfa(t, tokens[i], tc.field, tc.code).Status })
			if counts[200] != 1 {
				t.Fatalf("%s sent 16 times: %v, want exactly one 200", tc.field, counts)
			}
			// Let the lock from the losers pass before the next round.
			s.Clock.Advance(16 * time.Minute)
		}
		// The same pending token raced with the same good code: one session.
		s.Clock.Advance(30 * time.Second)
		mt := s.pending(t, "hank")
		code := oathtool(t, secret, s.Clock.Now())
		counts := parallel(t, 16, func(int) int { return s.mfa(t, mt, "code", code).Status })
		if counts[200] != 1 {
			t.Fatalf("one pending token raced: %v, want exactly one 200", counts)
		}
	})
}

func TestRecoveryCodeOfAnotherAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "ivan", "ivan@example.com")
		s.signup(t, "judy", "judy@example.com")
		_, ivanCodes := s.enrol(t, s.login(t, "ivan"))
		s.enrol(t, s.login(t, "judy"))
		for _, c := range ivanCodes[:3] {
			s.mfa(t, s.pending(t, "judy"), "recovery_code", c).want(t, 401, "invalid_code")
		}
		s.mfa(t, s.pending(t, "ivan"), "recovery_code", ivanCodes[0]).want(t, 200)
	})
}

// TestFlowBypass: a pending-MFA token, a personal access token and a stale session
// can't do what a fresh session can.
func TestFlowBypass(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "kate", "kate@example.com")
		tok := s.login(t, "kate")
		pat := s.call(t, "POST", "/api/v1/tokens", tok, map[string]any{"name": "ci", "expires_in_days": 30}).want(t, 201).str("token")
		if !strings.HasPrefix(pat, "lk_") {
			t.Fatalf("token %q lacks lk_", pat)
		}
		// A PAT reads, but never changes credentials.
		s.call(t, "GET", "/api/v1/me", pat, nil).want(t, 200)
		for _, c := range []struct{ method, path string }{
			{"POST", "/api/v1/mfa/totp/setup"}, {"POST", "/api/v1/mfa/recovery-codes/regenerate"}, {"DELETE", "/api/v1/mfa"},
			{"POST", "/api/v1/tokens"}, {"POST", "/api/v1/password"}, {"POST", "/api/v1/reauth"},
		} {
			s.call(t, c.method, c.path, pat, map[string]string{"name": "x", "current_password": testPassword, "new_password": "whatever password", "password": testPassword}).want(t, 403, "forbidden_for_token")
		}

		secret, _ := s.enrol(t, tok)
		// Only the password step done: the mfa_token opens nothing else.
		mt := s.pending(t, "kate")
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/me"}, {"GET", "/api/v1/sessions"}, {"POST", "/api/v1/mfa/totp/setup"}, {"DELETE", "/api/v1/mfa"},
			{"POST", "/api/v1/mfa/recovery-codes/regenerate"}, {"GET", "/api/v1/security-log"}, {"POST", "/api/v1/tokens"},
			{"GET", "/api/v1/tokens"}, {"POST", "/api/v1/reauth"}, {"POST", "/api/v1/logout"},
		} {
			s.call(t, c.method, c.path, mt, nil).want(t, 401, "unauthenticated")
		}
		// A TOTP code without the password never authenticates.
		s.Clock.Advance(30 * time.Second)
		s.mfa(t, "", "code", oathtool(t, secret, s.Clock.Now())).want(t, 401, "invalid_mfa_token")
		// The pending token expires after 5 minutes.
		s.Clock.Advance(5*time.Minute + time.Second)
		s.mfa(t, mt, "code", oathtool(t, secret, s.Clock.Now())).want(t, 401, "invalid_mfa_token")

		// A stale session (11 minutes) must re-authenticate for sensitive actions.
		fresh := s.login2fa(t, "kate", secret)
		s.Clock.Advance(11 * time.Minute)
		s.call(t, "POST", "/api/v1/mfa/recovery-codes/regenerate", fresh, nil).want(t, 403, "reauth_required")
		s.call(t, "DELETE", "/api/v1/mfa", fresh, nil).want(t, 403, "reauth_required")
		s.call(t, "POST", "/api/v1/tokens", fresh, map[string]any{"name": "x"}).want(t, 403, "reauth_required")
		s.call(t, "POST", "/api/v1/reauth", fresh, map[string]string{"password": testPassword}).want(t, 401)
		s.call(t, "POST", "/api/v1/reauth", fresh, map[string]string{"password": "wrong password", "code": oathtool(t, secret, s.Clock.Now())}).want(t, 401, "invalid_credentials")
		s.call(t, "POST", "/api/v1/reauth", fresh, map[string]string{"password": testPassword, "code": "000000"}).want(t, 401, "invalid_code")
		re := s.call(t, "POST", "/api/v1/reauth", fresh, map[string]string{"password": testPassword, "code": oathtool(t, secret, s.Clock.Now())}).want(t, 200)
		if until, err := time.Parse(time.RFC3339Nano, re.str("reauthenticated_until")); err != nil || !until.Equal(s.Clock.Now().Add(10*time.Minute)) {
			t.Fatalf("reauthenticated_until = %q (%v)", re.str("reauthenticated_until"), err)
		}
		s.call(t, "POST", "/api/v1/mfa/recovery-codes/regenerate", fresh, nil).want(t, 200)
		s.call(t, "DELETE", "/api/v1/mfa", fresh, nil).want(t, 200)
	})
}

// TestLowRecoveryCodesWarning: with three or fewer codes left, /me says so.
func TestLowRecoveryCodesWarning(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	s.signup(t, "lena", "lena@example.com")
	_, codes := s.enrol(t, s.login(t, "lena"))
	var tok string
	for i, c := range codes[:13] {
		tok = s.mfa(t, s.pending(t, "lena"), "recovery_code", c).want(t, 200).str("session_token")
		mfa := s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 200).Body["mfa"].(map[string]any)
		remaining := 16 - (i + 1)
		low := mfa["recovery_codes_low"] == true && strings.Contains(fmt.Sprint(mfa["warning"]), "regenerate")
		if mfa["recovery_codes_remaining"] != float64(remaining) || low != (remaining <= 3) {
			t.Fatalf("after %d codes: me.mfa = %v", i+1, mfa)
		}
	}
}
