package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// webauthnAreas are the conformance areas of security keys, passkeys, their
// ceremonies and the MFA policy's deadlines (SPEC §8), run by Run beside the others.
var webauthnAreas = []struct {
	name string
	fn   func(t *testing.T, s auth.Store)
}{
	{"WebAuthnHandle", testWebAuthnHandle},
	{"WebAuthnCeremony", testWebAuthnCeremony},
	{"WebAuthnKeys", testWebAuthnKeys},
	{"WebAuthnMFAOnOff", testWebAuthnMFAOnOff},
	{"WebAuthnCounter", testWebAuthnCounter},
	{"MFADeadline", testMFADeadline},
}

func newKey(user auth.UserID, credID string, created time.Time) *auth.WebAuthnKey {
	return &auth.WebAuthnKey{UserID: user, CredentialID: []byte(credID), Name: "key " + credID,
		Record: []byte(`{"id":"` + credID + `"}`), SignCount: 0, Passkey: true, BackedUp: false, CreatedAt: created}
}

func testWebAuthnHandle(t *testing.T, s auth.Store) {
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	h, err := s.WebAuthnHandle(ctx(t), alice.ID, []byte("alice-handle"))
	noErr(t, "WebAuthnHandle", err)
	if !bytes.Equal(h, []byte("alice-handle")) {
		t.Fatalf("WebAuthnHandle(first) = %q, want the fresh one", h)
	}
	// The handle is fixed per account: a later fresh value is ignored.
	h, err = s.WebAuthnHandle(ctx(t), alice.ID, []byte("other"))
	noErr(t, "WebAuthnHandle(again)", err)
	if !bytes.Equal(h, []byte("alice-handle")) {
		t.Fatalf("WebAuthnHandle(again) = %q, want alice-handle", h)
	}
	// Racing first calls agree on one handle.
	handles := make([][]byte, 8)
	race(t, 8, func(i int) (bool, error) {
		h, err := s.WebAuthnHandle(ctx(t), bob.ID, []byte{byte(i)})
		handles[i] = h
		return true, err
	})
	for _, h := range handles[1:] {
		if !bytes.Equal(h, handles[0]) {
			t.Fatalf("racing WebAuthnHandle gave %v and %v", handles[0], h)
		}
	}
	id, err := s.UserByWebAuthnHandle(ctx(t), []byte("alice-handle"))
	if err != nil || id != alice.ID {
		t.Fatalf("UserByWebAuthnHandle = %v, %v; want %d", id, err, alice.ID)
	}
	_, err = s.UserByWebAuthnHandle(ctx(t), []byte("nobody"))
	wantErr(t, "UserByWebAuthnHandle(unknown)", err, auth.ErrNotFound)
}

func testWebAuthnCeremony(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	c := &auth.Ceremony{IDHash: hash("c1"), Kind: auth.CeremonyRegister, UserID: alice.ID, Binding: []byte("session:1"),
		Data: []byte(`{"session":{}}`), CreatedAt: t0(), ExpiresAt: at(5 * time.Minute)}
	noErr(t, "CreateCeremony", s.CreateCeremony(ctx(t), c))
	got, err := s.Ceremony(ctx(t), hash("c1"))
	noErr(t, "Ceremony", err)
	if got.Kind != c.Kind || got.UserID != alice.ID || !bytes.Equal(got.Binding, c.Binding) ||
		!bytes.Equal(got.Data, c.Data) || !got.CreatedAt.Equal(t0()) || !got.ExpiresAt.Equal(c.ExpiresAt) || !got.UsedAt.IsZero() {
		t.Fatalf("Ceremony = %+v, want %+v", got, c)
	}
	_, err = s.Ceremony(ctx(t), hash("none"))
	wantErr(t, "Ceremony(unknown)", err, auth.ErrNotFound)

	// A passkey ceremony names no account.
	noErr(t, "CreateCeremony(passkey)", s.CreateCeremony(ctx(t), &auth.Ceremony{IDHash: hash("p"), Kind: auth.CeremonyPasskey,
		Binding: []byte{}, Data: []byte(`{}`), CreatedAt: t0(), ExpiresAt: at(5 * time.Minute)}))
	if got, err := s.Ceremony(ctx(t), hash("p")); err != nil || got.UserID != 0 {
		t.Fatalf("Ceremony(passkey) = %+v, %v; want user 0", got, err)
	}

	// Used up by exactly one of 16 racing finishes.
	if wins := race(t, 16, func(int) (bool, error) { return s.UseCeremony(ctx(t), hash("c1"), at(time.Minute)) }); wins != 1 {
		t.Fatalf("UseCeremony x16 = %d wins, want 1", wins)
	}
	got, err = s.Ceremony(ctx(t), hash("c1"))
	noErr(t, "Ceremony(used)", err)
	if !got.UsedAt.Equal(at(time.Minute)) {
		t.Fatalf("Ceremony used_at = %v, want %v", got.UsedAt, at(time.Minute))
	}
	// Expired: never used, even once.
	noErr(t, "CreateCeremony(c2)", s.CreateCeremony(ctx(t), &auth.Ceremony{IDHash: hash("c2"), Kind: auth.CeremonySecond,
		UserID: alice.ID, Binding: []byte("p"), Data: []byte(`{}`), CreatedAt: t0(), ExpiresAt: at(5 * time.Minute)}))
	if won, err := s.UseCeremony(ctx(t), hash("c2"), at(5*time.Minute)); err != nil || won {
		t.Fatalf("UseCeremony(at expiry) = %v, %v; want false", won, err)
	}
	if won, err := s.UseCeremony(ctx(t), hash("none"), t0()); err != nil || won {
		t.Fatalf("UseCeremony(unknown) = %v, %v; want false", won, err)
	}
	// Beginning again with the same id (a pending login's one ceremony) starts afresh.
	noErr(t, "CreateCeremony(c1 again)", s.CreateCeremony(ctx(t), c))
	if won, err := s.UseCeremony(ctx(t), hash("c1"), at(time.Minute)); err != nil || !won {
		t.Fatalf("UseCeremony(renewed) = %v, %v; want true", won, err)
	}
	// Purge drops ceremonies past their expiry, and only those.
	noErr(t, "CreateCeremony(late)", s.CreateCeremony(ctx(t), &auth.Ceremony{IDHash: hash("late"), Kind: auth.CeremonyPasskey,
		Binding: []byte{}, Data: []byte(`{}`), CreatedAt: at(time.Hour), ExpiresAt: at(time.Hour + 5*time.Minute)}))
	if _, err := s.Purge(ctx(t), auth.PurgeBefore{Now: at(time.Hour), IdleBefore: t0().Add(-time.Hour),
		StaleAttemptsBefore: t0().Add(-time.Hour)}); err != nil {
		t.Fatalf("Purge = %v", err)
	}
	for name, want := range map[string]error{"c1": auth.ErrNotFound, "p": auth.ErrNotFound, "late": nil} {
		if _, err := s.Ceremony(ctx(t), hash(name)); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("after Purge, Ceremony(%s) = %v, want %v", name, err, want)
		}
	}
}

func testWebAuthnKeys(t *testing.T, s auth.Store) {
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	k1 := newKey(alice.ID, "cred-1", t0())
	on, err := s.AddWebAuthnKey(ctx(t), k1, codes("a", 16), 0, 3)
	noErr(t, "AddWebAuthnKey", err)
	if !on || k1.ID == 0 {
		t.Fatalf("AddWebAuthnKey(first) = %v, id %d; want MFA turned on and an id", on, k1.ID)
	}
	k2 := newKey(alice.ID, "cred-2", at(time.Second))
	k2.Passkey, k2.BackedUp, k2.SignCount = false, true, 7
	if on, err := s.AddWebAuthnKey(ctx(t), k2, codes("b", 16), 0, 3); err != nil || on {
		t.Fatalf("AddWebAuthnKey(second) = %v, %v; want MFA already on", on, err)
	}
	// A credential ID is unique across every account.
	_, err = s.AddWebAuthnKey(ctx(t), newKey(bob.ID, "cred-1", t0()), codes("c", 16), 0, 3)
	var ce *auth.ConflictError
	if !errors.As(err, &ce) || ce.Field != "credential_id" {
		t.Fatalf("AddWebAuthnKey(duplicate on another account) = %v, want ConflictError{credential_id}", err)
	}
	if ks, _ := s.WebAuthnKeys(ctx(t), bob.ID); len(ks) != 0 {
		t.Fatalf("a refused duplicate left %d keys on bob", len(ks))
	}
	// The per-account limit.
	noErr(t, "AddWebAuthnKey(third)", func() error {
		_, err := s.AddWebAuthnKey(ctx(t), newKey(alice.ID, "cred-3", at(2*time.Second)), nil, 0, 3)
		return err
	}())
	_, err = s.AddWebAuthnKey(ctx(t), newKey(alice.ID, "cred-4", at(3*time.Second)), nil, 0, 3)
	wantErr(t, "AddWebAuthnKey(over the limit)", err, auth.ErrLimitReached)

	ks, err := s.WebAuthnKeys(ctx(t), alice.ID)
	noErr(t, "WebAuthnKeys", err)
	if len(ks) != 3 || ks[0].ID != k1.ID || ks[1].ID != k2.ID {
		t.Fatalf("WebAuthnKeys = %+v, want cred-1, cred-2, cred-3 oldest first", ks)
	}
	g := ks[1]
	if !bytes.Equal(g.CredentialID, []byte("cred-2")) || g.Name != "key cred-2" || !bytes.Equal(g.Record, k2.Record) ||
		g.SignCount != 7 || g.Passkey || !g.BackedUp || !g.CreatedAt.Equal(at(time.Second)) || !g.LastUsedAt.IsZero() || g.UserID != alice.ID {
		t.Fatalf("WebAuthnKeys[1] = %+v, want %+v", g, k2)
	}
	byID, err := s.WebAuthnKeyByCredentialID(ctx(t), []byte("cred-2"))
	if err != nil || byID.ID != k2.ID {
		t.Fatalf("WebAuthnKeyByCredentialID = %+v, %v", byID, err)
	}
	_, err = s.WebAuthnKeyByCredentialID(ctx(t), []byte("nope"))
	wantErr(t, "WebAuthnKeyByCredentialID(unknown)", err, auth.ErrNotFound)

	// Rename: only the owner's key.
	r, err := s.RenameWebAuthnKey(ctx(t), alice.ID, k2.ID, "YubiKey")
	if err != nil || r.Name != "YubiKey" || r.ID != k2.ID {
		t.Fatalf("RenameWebAuthnKey = %+v, %v", r, err)
	}
	_, err = s.RenameWebAuthnKey(ctx(t), bob.ID, k2.ID, "mine")
	wantErr(t, "RenameWebAuthnKey(another's)", err, auth.ErrNotFound)
	// Delete: only the owner's key.
	_, err = s.DeleteWebAuthnKey(ctx(t), bob.ID, k2.ID, 0)
	wantErr(t, "DeleteWebAuthnKey(another's)", err, auth.ErrNotFound)
	if off, err := s.DeleteWebAuthnKey(ctx(t), alice.ID, k2.ID, 0); err != nil || off {
		t.Fatalf("DeleteWebAuthnKey(not last) = %v, %v; want MFA still on", off, err)
	}
	_, err = s.WebAuthnKeyByCredentialID(ctx(t), []byte("cred-2"))
	wantErr(t, "WebAuthnKeyByCredentialID(removed)", err, auth.ErrNotFound)
}

func testWebAuthnMFAOnOff(t *testing.T, s auth.Store) {
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	keep := mustSession(t, s, alice.ID, "keep", t0())
	mustSession(t, s, alice.ID, "other", t0())
	mustSession(t, s, bob.ID, "bob", t0())
	k := newKey(alice.ID, "a1", t0())
	on, err := s.AddWebAuthnKey(ctx(t), k, codes("a", 16), keep.ID, 20)
	noErr(t, "AddWebAuthnKey", err)
	if !on {
		t.Fatal("the first key did not turn MFA on")
	}
	// MFA on: codes issued, other sessions ended, the kept one carried to the new epoch.
	if ids := sessionIDs(t, s, alice.ID); !equalIDs(ids, []auth.SessionID{keep.ID}) {
		t.Fatalf("sessions after the first key = %v, want only %d", ids, keep.ID)
	}
	if _, _, _, err := s.SessionWithUser(ctx(t), hash("keep")); err != nil {
		t.Fatalf("kept session: %v", err)
	}
	st, err := s.MFAState(ctx(t), alice.ID)
	noErr(t, "MFAState", err)
	if want := (auth.MFAState{Enabled: true, WebAuthnKeys: 1, Codes: auth.RecoveryCodeCounts{Total: 16, Remaining: 16}}); st != want {
		t.Fatalf("MFAState = %+v, want %+v", st, want)
	}
	_, _, m, err := s.SessionWithUser(ctx(t), hash("keep"))
	noErr(t, "SessionWithUser", err)
	if m != st {
		t.Fatalf("SessionWithUser MFA = %+v, MFAState = %+v", m, st)
	}
	if n, _ := s.DeleteSessions(ctx(t), bob.ID, -1); n != 1 {
		t.Fatalf("bob's session was touched by alice's key (%d left)", n)
	}
	// Codes can be regenerated with only a key.
	noErr(t, "ReplaceRecoveryCodes(key only)", s.ReplaceRecoveryCodes(ctx(t), alice.ID, codes("r", 16), at(time.Second)))
	// A TOTP app joins the key: codes and sessions stay.
	mustSession(t, s, alice.ID, "third", at(time.Second))
	enable(t, s, alice.ID, "t", keep.ID)
	if ids := sessionIDs(t, s, alice.ID); len(ids) != 2 {
		t.Fatalf("adding TOTP beside a key ended sessions: %v", ids)
	}
	if won, err := s.UseRecoveryCode(ctx(t), alice.ID, codes("r", 16)[0], at(time.Second)); err != nil || !won {
		t.Fatalf("a code of the set issued with the key was replaced by TOTP's: %v, %v", won, err)
	}
	// Removing the key leaves TOTP: MFA stays on.
	if off, err := s.DeleteWebAuthnKey(ctx(t), alice.ID, k.ID, keep.ID); err != nil || off {
		t.Fatalf("DeleteWebAuthnKey(TOTP left) = %v, %v", off, err)
	}
	// DisableMFA removes keys too.
	k2 := newKey(alice.ID, "a2", at(time.Second))
	if _, err := s.AddWebAuthnKey(ctx(t), k2, codes("x", 16), keep.ID, 20); err != nil {
		t.Fatal(err)
	}
	if existed, err := s.DisableMFA(ctx(t), alice.ID, keep.ID); err != nil || !existed {
		t.Fatalf("DisableMFA = %v, %v", existed, err)
	}
	if st, _ := s.MFAState(ctx(t), alice.ID); st != (auth.MFAState{}) {
		t.Fatalf("MFAState after DisableMFA = %+v, want zero", st)
	}
	// Only a key, then removed: MFA off, codes gone, other sessions ended.
	k3 := newKey(alice.ID, "a3", at(2*time.Second))
	if on, err := s.AddWebAuthnKey(ctx(t), k3, codes("y", 16), keep.ID, 20); err != nil || !on {
		t.Fatalf("AddWebAuthnKey(after DisableMFA) = %v, %v", on, err)
	}
	mustSession(t, s, alice.ID, "fourth", at(3*time.Second))
	if off, err := s.DeleteWebAuthnKey(ctx(t), alice.ID, k3.ID, keep.ID); err != nil || !off {
		t.Fatalf("DeleteWebAuthnKey(last) = %v, %v; want MFA off", off, err)
	}
	if st, _ := s.MFAState(ctx(t), alice.ID); st != (auth.MFAState{}) {
		t.Fatalf("MFAState after removing the last key = %+v, want zero", st)
	}
	if ids := sessionIDs(t, s, alice.ID); !equalIDs(ids, []auth.SessionID{keep.ID}) {
		t.Fatalf("sessions after removing the last key = %v, want only %d", ids, keep.ID)
	}
	// Two racing removals of the last two keys: MFA turns off exactly once.
	ka, kb := newKey(alice.ID, "a4", at(4*time.Second)), newKey(alice.ID, "a5", at(4*time.Second))
	for _, k := range []*auth.WebAuthnKey{ka, kb} {
		if _, err := s.AddWebAuthnKey(ctx(t), k, codes("z", 16), keep.ID, 20); err != nil {
			t.Fatal(err)
		}
	}
	ids := []auth.WebAuthnKeyID{ka.ID, kb.ID}
	if offs := race(t, 2, func(i int) (bool, error) { return s.DeleteWebAuthnKey(ctx(t), alice.ID, ids[i], keep.ID) }); offs != 1 {
		t.Fatalf("racing removals of the last two keys turned MFA off %d times, want 1", offs)
	}
	if st, _ := s.MFAState(ctx(t), alice.ID); st != (auth.MFAState{}) {
		t.Fatalf("MFAState after racing removals = %+v, want zero", st)
	}
}

func testWebAuthnCounter(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	k := newKey(alice.ID, "c", t0())
	k.SignCount = 5
	if _, err := s.AddWebAuthnKey(ctx(t), k, codes("a", 16), 0, 20); err != nil {
		t.Fatal(err)
	}
	// 16 racing uses checked against count 5: one moves it (and last_used_at).
	if wins := race(t, 16, func(i int) (bool, error) {
		return s.UseWebAuthnKey(ctx(t), k.ID, 5, int64(6+i), at(time.Minute))
	}); wins != 1 {
		t.Fatalf("UseWebAuthnKey x16 = %d wins, want 1", wins)
	}
	got, err := s.WebAuthnKeyByCredentialID(ctx(t), []byte("c"))
	noErr(t, "WebAuthnKeyByCredentialID", err)
	if got.SignCount < 6 || !got.LastUsedAt.Equal(at(time.Minute)) {
		t.Fatalf("after use: count %d, last used %v", got.SignCount, got.LastUsedAt)
	}
	// A stale count (the one checked is no longer stored) changes nothing.
	if won, err := s.UseWebAuthnKey(ctx(t), k.ID, 5, 100, at(2*time.Minute)); err != nil || won {
		t.Fatalf("UseWebAuthnKey(stale) = %v, %v; want false", won, err)
	}
	// Synced passkeys send 0 every time: 0 → 0 is a use.
	z := newKey(alice.ID, "z", t0())
	if _, err := s.AddWebAuthnKey(ctx(t), z, nil, 0, 20); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if won, err := s.UseWebAuthnKey(ctx(t), z.ID, 0, 0, at(time.Duration(i)*time.Minute)); err != nil || !won {
			t.Fatalf("UseWebAuthnKey(0 → 0, #%d) = %v, %v", i, won, err)
		}
	}
}

func testMFADeadline(t *testing.T, s auth.Store) {
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	if st, _ := s.MFAState(ctx(t), alice.ID); !st.Deadline.IsZero() {
		t.Fatalf("a new account has deadline %v", st.Deadline)
	}
	d, err := s.SetMFADeadline(ctx(t), alice.ID, at(336*time.Hour))
	if err != nil || !d.Equal(at(336*time.Hour)) {
		t.Fatalf("SetMFADeadline(first) = %v, %v", d, err)
	}
	// A later deadline never moves it; an earlier one (a shorter grace, or the account
	// became an operator) does, at once.
	if d, err = s.SetMFADeadline(ctx(t), alice.ID, at(400*time.Hour)); err != nil || !d.Equal(at(336*time.Hour)) {
		t.Fatalf("SetMFADeadline(later) = %v, %v; want it kept", d, err)
	}
	if d, err = s.SetMFADeadline(ctx(t), alice.ID, at(time.Hour)); err != nil || !d.Equal(at(time.Hour)) {
		t.Fatalf("SetMFADeadline(earlier) = %v, %v", d, err)
	}
	st, err := s.MFAState(ctx(t), alice.ID)
	noErr(t, "MFAState", err)
	if !st.Deadline.Equal(at(time.Hour)) {
		t.Fatalf("MFAState deadline = %v", st.Deadline)
	}
	mustSession(t, s, alice.ID, "a", t0())
	_, _, m, err := s.SessionWithUser(ctx(t), hash("a"))
	noErr(t, "SessionWithUser", err)
	if !m.Deadline.Equal(at(time.Hour)) {
		t.Fatalf("SessionWithUser deadline = %v", m.Deadline)
	}
	if st, _ := s.MFAState(ctx(t), bob.ID); !st.Deadline.IsZero() {
		t.Fatalf("bob has alice's deadline %v", st.Deadline)
	}
}
