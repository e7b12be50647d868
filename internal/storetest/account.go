package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// emailLink stores an address link for user.
func emailLink(t *testing.T, s auth.Store, token string, user auth.UserID, purpose, email string, expires time.Time) {
	t.Helper()
	noErr(t, "CreateEmailLink("+token+")", s.CreateEmailLink(ctx(t), &auth.EmailLink{TokenHash: hash(token), UserID: user,
		Purpose: purpose, Email: email, CreatedAt: t0(), ExpiresAt: expires}))
}

func userNow(t *testing.T, s auth.Store, id auth.UserID) *auth.User {
	t.Helper()
	u, err := s.UserByID(ctx(t), id)
	noErr(t, "UserByID", err)
	return u
}

// testEmailLinks: an unverified address blocks nobody, the first to verify keeps it,
// the others' copies are dropped, and links work once.
func testEmailLinks(t *testing.T, s auth.Store) {
	owner := mustUser(t, s, "owner")
	// A squatter signs up with the owner's address before the owner verifies it.
	squatter := &auth.User{Username: "squatter", Email: "OWNER@example.com", PasswordHash: "h", CreatedAt: t0()}
	noErr(t, "CreateUser(unverified duplicate)", s.CreateUser(ctx(t), squatter))
	for _, login := range []string{"owner@example.com", "OWNER@example.com"} {
		_, err := s.UserByLogin(ctx(t), login)
		wantErr(t, "UserByLogin(unverified email "+login+")", err, auth.ErrNotFound)
	}
	_, err := s.UserByEmail(ctx(t), "owner@example.com")
	wantErr(t, "UserByEmail(unverified)", err, auth.ErrNotFound)
	if u, err := s.UserByLogin(ctx(t), "owner"); err != nil || u.ID != owner.ID {
		t.Fatalf("UserByLogin(owner) = %+v, %v", u, err)
	}

	emailLink(t, s, "v-old", owner.ID, auth.EmailLinkVerify, owner.Email, at(time.Hour))
	emailLink(t, s, "v1", owner.ID, auth.EmailLinkVerify, owner.Email, at(time.Hour))
	emailLink(t, s, "sq", squatter.ID, auth.EmailLinkVerify, squatter.Email, at(time.Hour))
	emailLink(t, s, "expired", owner.ID, auth.EmailLinkChange, "new@example.com", at(time.Minute))

	for _, c := range []struct {
		name, token string
		now         time.Time
	}{
		{"unknown", "nope", t0()},
		{"replaced by a newer link", "v-old", t0()},
		{"expired at exactly now", "expired", at(time.Minute)},
	} {
		_, err := s.ConfirmEmail(ctx(t), hash(c.token), c.now, nil)
		wantErr(t, "ConfirmEmail("+c.name+")", err, auth.ErrNotFound)
	}

	wins := race(t, 8, func(int) (bool, error) {
		_, err := s.ConfirmEmail(ctx(t), hash("v1"), at(time.Second), nil)
		if errors.Is(err, auth.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if wins != 1 {
		t.Fatalf("8 concurrent ConfirmEmail(same link): %d won, want 1", wins)
	}
	if u := userNow(t, s, owner.ID); !u.EmailVerified || u.Email != "owner@example.com" {
		t.Fatalf("after verifying: %+v", u)
	}
	if u := userNow(t, s, squatter.ID); u.Email != "" || u.EmailVerified {
		t.Fatalf("the squatter's copy was not dropped: %+v", u)
	}
	_, err = s.ConfirmEmail(ctx(t), hash("sq"), at(time.Second), nil)
	wantErr(t, "ConfirmEmail(the squatter's link after the owner verified)", err, auth.ErrNotFound)
	if u, err := s.UserByLogin(ctx(t), "Owner@Example.com"); err != nil || u.ID != owner.ID {
		t.Fatalf("UserByLogin(verified email) = %+v, %v", u, err)
	}

	// A verified address is taken; sign-up with it conflicts.
	err = s.CreateUser(ctx(t), &auth.User{Username: "late", Email: "owner@EXAMPLE.com", PasswordHash: "h", CreatedAt: t0()})
	var ce *auth.ConflictError
	if !errors.As(err, &ce) || ce.Field != "email" {
		t.Fatalf("CreateUser(verified email) = %v, want ConflictError{email}", err)
	}

	// The squatter's drop is reported by the verification that did it.
	third := mustUser(t, s, "third")
	fourth := &auth.User{Username: "fourth", Email: third.Email, PasswordHash: "h", CreatedAt: t0()}
	noErr(t, "CreateUser(fourth)", s.CreateUser(ctx(t), fourth))
	emailLink(t, s, "v3", third.ID, auth.EmailLinkVerify, third.Email, at(time.Hour))
	res, err := s.ConfirmEmail(ctx(t), hash("v3"), t0(), nil)
	noErr(t, "ConfirmEmail(v3)", err)
	if res.Link.UserID != third.ID || res.Link.Purpose != auth.EmailLinkVerify || len(res.Dropped) != 1 || res.Dropped[0] != fourth.ID || res.Undo {
		t.Fatalf("ConfirmEmail(v3) = %+v", res)
	}

	// A change: the new address replaces the verified one when followed, the reset
	// links and the other links die, and an undo link for the old address is stored.
	emailLink(t, s, "c1", owner.ID, auth.EmailLinkChange, "moved@example.com", at(time.Hour))
	if l, err := s.PendingEmailChange(ctx(t), owner.ID, t0()); err != nil || l.Email != "moved@example.com" {
		t.Fatalf("PendingEmailChange = %+v, %v", l, err)
	}
	_, err = s.PendingEmailChange(ctx(t), third.ID, t0())
	wantErr(t, "PendingEmailChange(none)", err, auth.ErrNotFound)
	noErr(t, "CreatePasswordReset", s.CreatePasswordReset(ctx(t), &auth.PasswordReset{TokenHash: hash("reset"), UserID: owner.ID,
		CreatedAt: t0(), ExpiresAt: at(time.Hour)}))
	emailLink(t, s, "v-again", owner.ID, auth.EmailLinkVerify, owner.Email, at(time.Hour))
	mustSession(t, s, owner.ID, "owner-session", t0())
	undo := &auth.EmailLink{TokenHash: hash("undo"), CreatedAt: t0(), ExpiresAt: at(7 * 24 * time.Hour)}
	res, err = s.ConfirmEmail(ctx(t), hash("c1"), at(time.Second), undo)
	noErr(t, "ConfirmEmail(change)", err)
	if !res.Undo || res.Previous != "owner@example.com" || undo.Email != "owner@example.com" || undo.UserID != owner.ID || undo.Purpose != auth.EmailLinkUndo {
		t.Fatalf("ConfirmEmail(change) = %+v, undo %+v", res, undo)
	}
	if u := userNow(t, s, owner.ID); u.Email != "moved@example.com" || !u.EmailVerified {
		t.Fatalf("after the change: %+v", u)
	}
	_, err = s.ResetPassword(ctx(t), hash("reset"), "x", at(time.Second), false)
	wantErr(t, "ResetPassword(link issued before the email changed)", err, auth.ErrNotFound)
	_, err = s.ConfirmEmail(ctx(t), hash("v-again"), at(time.Second), nil)
	wantErr(t, "ConfirmEmail(verify link of the old address)", err, auth.ErrNotFound)
	_, err = s.PendingEmailChange(ctx(t), owner.ID, at(time.Second))
	wantErr(t, "PendingEmailChange(after the change)", err, auth.ErrNotFound)
	if _, err := s.SessionByTokenHash(ctx(t), hash("owner-session")); err != nil {
		t.Fatalf("a change ended the session: %v", err)
	}
	// The old address is free again until the undo puts it back.
	if _, err := s.UserByEmail(ctx(t), "owner@example.com"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("UserByEmail(old address) = %v, want ErrNotFound", err)
	}

	res, err = s.ConfirmEmail(ctx(t), hash("undo"), at(time.Hour), nil)
	noErr(t, "ConfirmEmail(undo)", err)
	if res.Link.Purpose != auth.EmailLinkUndo || res.Previous != "moved@example.com" {
		t.Fatalf("ConfirmEmail(undo) = %+v", res)
	}
	if u := userNow(t, s, owner.ID); u.Email != "owner@example.com" || !u.EmailVerified {
		t.Fatalf("after the undo: %+v", u)
	}
	if _, err := s.SessionByTokenHash(ctx(t), hash("owner-session")); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("the undo left a session: %v", err)
	}
	_, err = s.ConfirmEmail(ctx(t), hash("undo"), at(time.Hour), nil)
	wantErr(t, "ConfirmEmail(undo again)", err, auth.ErrNotFound)

	// A change to an address another account verified in the meantime fails, and
	// takes nothing.
	emailLink(t, s, "c-taken", third.ID, auth.EmailLinkChange, "owner@example.com", at(time.Hour))
	_, err = s.ConfirmEmail(ctx(t), hash("c-taken"), t0(), nil)
	wantErr(t, "ConfirmEmail(change to a verified address)", err, auth.ErrNotFound)
	if u := userNow(t, s, third.ID); u.Email != "third@example.com" || !u.EmailVerified {
		t.Fatalf("a refused change altered the account: %+v", u)
	}
}

// testResetLinks: a reset link dies when a newer one is issued and when the password
// changes; a reset may revoke every token and SSH key of the account, and only its.
func testResetLinks(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	reset := func(token string, user auth.UserID) {
		t.Helper()
		noErr(t, "CreatePasswordReset", s.CreatePasswordReset(ctx(t), &auth.PasswordReset{
			TokenHash: hash(token), UserID: user, CreatedAt: t0(), ExpiresAt: at(time.Hour)}))
	}
	credentials := func(user auth.UserID) (int, int) {
		t.Helper()
		toks, err := s.ListTokens(ctx(t), user)
		noErr(t, "ListTokens", err)
		keys, err := s.ListSSHKeys(ctx(t), user)
		noErr(t, "ListSSHKeys", err)
		return len(toks), len(keys)
	}
	for _, u := range []*auth.User{alice, bob} {
		for _, name := range []string{"ci", "laptop"} {
			noErr(t, "CreateToken", s.CreateToken(ctx(t), &auth.AccessToken{UserID: u.ID, Name: name,
				TokenHash: hash(u.Username + name), CreatedAt: t0()}))
			noErr(t, "CreateSSHKey", s.CreateSSHKey(ctx(t), &auth.SSHKey{UserID: u.ID, Title: name,
				PublicKey: "ssh-ed25519 " + u.Username + name, Fingerprint: "SHA256:" + u.Username + name, CreatedAt: t0()}))
		}
	}

	reset("first", alice.ID)
	if r, err := s.PasswordReset(ctx(t), hash("first"), t0()); err != nil || r.UserID != alice.ID {
		t.Fatalf("PasswordReset(live) = %+v, %v", r, err)
	}
	_, err := s.PasswordReset(ctx(t), hash("first"), at(time.Hour))
	wantErr(t, "PasswordReset(expired at exactly now)", err, auth.ErrNotFound)
	reset("second", alice.ID)
	_, err = s.PasswordReset(ctx(t), hash("first"), t0())
	wantErr(t, "PasswordReset(replaced by a newer link)", err, auth.ErrNotFound)
	_, err = s.ResetPassword(ctx(t), hash("first"), "x", t0(), true)
	wantErr(t, "ResetPassword(replaced by a newer link)", err, auth.ErrNotFound)

	noErr(t, "ChangePassword", s.ChangePassword(ctx(t), alice.ID, "changed", 0))
	_, err = s.ResetPassword(ctx(t), hash("second"), "x", t0(), true)
	wantErr(t, "ResetPassword(after a password change)", err, auth.ErrNotFound)

	reset("keep", bob.ID)
	if _, err := s.ResetPassword(ctx(t), hash("keep"), "bob-1", t0(), false); err != nil {
		t.Fatalf("ResetPassword(keep credentials) = %v", err)
	}
	if toks, keys := credentials(bob.ID); toks != 2 || keys != 2 {
		t.Fatalf("a reset without revoking left %d tokens and %d keys, want 2 and 2", toks, keys)
	}

	reset("third", alice.ID)
	if id, err := s.ResetPassword(ctx(t), hash("third"), "alice-new", t0(), true); err != nil || id != alice.ID {
		t.Fatalf("ResetPassword(revoke) = %d, %v", id, err)
	}
	if toks, keys := credentials(alice.ID); toks != 0 || keys != 0 {
		t.Fatalf("a revoking reset left %d tokens and %d keys", toks, keys)
	}
	if _, err := s.TokenByHash(ctx(t), hash("aliceci")); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("TokenByHash(revoked) = %v", err)
	}
	if toks, keys := credentials(bob.ID); toks != 2 || keys != 2 {
		t.Fatalf("alice's reset revoked bob's credentials: %d tokens, %d keys left", toks, keys)
	}
}

// testDeleteUser: everything that names the user goes in one transaction, a tombstone
// stays in the log, and the username is reserved until the given time.
func testDeleteUser(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "Alice")
	bob := mustUser(t, s, "bob")
	mustSession(t, s, alice.ID, "alice-session", t0())
	bobs := mustSession(t, s, bob.ID, "bob-session", t0())
	noErr(t, "CreateToken", s.CreateToken(ctx(t), &auth.AccessToken{UserID: alice.ID, Name: "ci", TokenHash: hash("alice-pat"), CreatedAt: t0()}))
	noErr(t, "CreateSSHKey", s.CreateSSHKey(ctx(t), &auth.SSHKey{UserID: alice.ID, Title: "k", PublicKey: "ssh-ed25519 A", Fingerprint: "SHA256:a", CreatedAt: t0()}))
	emailLink(t, s, "alice-verify", alice.ID, auth.EmailLinkVerify, alice.Email, at(time.Hour))
	noErr(t, "AddEvent", s.AddEvent(ctx(t), &auth.Event{UserID: alice.ID, Time: t0(), Event: "login", Outcome: "success"}))

	tomb := &auth.Event{Time: at(time.Second), Event: "account_deleted", Outcome: "success", Detail: "account Alice deleted"}
	noErr(t, "DeleteUser", s.DeleteUser(ctx(t), alice.ID, at(30*24*time.Hour), tomb))
	if tomb.ID == 0 {
		t.Fatal("DeleteUser did not set the tombstone's ID")
	}
	_, err := s.UserByID(ctx(t), alice.ID)
	wantErr(t, "UserByID(deleted)", err, auth.ErrNotFound)
	_, err = s.SessionByTokenHash(ctx(t), hash("alice-session"))
	wantErr(t, "SessionByTokenHash(deleted user's)", err, auth.ErrNotFound)
	_, err = s.TokenByHash(ctx(t), hash("alice-pat"))
	wantErr(t, "TokenByHash(deleted user's)", err, auth.ErrNotFound)
	_, err = s.ConfirmEmail(ctx(t), hash("alice-verify"), t0(), nil)
	wantErr(t, "ConfirmEmail(deleted user's link)", err, auth.ErrNotFound)
	evs, err := s.Events(ctx(t), 0, 100)
	noErr(t, "Events", err)
	if len(evs) != 1 || evs[0].ID != tomb.ID || evs[0].UserID != 0 || evs[0].Detail != "account Alice deleted" {
		t.Fatalf("security log after deletion = %+v, want only the tombstone", evs)
	}
	wantErr(t, "DeleteUser(again)", s.DeleteUser(ctx(t), alice.ID, at(time.Hour), &auth.Event{Time: t0(), Event: "x", Outcome: "x"}), auth.ErrNotFound)

	for _, c := range []struct {
		name    string
		created time.Time
		ok      bool
	}{
		{"during the reservation", at(30*24*time.Hour - time.Microsecond), false},
		{"when it ends", at(30 * 24 * time.Hour), true},
	} {
		err := s.CreateUser(ctx(t), &auth.User{Username: "aLiCe", Email: "new-alice@example.com", PasswordHash: "h", CreatedAt: c.created})
		var ce *auth.ConflictError
		if c.ok {
			noErr(t, "CreateUser(reserved username, "+c.name+")", err)
		} else if !errors.As(err, &ce) || ce.Field != "username" {
			t.Fatalf("CreateUser(reserved username, %s) = %v, want ConflictError{username}", c.name, err)
		}
	}
	if _, err := s.SessionByTokenHash(ctx(t), hash("bob-session")); err != nil {
		t.Fatalf("alice's deletion ended bob's session %d: %v", bobs.ID, err)
	}
}

// testSetDisabled: disabling ends every session and pending sign-in and moves the
// credentials epoch on, in one transaction; enabling ends nothing.
func testSetDisabled(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	mustSession(t, s, alice.ID, "a1", t0())
	mustSession(t, s, bob.ID, "b1", t0())

	noErr(t, "SetDisabled(true)", s.SetDisabled(ctx(t), alice.ID, true))
	u := userNow(t, s, alice.ID)
	if !u.Disabled || u.CredEpoch == alice.CredEpoch {
		t.Fatalf("after SetDisabled(true): %+v", u)
	}
	if l, err := s.UserByLogin(ctx(t), "alice"); err != nil || !l.Disabled {
		t.Fatalf("UserByLogin(disabled) = %+v, %v", l, err)
	}
	if ids := sessionIDs(t, s, alice.ID); len(ids) != 0 {
		t.Fatalf("sessions after SetDisabled(true) = %v", ids)
	}
	if ids := sessionIDs(t, s, bob.ID); len(ids) != 1 {
		t.Fatalf("alice's disabling ended bob's sessions: %v", ids)
	}
	mustSession(t, s, alice.ID, "a2", t0()) // opened under the new epoch, say by a test
	noErr(t, "SetDisabled(false)", s.SetDisabled(ctx(t), alice.ID, false))
	if u := userNow(t, s, alice.ID); u.Disabled {
		t.Fatalf("after SetDisabled(false): %+v", u)
	}
	if ids := sessionIDs(t, s, alice.ID); len(ids) != 1 {
		t.Fatalf("enabling ended sessions: %v", ids)
	}
	wantErr(t, "SetDisabled(unknown)", s.SetDisabled(ctx(t), bob.ID+1000, true), auth.ErrNotFound)
}

// testRecoveryEvidence: approval re-checks, in its own statement, that the token or
// SSH key that verified the request still holds; CancelRecoveryRequests ends the
// requests a revoked piece of evidence verified, or every open one.
func testRecoveryEvidence(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	lim := auth.RecoveryLimit{Since: at(-time.Hour), PerSubject: 100, PerIP: 100}
	tok := &auth.AccessToken{UserID: alice.ID, Name: "ci", TokenHash: hash("pat"), CreatedAt: t0(), ExpiresAt: at(2 * time.Hour)}
	noErr(t, "CreateToken", s.CreateToken(ctx(t), tok))
	other := &auth.AccessToken{UserID: alice.ID, Name: "other", TokenHash: hash("pat2"), CreatedAt: t0()}
	noErr(t, "CreateToken", s.CreateToken(ctx(t), other))
	key := &auth.SSHKey{UserID: alice.ID, Title: "k", PublicKey: "ssh-ed25519 A", Fingerprint: "SHA256:a", CreatedAt: t0()}
	noErr(t, "CreateSSHKey", s.CreateSSHKey(ctx(t), key))

	verified := func(ev auth.RecoveryEvidence) *auth.RecoveryRequest {
		t.Helper()
		r := newRequest(t, alice.ID, "user:alice", "192.0.2.1", t0())
		if !mustOpen(t, s, r, lim) {
			t.Fatal("OpenRecoveryRequest refused")
		}
		ev.VerifiedAt = at(time.Minute)
		if ok, err := s.VerifyRecoveryRequest(ctx(t), r.ID, ev, at(time.Minute)); err != nil || !ok {
			t.Fatalf("VerifyRecoveryRequest = %v, %v", ok, err)
		}
		return r
	}
	approve := func(r *auth.RecoveryRequest, now time.Time) error {
		_, err := s.ApproveRecoveryRequest(ctx(t), r.ID, "why", now,
			&auth.PasswordReset{TokenHash: hash("reset-" + string(r.ID)), CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		return err
	}
	status := func(r *auth.RecoveryRequest) string {
		t.Helper()
		got, err := s.RecoveryRequest(ctx(t), r.ID)
		noErr(t, "RecoveryRequest", err)
		return got.Status
	}

	// A revoked token: approval refuses, changing nothing.
	byToken := verified(auth.RecoveryEvidence{Method: "personal_access_token", TokenName: "ci", TokenID: tok.ID})
	noErr(t, "DeleteToken", s.DeleteToken(ctx(t), alice.ID, tok.ID))
	wantErr(t, "ApproveRecoveryRequest(token revoked)", approve(byToken, at(time.Hour)), auth.ErrNotFound)
	if st := status(byToken); st != auth.RecoveryVerified {
		t.Fatalf("a refused approval left the request %s", st)
	}

	// An expired token: refused from its expiry on.
	byOther := verified(auth.RecoveryEvidence{Method: "personal_access_token", TokenName: "other", TokenID: other.ID})
	noErr(t, "CreateToken", s.CreateToken(ctx(t), &auth.AccessToken{UserID: alice.ID, Name: "short", TokenHash: hash("pat3"), CreatedAt: t0(), ExpiresAt: at(time.Hour)}))
	short, err := s.TokenByHash(ctx(t), hash("pat3"))
	noErr(t, "TokenByHash", err)
	byShort := verified(auth.RecoveryEvidence{Method: "personal_access_token", TokenName: "short", TokenID: short.ID})
	wantErr(t, "ApproveRecoveryRequest(token expired at exactly now)", approve(byShort, at(time.Hour)), auth.ErrNotFound)

	// CancelRecoveryRequests by evidence ends only the requests that evidence verified.
	byKey := verified(auth.RecoveryEvidence{Method: "ssh_key", KeyFingerprint: "SHA256:a", KeyID: key.ID})
	ids, err := s.CancelRecoveryRequests(ctx(t), alice.ID, auth.RecoveryMatch{TokenID: other.ID}, at(2*time.Minute), "revoked")
	noErr(t, "CancelRecoveryRequests(token)", err)
	if len(ids) != 1 || ids[0] != byOther.ID || status(byOther) != auth.RecoveryCancelled || status(byKey) != auth.RecoveryVerified {
		t.Fatalf("CancelRecoveryRequests(token) = %v; statuses %s, %s", ids, status(byOther), status(byKey))
	}

	// A key still registered: approved.
	noErr(t, "ApproveRecoveryRequest(key still there)", approve(byKey, at(time.Hour)))

	// Every open request of the account.
	pending := newRequest(t, alice.ID, "user:alice", "192.0.2.1", at(2*time.Hour))
	mustOpen(t, s, pending, auth.RecoveryLimit{Since: at(time.Hour), PerSubject: 100, PerIP: 100})
	ids, err = s.CancelRecoveryRequests(ctx(t), alice.ID, auth.RecoveryMatch{Open: true}, at(3*time.Hour), "signed in with a second factor")
	noErr(t, "CancelRecoveryRequests(open)", err)
	if len(ids) != 1 || ids[0] != pending.ID {
		t.Fatalf("CancelRecoveryRequests(open) = %v, want only %s (the others are decided or closed already)", ids, pending.ID)
	}
	got, err := s.RecoveryRequest(ctx(t), pending.ID)
	noErr(t, "RecoveryRequest", err)
	if got.Status != auth.RecoveryCancelled || got.Reason != "signed in with a second factor" || !got.DecidedAt.Equal(at(3*time.Hour)) {
		t.Fatalf("cancelled request = %+v", got)
	}
}

// testEmailVerifyRace: accounts verifying one address at once: exactly one keeps it,
// every other copy is dropped, and no confirmation fails with anything but
// ErrNotFound.
func testEmailVerifyRace(t *testing.T, s auth.Store) {
	const n = 6
	users := make([]*auth.User, n)
	for i := range users {
		users[i] = &auth.User{Username: "racer" + string(rune('a'+i)), Email: "Shared@example.com", PasswordHash: "h", CreatedAt: t0()}
		noErr(t, "CreateUser", s.CreateUser(ctx(t), users[i]))
		emailLink(t, s, "race-"+users[i].Username, users[i].ID, auth.EmailLinkVerify, users[i].Email, at(time.Hour))
	}
	wins := race(t, n, func(i int) (bool, error) {
		_, err := s.ConfirmEmail(ctx(t), hash("race-"+users[i].Username), t0(), nil)
		if errors.Is(err, auth.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if wins != 1 {
		t.Fatalf("%d accounts verifying one address at once: %d won, want 1", n, wins)
	}
	kept := 0
	for _, u := range users {
		switch got := userNow(t, s, u.ID); {
		case got.EmailVerified && got.Email == "Shared@example.com":
			kept++
		case got.Email != "" || got.EmailVerified:
			t.Errorf("a losing account kept its copy: %+v", got)
		}
	}
	if kept != 1 {
		t.Fatalf("%d accounts hold the verified address, want 1", kept)
	}
}

// testPurgeAccountRows: Purge deletes used and expired address links and ended
// username reservations, and nothing still in use.
func testPurgeAccountRows(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	gone := mustUser(t, s, "gone")
	old := mustUser(t, s, "old")
	emailLink(t, s, "used", alice.ID, auth.EmailLinkVerify, alice.Email, at(time.Hour))
	_, err := s.ConfirmEmail(ctx(t), hash("used"), t0(), nil)
	noErr(t, "ConfirmEmail", err)
	emailLink(t, s, "expired", alice.ID, auth.EmailLinkChange, "a2@example.com", at(time.Minute))
	emailLink(t, s, "live", alice.ID, auth.EmailLinkUndo, "a3@example.com", at(48*time.Hour))
	noErr(t, "DeleteUser", s.DeleteUser(ctx(t), gone.ID, at(30*24*time.Hour), &auth.Event{Time: t0(), Event: "account_deleted", Outcome: "success"}))
	noErr(t, "DeleteUser", s.DeleteUser(ctx(t), old.ID, at(time.Minute), &auth.Event{Time: t0(), Event: "account_deleted", Outcome: "success"}))

	n, err := s.Purge(ctx(t), auth.PurgeBefore{Now: at(time.Hour), IdleBefore: at(-24 * time.Hour), StaleAttemptsBefore: at(-time.Hour)})
	noErr(t, "Purge", err)
	if n != 3 {
		t.Fatalf("Purge = %d rows, want 3 (a used link, an expired link, an ended reservation)", n)
	}
	if _, err := s.ConfirmEmail(ctx(t), hash("live"), at(time.Hour), nil); err != nil {
		t.Fatalf("Purge took a live link: %v", err)
	}
	err = s.CreateUser(ctx(t), &auth.User{Username: "gone", Email: "g@example.com", PasswordHash: "h", CreatedAt: at(time.Hour)})
	var ce *auth.ConflictError
	if !errors.As(err, &ce) || ce.Field != "username" {
		t.Fatalf("Purge took a live reservation: CreateUser = %v", err)
	}
}
