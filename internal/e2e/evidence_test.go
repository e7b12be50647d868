package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requestStatus reads a recovery request's status through the operator's CLI list.
func requestStatus(t *testing.T, s *testServer, id string) string {
	t.Helper()
	rs, err := s.App.Service.AdminRecoveryRequests(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if string(r.ID) == id {
			return r.Status
		}
	}
	t.Fatalf("no recovery request %s", id)
	return ""
}

// TestRecoveryEvidenceRechecked: a request ends (cancelled, logged, mailed) when the
// token that verified it is revoked or expires, or the owner signs in with a second
// factor; neither the operator nor auto-approval can approve it after that.
func TestRecoveryEvidenceRechecked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.RecoveryAutoApproveAfter = 72 * time.Hour
		s := startServer(t, cfg, nil)
		approveCLI := func(id string) (int, string) {
			code, _, errs := runCLI(t, cfg, "", "admin", "recovery", "approve", "--reason", "looked fine", id)
			return code, errs
		}

		// The token that verified it is revoked.
		s.signup(t, "rev", "rev@example.com")
		revSession := s.login(t, "rev")
		s.enrolTOTP(t, revSession)
		patID, pat := s.newPAT(t, revSession, 0)
		id, _ := s.openRecovery(t, "rev")
		s.verifyRecovery(t, id, map[string]string{"personal_access_token": pat}).want(t, 200)
		s.call(t, "DELETE", "/api/v1/tokens/"+strconv.Itoa(int(patID)), revSession, nil).want(t, 204)
		if st := requestStatus(t, s, id); st != "cancelled" {
			t.Fatalf("after revoking its token the request is %s", st)
		}
		if code, errs := approveCLI(id); code == 0 || !strings.Contains(errs, "cancelled") {
			t.Fatalf("approving it = %d %q", code, errs)
		}
		if !strings.Contains(lastMailBody(s.outbox(t), "rev@example.com", "A recovery request for your account was cancelled"), "revoked") {
			t.Error("the owner was not told why the request ended")
		}
		s.call(t, "GET", "/api/v1/me", revSession, nil).want(t, 200) // nothing was approved

		// The owner signs in with a second factor.
		s.signup(t, "own", "own@example.com")
		ownSession := s.login(t, "own")
		secret := s.enrolTOTP(t, ownSession)
		_, ownPAT := s.newPAT(t, ownSession, 0)
		id, _ = s.openRecovery(t, "own")
		s.verifyRecovery(t, id, map[string]string{"personal_access_token": ownPAT}).want(t, 200)
		s.Clock.Advance(30 * time.Second) // the enrolment's step is used
		s.mfa(t, s.pending(t, "own"), "code", codeAt(t, secret, s.Clock.Now())).want(t, 200)
		if st := requestStatus(t, s, id); st != "cancelled" {
			t.Fatalf("after a second-factor sign-in the request is %s", st)
		}
		if code, _ := approveCLI(id); code == 0 {
			t.Fatal("a request cancelled by a second-factor sign-in was approved")
		}

		// The token expires before auto-approval is due: auto-approval re-checks it and
		// closes the request instead.
		s.signup(t, "exp", "exp@example.com")
		expSession := s.login(t, "exp")
		s.enrolTOTP(t, expSession)
		_, expPAT := s.newPAT(t, expSession, 1)
		id, _ = s.openRecovery(t, "exp")
		s.verifyRecovery(t, id, map[string]string{"personal_access_token": expPAT}).want(t, 200)
		s.Clock.Advance(73 * time.Hour)
		if n, err := s.App.Service.AutoApproveDue(context.Background()); err != nil || n != 0 {
			t.Fatalf("AutoApproveDue = %d, %v; want 0 (the evidence expired)", n, err)
		}
		if st := requestStatus(t, s, id); st != "cancelled" {
			t.Fatalf("after its token expired the request is %s", st)
		}
		// Nothing was taken away from the owner.
		r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "exp", "password": testPassword}).want(t, 200)
		if r.str("status") != "mfa_required" {
			t.Fatalf("exp lost MFA: %s", r.Raw)
		}
	})
}
