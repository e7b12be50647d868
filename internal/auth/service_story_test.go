package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/apptest"
	"github.com/latchkey/latchkey/internal/auth"
)

var bg = context.Background()

var client = apptest.Client

// wantKind fails unless err is a domain error of kind k (and, if given, code).
func wantKind(t *testing.T, what string, err error, k auth.Kind, code ...string) {
	t.Helper()
	e := auth.AsError(err)
	if e == nil || e.Kind != k || (len(code) > 0 && e.Code != code[0]) {
		t.Fatalf("%s = %v, want kind %v %v", what, err, k, code)
	}
}

func must[T any](t *testing.T, what string) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s = %v", what, err)
		}
		return v
	}
}

// TestSignupAndPasswordSignIn: validation, conflicts, the same answer for an unknown
// login and a wrong password, the password lock and its end, sessions' idle end.
func TestSignupAndPasswordSignIn(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	svc := e.Service
	_, err := svc.Signup(bg, client, "x", "not an email", "short")
	wantKind(t, "Signup(invalid)", err, auth.KindInvalidInput)
	if f := auth.AsError(err).Fields; f["username"] == "" || f["email"] == "" || f["password"] == "" {
		t.Fatalf("Signup(invalid) fields = %v", f)
	}
	e.SignUp(t, "gina")
	_, err = svc.Signup(bg, client, "GINA", "other@example.com", apptest.Password)
	wantKind(t, "Signup(taken username)", err, auth.KindConflict)
	_, err = svc.Signup(bg, client, "gina2", "Gina@Example.com", apptest.Password)
	wantKind(t, "Signup(taken email)", err, auth.KindConflict)

	_, err = svc.Login(bg, client, "nobody", apptest.Password)
	wantKind(t, "Login(unknown)", err, auth.KindInvalidCredentials, "invalid_credentials")
	for i := range 5 {
		_, err = svc.Login(bg, client, "gina", "wrong password")
		if i < 5 {
			wantKind(t, "Login(wrong password)", err, auth.KindInvalidCredentials)
		}
	}
	_, err = svc.Login(bg, client, "gina", apptest.Password)
	wantKind(t, "Login after five failures", err, auth.KindRateLimited)
	if auth.AsError(err).RetryAfter <= 0 {
		t.Fatalf("RetryAfter = %v, want positive", auth.AsError(err).RetryAfter)
	}
	e.Clock.Advance(time.Minute)
	tok := e.SignIn(t, "gina@example.com", nil)
	p := e.Principal(t, tok)
	if p.User.Username != "gina" || !svc.ReauthUntil(p).After(e.Clock.Now()) {
		t.Fatalf("principal = %+v, reauth until %v", p.User, svc.ReauthUntil(p))
	}
	ss := must[[]auth.Session](t, "Sessions")(svc.Sessions(bg, p))
	if len(ss) != 1 {
		t.Fatalf("Sessions = %d, want 1", len(ss))
	}
	e.Clock.Advance(8 * 24 * time.Hour)
	if _, err := svc.Authenticate(bg, tok); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Authenticate after 8 idle days = %v, want unauthenticated", err)
	}
	tok = e.SignIn(t, "gina", nil)
	p = e.Principal(t, tok)
	if err := svc.Logout(bg, client, p); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(bg, tok); err == nil {
		t.Fatal("Authenticate after Logout succeeded")
	}
	if _, err := svc.Authenticate(bg, "garbage"); err == nil {
		t.Fatal("Authenticate(garbage) succeeded")
	}
	ev := must[[]auth.Event](t, "Events")(svc.Events(bg, e.Principal(t, e.SignIn(t, "gina", nil)), 50))
	kinds := map[string]bool{}
	for _, x := range ev {
		kinds[x.Event] = true
	}
	for _, k := range []string{"signup", "login"} {
		if !kinds[k] {
			t.Errorf("security log lacks %q: %v", k, kinds)
		}
	}
}

// TestSecondFactor: enrolment, codes used once, the lock after five wrong codes,
// recovery codes, pending sign-ins that expire, re-authentication, regeneration and
// removal.
func TestSecondFactor(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	svc := e.Service
	e.SignUp(t, "hal")
	tok := e.SignIn(t, "hal", nil)
	p := e.Principal(t, tok)
	_, err := svc.PendingSetup(bg, p)
	wantKind(t, "PendingSetup before setup", err, auth.KindNotFound)
	setup := must[*auth.TOTPSetup](t, "SetupTOTP")(svc.SetupTOTP(bg, client, p))
	if !strings.HasPrefix(setup.URI, "otpauth://totp/Latchkey:hal?") || setup.Digits != 6 || setup.Period != 30 {
		t.Fatalf("setup = %+v", setup)
	}
	_, err = svc.ConfirmTOTP(bg, client, p, "000000")
	wantKind(t, "ConfirmTOTP(wrong)", err, auth.KindInvalidInput)
	codes := must[[]string](t, "ConfirmTOTP")(svc.ConfirmTOTP(bg, client, p, e.Code(setup.Secret)))
	if len(codes) != 16 || svc.RecoveryCodesFileName() != "latchkey-recovery-codes.txt" {
		t.Fatalf("codes = %d, file %q", len(codes), svc.RecoveryCodesFileName())
	}
	_, err = svc.SetupTOTP(bg, client, p)
	wantKind(t, "SetupTOTP with MFA on", err, auth.KindConflict)
	st := must[auth.MFAState](t, "MFAState")(svc.MFAState(bg, p.User.ID))
	if !st.Enabled || st.Codes != (auth.RecoveryCodeCounts{Total: 16, Remaining: 16}) || st.Low() || len(st.Methods()) != 2 {
		t.Fatalf("MFAState = %+v", st)
	}
	e.Clock.Advance(30 * time.Second)

	login := func() string {
		t.Helper()
		res := must[*auth.LoginResult](t, "Login")(svc.Login(bg, client, "hal", apptest.Password))
		if res.Status != auth.StatusMFARequired {
			t.Fatalf("Login status = %q", res.Status)
		}
		return res.MFAToken.Reveal()
	}
	mt := login()
	code := e.Code(setup.Secret)
	if _, err := svc.LoginMFA(bg, client, mt, code, ""); err != nil {
		t.Fatalf("LoginMFA(right code) = %v", err)
	}
	_, err = svc.LoginMFA(bg, client, login(), code, "")
	wantKind(t, "LoginMFA(replayed code)", err, auth.KindInvalidCredentials, "invalid_code")
	_, err = svc.LoginMFA(bg, client, "nope", code, "")
	wantKind(t, "LoginMFA(unknown token)", err, auth.KindInvalidCredentials, "invalid_mfa_token")
	_, err = svc.LoginMFA(bg, client, login(), code, codes[0])
	if err == nil {
		t.Fatal("LoginMFA with both a code and a recovery code succeeded")
	}

	// A recovery code, once.
	res := must[*auth.LoginResult](t, "LoginMFA(recovery code)")(svc.LoginMFA(bg, client, login(), "", strings.ToUpper(codes[0])))
	if res.RecoveryCodesRemaining == nil || *res.RecoveryCodesRemaining != 15 {
		t.Fatalf("remaining after a recovery code = %v", res.RecoveryCodesRemaining)
	}
	_, err = svc.LoginMFA(bg, client, login(), "", codes[0])
	wantKind(t, "LoginMFA(used recovery code)", err, auth.KindInvalidCredentials)

	// A pending sign-in expires.
	mt = login()
	e.Clock.Advance(6 * time.Minute)
	_, err = svc.LoginMFA(bg, client, mt, e.Code(setup.Secret), "")
	wantKind(t, "LoginMFA after the pending sign-in expired", err, auth.KindInvalidCredentials, "invalid_mfa_token")

	// Wrong codes lock the second factor (one of the five above already counted).
	mt = login()
	var locked error
	for range 6 {
		if _, err := svc.LoginMFA(bg, client, mt, "000000", ""); auth.AsError(err) != nil && auth.AsError(err).Kind == auth.KindRateLimited {
			locked = err
			break
		}
	}
	if locked == nil {
		t.Fatal("six wrong codes did not lock the second factor")
	}
	if len(e.Mail(t, "hal@example.com")) == 0 {
		t.Fatal("no mail to the owner")
	}
	e.Clock.Advance(time.Hour)

	// Re-authentication, regeneration, counts, removal.
	tok = e.SignIn(t, "hal", setup.Secret)
	p = e.Principal(t, tok)
	e.Clock.Advance(11 * time.Minute)
	_, err = svc.RegenerateRecoveryCodes(bg, client, p)
	wantKind(t, "RegenerateRecoveryCodes past the window", err, auth.KindReauthRequired)
	_, err = svc.Reauth(bg, client, p, apptest.Password, "", "")
	wantKind(t, "Reauth without a code", err, auth.KindInvalidCredentials)
	_, err = svc.Reauth(bg, client, p, "wrong password", e.Code(setup.Secret), "")
	wantKind(t, "Reauth(wrong password)", err, auth.KindInvalidCredentials)
	e.Clock.Advance(30 * time.Second)
	if _, err := svc.Reauth(bg, client, p, apptest.Password, "", codes[1]); err != nil {
		t.Fatalf("Reauth with a recovery code = %v", err)
	}
	p = e.Principal(t, tok)
	fresh := must[[]string](t, "RegenerateRecoveryCodes")(svc.RegenerateRecoveryCodes(bg, client, p))
	counts := must[auth.RecoveryCodeCounts](t, "RecoveryCodeCounts")(svc.RecoveryCodeCounts(bg, p))
	if len(fresh) != 16 || counts != (auth.RecoveryCodeCounts{Total: 16, Remaining: 16}) {
		t.Fatalf("after regeneration: %d codes, counts %+v", len(fresh), counts)
	}
	if err := svc.DisableMFA(bg, client, p); err != nil {
		t.Fatal(err)
	}
	if err := svc.DisableMFA(bg, client, p); err != nil {
		t.Fatalf("DisableMFA again = %v, want nil (idempotent)", err)
	}
	_, err = svc.RecoveryCodeCounts(bg, p)
	wantKind(t, "RecoveryCodeCounts with MFA off", err, auth.KindConflict)
	_, err = svc.RegenerateRecoveryCodes(bg, client, p)
	wantKind(t, "RegenerateRecoveryCodes with MFA off", err, auth.KindConflict)
	// A principal carries the state read with its session; a new request reads afresh.
	if st := must[auth.MFAState](t, "MFAStateOf")(svc.MFAStateOf(bg, e.Principal(t, tok))); st.Enabled || len(st.Methods()) != 0 {
		t.Fatalf("MFAStateOf after removal = %+v", st)
	}
}

// TestPasswordsAndTokens: change and reset end other sessions; tokens cannot change
// credentials; the operator's commands.
func TestPasswordsAndTokens(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	svc := e.Service
	e.SignUp(t, "ivy")
	tok := e.SignIn(t, "ivy", nil)
	other := e.SignIn(t, "ivy", nil)
	p := e.Principal(t, tok)
	err := svc.ChangePassword(bg, client, p, "wrong password", "another good password")
	wantKind(t, "ChangePassword(wrong current)", err, auth.KindInvalidInput)
	if err := svc.ChangePassword(bg, client, p, apptest.Password, "another good password"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(bg, other); err == nil {
		t.Fatal("the other session survived a password change")
	}

	if err := svc.ForgotPassword(bg, client, "nobody@example.com"); err != nil {
		t.Fatalf("ForgotPassword(unknown) = %v, want nil", err)
	}
	if err := svc.ForgotPassword(bg, client, "ivy@example.com"); err != nil {
		t.Fatal(err)
	}
	link := e.LinkToken(t, "ivy@example.com", "/password/reset")
	wantKind(t, "ResetPassword(bad token)", svc.ResetPassword(bg, client, "nope", "a brand new password", true), auth.KindInvalidInput)
	if err := svc.ResetPassword(bg, client, link, "a brand new password", true); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "ResetPassword(used token)", svc.ResetPassword(bg, client, link, "a brand new password", true), auth.KindInvalidInput)
	res := must[*auth.LoginResult](t, "Login")(svc.Login(bg, client, "ivy", "a brand new password"))
	p = e.Principal(t, res.SessionToken.Reveal())

	pat := must[*auth.NewAccessToken](t, "CreateToken")(svc.CreateToken(bg, client, p, "ci", 30))
	_, err = svc.CreateToken(bg, client, p, "", 30)
	wantKind(t, "CreateToken(no name)", err, auth.KindInvalidInput)
	tp := e.Principal(t, pat.Secret.Reveal())
	if tp.Token == nil || tp.Session != nil {
		t.Fatalf("token principal = %+v", tp)
	}
	_, err = svc.CreateToken(bg, client, tp, "nested", 0)
	wantKind(t, "CreateToken by a token", err, auth.KindForbidden)
	wantKind(t, "ChangePassword by a token", svc.ChangePassword(bg, client, tp, "a brand new password", "x"), auth.KindForbidden)
	list := must[[]auth.AccessToken](t, "Tokens")(svc.Tokens(bg, p))
	if len(list) != 1 || list[0].Name != "ci" {
		t.Fatalf("Tokens = %+v", list)
	}
	wantKind(t, "DeleteToken(unknown)", svc.DeleteToken(bg, client, p, 9999), auth.KindNotFound)
	if err := svc.DeleteToken(bg, client, p, list[0].ID); err != nil {
		t.Fatal(err)
	}
	ss := must[[]auth.Session](t, "Sessions")(svc.Sessions(bg, p))
	wantKind(t, "RevokeSession(unknown)", svc.RevokeSession(bg, client, p, 9999), auth.KindNotFound)
	if err := svc.RevokeSession(bg, client, p, ss[0].ID); err != nil {
		t.Fatal(err)
	}

	// The operator's commands.
	admin := must[*auth.User](t, "CreateUser")(svc.CreateUser(bg, client, "ops", "ops@example.com", apptest.Password, true))
	if !admin.IsAdmin {
		t.Fatal("CreateUser(admin) made no admin")
	}
	if us := must[[]auth.User](t, "Users")(svc.Users(bg)); len(us) != 2 {
		t.Fatalf("Users = %d, want 2", len(us))
	}
	if u := must[*auth.User](t, "GrantAdmin")(svc.AdminSetOperator(bg, client, "ivy", "on call from Monday", true)); !u.IsAdmin {
		t.Fatal("GrantAdmin did not")
	}
	_, err = svc.UserByLogin(bg, "nobody")
	if err == nil {
		t.Fatal("UserByLogin(nobody) found someone")
	}
	tok = e.SignIn(t, "ops", nil)
	e.EnableMFA(t, tok)
	_, _, err = svc.AdminResetMFA(bg, client, "ops", "")
	wantKind(t, "AdminResetMFA without a reason", err, auth.KindInvalidInput)
	_, was, err := svc.AdminResetMFA(bg, client, "ops", "lost phone, checked by video")
	if err != nil || !was {
		t.Fatalf("AdminResetMFA = %v, %v", was, err)
	}
	if out := must[[]auth.OutboxEntry](t, "Outbox")(svc.Outbox(bg)); len(out) == 0 {
		t.Fatal("the outbox is empty")
	}
	e.Clock.Advance(40 * 24 * time.Hour)
	if _, err := svc.Purge(bg); err != nil {
		t.Fatalf("Purge = %v", err)
	}
}

// TestRecovery: a request proved with a personal access token, approved after the
// auto-approval delay; another denied; another cancelled; decoys fail alike.
func TestRecovery(t *testing.T) {
	e := apptest.New(t, apptest.Options{Config: auth.Config{RecoveryAutoApproveAfter: 48 * time.Hour}})
	svc := e.Service
	e.SignUp(t, "jo")
	p := e.Principal(t, e.SignIn(t, "jo", nil))
	pat := must[*auth.NewAccessToken](t, "CreateToken")(svc.CreateToken(bg, client, p, "laptop", 0))
	key := apptest.NewSSHKey(t)
	_, err := svc.AddSSHKey(bg, client, p, "laptop", "garbage")
	wantKind(t, "AddSSHKey(garbage)", err, auth.KindInvalidInput)
	k := must[*auth.SSHKey](t, "AddSSHKey")(svc.AddSSHKey(bg, client, p, "laptop", key.AuthorizedKey))
	if keys := must[[]auth.SSHKey](t, "SSHKeys")(svc.SSHKeys(bg, p)); len(keys) != 1 {
		t.Fatalf("SSHKeys = %d", len(keys))
	}

	decoy := must[*auth.RecoveryChallenge](t, "OpenRecovery(unknown)")(svc.OpenRecovery(bg, client, "nobody"))
	_, err = svc.VerifyRecovery(bg, client, decoy.ID, key.Sign(t, decoy.Namespace, decoy.Challenge), "")
	if err == nil {
		t.Fatal("a decoy request verified")
	}

	ch := must[*auth.RecoveryChallenge](t, "OpenRecovery")(svc.OpenRecovery(bg, client, "jo"))
	_, err = svc.VerifyRecovery(bg, client, ch.ID, "", "lk_wrong")
	if err == nil {
		t.Fatal("a wrong token verified")
	}
	if _, err := svc.VerifyRecovery(bg, client, ch.ID, "", pat.Secret.Reveal()); err != nil {
		t.Fatalf("VerifyRecovery(token) = %v", err)
	}
	if n := must[int](t, "AutoApproveDue")(svc.AutoApproveDue(bg)); n != 0 {
		t.Fatalf("AutoApproveDue before the delay = %d", n)
	}
	e.Clock.Advance(49 * time.Hour)
	if n := must[int](t, "AutoApproveDue")(svc.AutoApproveDue(bg)); n != 1 {
		t.Fatalf("AutoApproveDue after the delay = %d, want 1", n)
	}

	p = e.Principal(t, e.SignIn(t, "jo", nil))
	if err := svc.DeleteSSHKey(bg, client, p, k.ID); err != nil {
		t.Fatalf("DeleteSSHKey = %v", err)
	}
	wantKind(t, "DeleteSSHKey again", svc.DeleteSSHKey(bg, client, p, k.ID), auth.KindNotFound)
	pat = must[*auth.NewAccessToken](t, "CreateToken")(svc.CreateToken(bg, client, p, "again", 0))
	ch = must[*auth.RecoveryChallenge](t, "OpenRecovery")(svc.OpenRecovery(bg, client, "jo"))
	must[*auth.RecoveryVerification](t, "VerifyRecovery")(svc.VerifyRecovery(bg, client, ch.ID, "", pat.Secret.Reveal()))
	_, err = svc.AdminDenyRecovery(bg, client, ch.ID, "")
	wantKind(t, "AdminDenyRecovery without a reason", err, auth.KindInvalidInput)
	must[*auth.User](t, "AdminDenyRecovery")(svc.AdminDenyRecovery(bg, client, ch.ID, "not convinced"))
	_, err = svc.AdminApproveRecovery(bg, client, ch.ID, "changed my mind")
	if err == nil {
		t.Fatal("approving a denied request succeeded")
	}
	if list := must[[]auth.RecoveryRequestInfo](t, "AdminRecoveryRequests")(svc.AdminRecoveryRequests(bg, "")); len(list) != 2 {
		t.Fatalf("AdminRecoveryRequests = %d, want the account's two requests (decoys are not listed)", len(list))
	}
	_, err = svc.RecoveryRequests(bg, p, "")
	wantKind(t, "RecoveryRequests by a non-admin", err, auth.KindForbidden)

	must[*auth.RecoveryChallenge](t, "OpenRecovery")(svc.OpenRecovery(bg, client, "jo"))
	cancel := e.LinkToken(t, "jo@example.com", "/recover/cancel")
	if err := svc.CancelRecovery(bg, client, cancel); err != nil {
		t.Fatalf("CancelRecovery = %v", err)
	}
	if err := svc.CancelRecovery(bg, client, "nope"); err == nil {
		t.Fatal("CancelRecovery(nope) succeeded")
	}
}
