// Package storetest is the one conformance suite every auth.Store implementation must
// pass, so that SQLite and PostgreSQL behave alike — above all in the race-settling
// methods (code use, TOTP step, attempt counters), which are the security core and
// which the Service trusts without re-checking. It also provides the database
// harness helpers that end-to-end tests elsewhere use.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/latchkey/latchkey/internal/testenv"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

// PostgresURL returns the URL of a fresh, empty PostgreSQL database, dropped when the
// test ends. The server comes from LATCHKEY_TEST_POSTGRES; without it the test skips,
// or fails when LATCHKEY_TEST_REQUIRE_ALL=1 so that CI cannot pass by skipping.
func PostgresURL(t *testing.T) string {
	t.Helper()
	const msg = "PostgreSQL tests need LATCHKEY_TEST_POSTGRES=postgres://…"
	server := os.Getenv("LATCHKEY_TEST_POSTGRES")
	if server == "" {
		testenv.Missing(t, msg)
	}
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("LATCHKEY_TEST_POSTGRES: %v", err)
	}
	name := "lk_test_" + hex.EncodeToString(randomBytes(t, 8))

	ctx := context.Background()
	admin := func(sql string) error {
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	// The name is our own hex, so building the statement from it is safe.
	if err := admin("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		// FORCE ends connections a failed test left open, so the drop never hangs.
		if err := admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// SQLitePath returns the path of a database file (not created yet) in a directory
// removed when the test ends.
func SQLitePath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "latchkey.db")
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Run runs the suite. newStore must return a fresh, migrated, empty store and register
// its own cleanup; Run calls it once per area so areas cannot see each other's rows.
func Run(t *testing.T, newStore func(t *testing.T) auth.Store) {
	areas := []struct {
		name string
		fn   func(t *testing.T, s auth.Store)
	}{
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"PendingLogins", testPendingLogins},
		{"Attempts", testAttempts},
		{"TOTP", testTOTP},
		{"AdvanceTOTPStep", testAdvanceTOTPStep},
		{"RecoveryCodes", testRecoveryCodes},
		{"DisableMFA", testDisableMFA},
		{"ChangePassword", testChangePassword},
		{"PasswordReset", testPasswordReset},
		{"Events", testEvents},
		{"Outbox", testOutbox},
		{"Tokens", testTokens},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"Purge", testPurge},
		{"MFAState", testMFAState},
		{"Closed", testClosed},
		{"SSHKeys", testSSHKeys},
		{"RecoveryOpen", testRecoveryOpen},
		{"RecoveryVerify", testRecoveryVerify},
		{"RecoveryApprove", testRecoveryApprove},
		{"RecoveryPurge", testRecoveryPurge},
		{"SessionWithUser", testSessionWithUser},
		{"CredEpoch", testCredEpoch},
		{"FinishSignIn", testFinishSignIn},
		{"PurgeEvents", testPurgeEvents},
		{"EventUserAgent", testEventUserAgent},
		{"OIDC", testOIDC},
		{"EmailLinks", testEmailLinks},
		{"EmailVerifyRace", testEmailVerifyRace},
		{"ResetLinks", testResetLinks},
		{"DeleteUser", testDeleteUser},
		{"SetDisabled", testSetDisabled},
		{"RecoveryEvidence", testRecoveryEvidence},
		{"PurgeAccountRows", testPurgeAccountRows},
	}
	areas = append(areas, webauthnAreas...)
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) {
			a.fn(t, newStore(t))
		})
	}
}

// t0() is the suite's fixed clock: times come from the Service, never the database, so
// a fixed one keeps the suite exact and free of sleeps. It has microseconds on purpose.
func t0() time.Time { return time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC) }

func at(d time.Duration) time.Time { return t0().Add(d) }

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func ctx(t *testing.T) context.Context { return t.Context() }

func mustUser(t *testing.T, s auth.Store, name string) *auth.User {
	t.Helper()
	u := &auth.User{Username: name, Email: name + "@example.com", PasswordHash: "hash-" + name, CreatedAt: t0()}
	if err := s.CreateUser(ctx(t), u); err != nil {
		t.Fatalf("CreateUser(%q) = %v", name, err)
	}
	return u
}

// mustSession opens a session under the user's current credentials epoch.
func mustSession(t *testing.T, s auth.Store, user auth.UserID, token string, created time.Time) *auth.Session {
	t.Helper()
	x := &auth.Session{UserID: user, TokenHash: hash(token), CreatedAt: created, LastSeenAt: created,
		ExpiresAt: created.Add(30 * 24 * time.Hour), ReauthAt: created, IP: "192.0.2.1", UserAgent: "test",
		CredEpoch: epoch(t, s, user), Method: auth.SessionPassword}
	if err := s.CreateSession(ctx(t), x); err != nil {
		t.Fatalf("CreateSession = %v", err)
	}
	return x
}

// epoch is the user's current credentials epoch.
func epoch(t *testing.T, s auth.Store, user auth.UserID) int64 {
	t.Helper()
	u, err := s.UserByID(ctx(t), user)
	if err != nil {
		t.Fatalf("UserByID(%d) = %v", user, err)
	}
	return u.CredEpoch
}

func sessionIDs(t *testing.T, s auth.Store, user auth.UserID) []auth.SessionID {
	t.Helper()
	xs, err := s.ListSessions(ctx(t), user)
	if err != nil {
		t.Fatalf("ListSessions = %v", err)
	}
	var ids []auth.SessionID
	for _, x := range xs {
		ids = append(ids, x.ID)
	}
	return ids
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s = %v, want %v", what, err, target)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v", what, err)
	}
}

// race runs fn from n goroutines released at once and counts the true answers; any
// error fails the test, because a store must never turn load into a failure.
func race(t *testing.T, n int, fn func(i int) (bool, error)) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
		errs  []error
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			ok, err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				wins++
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d racers failed; first: %v", len(errs), n, errs[0])
	}
	return wins
}

func testUsers(t *testing.T, s auth.Store) {
	alice := &auth.User{Username: "Alice", Email: "Alice@Example.com", PasswordHash: "h1",
		EmailVerified: true, CreatedAt: t0()}
	noErr(t, "CreateUser(Alice)", s.CreateUser(ctx(t), alice))
	if alice.ID == 0 {
		t.Fatal("CreateUser did not set ID")
	}
	bob := mustUser(t, s, "bob")
	if bob.ID == alice.ID {
		t.Fatalf("two users got id %d", bob.ID)
	}

	conflicts := []struct {
		name, username, email, field string
	}{
		{"same username", "Alice", "other@example.com", "username"},
		{"username other case", "aLICE", "other@example.com", "username"},
		{"same email", "carol", "Alice@Example.com", "email"},
		{"email other case", "carol", "alice@EXAMPLE.COM", "email"},
		{"non-ASCII fold", "ÄRGER", "x@example.com", "username"},
	}
	noErr(t, "CreateUser(ärger)", s.CreateUser(ctx(t), &auth.User{Username: "ärger",
		Email: "arger@example.com", PasswordHash: "h", CreatedAt: t0()}))
	for _, c := range conflicts {
		t.Run(c.name, func(t *testing.T) {
			err := s.CreateUser(ctx(t), &auth.User{Username: c.username, Email: c.email,
				PasswordHash: "h", CreatedAt: t0()})
			var ce *auth.ConflictError
			if !errors.As(err, &ce) || !errors.Is(err, auth.ErrConflict) {
				t.Fatalf("CreateUser(%q, %q) = %v, want *ConflictError", c.username, c.email, err)
			}
			if ce.Field != c.field {
				t.Fatalf("CreateUser(%q, %q) conflict field = %q, want %q", c.username, c.email, ce.Field, c.field)
			}
		})
	}

	for _, login := range []string{"Alice", "alice", "ALICE", "Alice@Example.com", "alice@example.com"} {
		u, err := s.UserByLogin(ctx(t), login)
		if err != nil || u.ID != alice.ID {
			t.Fatalf("UserByLogin(%q) = %+v, %v, want user %d", login, u, err, alice.ID)
		}
	}
	_, err := s.UserByLogin(ctx(t), "nobody")
	wantErr(t, "UserByLogin(nobody)", err, auth.ErrNotFound)

	u, err := s.UserByEmail(ctx(t), "ALICE@example.COM")
	if err != nil || u.ID != alice.ID {
		t.Fatalf("UserByEmail = %+v, %v, want user %d", u, err, alice.ID)
	}
	_, err = s.UserByEmail(ctx(t), "Alice") // a username is not an email
	wantErr(t, "UserByEmail(username)", err, auth.ErrNotFound)

	u, err = s.UserByID(ctx(t), alice.ID)
	noErr(t, "UserByID", err)
	if *u != *alice {
		t.Fatalf("UserByID = %+v, want %+v", *u, *alice)
	}
	_, err = s.UserByID(ctx(t), alice.ID+1000)
	wantErr(t, "UserByID(unknown)", err, auth.ErrNotFound)

	noErr(t, "SetAdmin", s.SetAdmin(ctx(t), bob.ID, true))
	u, err = s.UserByID(ctx(t), bob.ID)
	if err != nil || !u.IsAdmin {
		t.Fatalf("after SetAdmin(true): %+v, %v", u, err)
	}
	noErr(t, "SetAdmin", s.SetAdmin(ctx(t), bob.ID, false))
	u, _ = s.UserByID(ctx(t), bob.ID)
	if u.IsAdmin {
		t.Fatal("SetAdmin(false) left the user an admin")
	}
	wantErr(t, "SetAdmin(unknown)", s.SetAdmin(ctx(t), bob.ID+1000, true), auth.ErrNotFound)

	us, err := s.ListUsers(ctx(t))
	noErr(t, "ListUsers", err)
	if len(us) != 3 || us[0].ID != alice.ID || us[1].ID != bob.ID || us[0].Username != "Alice" {
		t.Fatalf("ListUsers = %+v, want Alice, bob, ärger in id order", us)
	}
}

func testSessions(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	a1 := mustSession(t, s, alice.ID, "a1", at(0))
	a2 := mustSession(t, s, alice.ID, "a2", at(time.Minute))
	a3 := mustSession(t, s, alice.ID, "a3", at(2*time.Minute))
	b1 := mustSession(t, s, bob.ID, "b1", at(0))
	if a1.ID == 0 || a1.ID == a2.ID {
		t.Fatalf("session ids %d, %d", a1.ID, a2.ID)
	}

	got, err := s.SessionByTokenHash(ctx(t), hash("a2"))
	noErr(t, "SessionByTokenHash", err)
	if !sameSession(*got, *a2) {
		t.Fatalf("SessionByTokenHash = %+v, want %+v", *got, *a2)
	}
	_, err = s.SessionByTokenHash(ctx(t), hash("nope"))
	wantErr(t, "SessionByTokenHash(unknown)", err, auth.ErrNotFound)

	err = s.CreateSession(ctx(t), &auth.Session{UserID: bob.ID, TokenHash: hash("a1"),
		CreatedAt: t0(), ExpiresAt: t0()})
	wantErr(t, "CreateSession(duplicate hash)", err, auth.ErrConflict)

	noErr(t, "TouchSession", s.TouchSession(ctx(t), a2.ID, at(time.Hour)))
	noErr(t, "SetSessionReauth", s.SetSessionReauth(ctx(t), a2.ID, at(2*time.Hour)))
	got, _ = s.SessionByTokenHash(ctx(t), hash("a2"))
	if !got.LastSeenAt.Equal(at(time.Hour)) || !got.ReauthAt.Equal(at(2*time.Hour)) {
		t.Fatalf("after touch and reauth: last seen %v, reauth %v", got.LastSeenAt, got.ReauthAt)
	}
	if !got.CreatedAt.Equal(a2.CreatedAt) {
		t.Fatal("TouchSession changed created_at")
	}
	if got.Method != auth.SessionPassword || !got.MFAAt.IsZero() || got.HasMFA() {
		t.Fatalf("new session: method %q, mfa_at %v, want a password-only session", got.Method, got.MFAAt)
	}
	noErr(t, "SetSessionMFA", s.SetSessionMFA(ctx(t), a2.ID, auth.SessionPasswordTOTP, at(3*time.Hour)))
	got, _ = s.SessionByTokenHash(ctx(t), hash("a2"))
	if got.Method != auth.SessionPasswordTOTP || !got.MFAAt.Equal(at(3*time.Hour)) || !got.HasMFA() {
		t.Fatalf("after SetSessionMFA: method %q, mfa_at %v", got.Method, got.MFAAt)
	}
	withUser, _, _, err := s.SessionWithUser(ctx(t), hash("a2"))
	noErr(t, "SessionWithUser", err)
	if withUser.Method != auth.SessionPasswordTOTP || !withUser.MFAAt.Equal(at(3*time.Hour)) {
		t.Fatalf("SessionWithUser: method %q, mfa_at %v", withUser.Method, withUser.MFAAt)
	}
	wantErr(t, "SetSessionMFA(unknown)", s.SetSessionMFA(ctx(t), a2.ID+1000, auth.SessionPasswordTOTP, t0()), auth.ErrNotFound)

	if ids := sessionIDs(t, s, alice.ID); !equalIDs(ids, []auth.SessionID{a3.ID, a2.ID, a1.ID}) {
		t.Fatalf("ListSessions = %v, want newest first %v", ids, []auth.SessionID{a3.ID, a2.ID, a1.ID})
	}

	wantErr(t, "DeleteSession(other user's)", s.DeleteSession(ctx(t), alice.ID, b1.ID), auth.ErrNotFound)
	if ids := sessionIDs(t, s, bob.ID); len(ids) != 1 {
		t.Fatalf("bob's session went with alice's delete: %v", ids)
	}
	noErr(t, "DeleteSession(own)", s.DeleteSession(ctx(t), alice.ID, a1.ID))
	wantErr(t, "DeleteSession(again)", s.DeleteSession(ctx(t), alice.ID, a1.ID), auth.ErrNotFound)

	a4 := mustSession(t, s, alice.ID, "a4", at(3*time.Minute))
	n, err := s.DeleteSessions(ctx(t), alice.ID, a2.ID)
	noErr(t, "DeleteSessions(keep)", err)
	if n != 2 {
		t.Fatalf("DeleteSessions(keep) = %d, want 2", n)
	}
	if ids := sessionIDs(t, s, alice.ID); !equalIDs(ids, []auth.SessionID{a2.ID}) {
		t.Fatalf("after DeleteSessions(keep %d): %v (a4 %d)", a2.ID, ids, a4.ID)
	}
	n, err = s.DeleteSessions(ctx(t), alice.ID, 0)
	if err != nil || n != 1 {
		t.Fatalf("DeleteSessions(0) = %d, %v, want 1", n, err)
	}
	if ids := sessionIDs(t, s, bob.ID); len(ids) != 1 {
		t.Fatalf("DeleteSessions(alice) touched bob's: %v", ids)
	}
	wantErr(t, "TouchSession(deleted)", s.TouchSession(ctx(t), a2.ID, t0()), auth.ErrNotFound)
}

func sameSession(a, b auth.Session) bool {
	return a.ID == b.ID && a.UserID == b.UserID && bytes.Equal(a.TokenHash, b.TokenHash) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastSeenAt.Equal(b.LastSeenAt) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.ReauthAt.Equal(b.ReauthAt) &&
		a.IP == b.IP && a.UserAgent == b.UserAgent && a.CredEpoch == b.CredEpoch &&
		a.Method == b.Method && a.MFAAt.Equal(b.MFAAt)
}

func equalIDs[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pendingLogin reads a pending login through PendingSignIn.
func pendingLogin(t *testing.T, s auth.Store, h []byte) (*auth.PendingLogin, error) {
	t.Helper()
	ps, err := s.PendingSignIn(ctx(t), h)
	if err != nil {
		return nil, err
	}
	if ps.User.ID != ps.Pending.UserID {
		t.Fatalf("PendingSignIn user %d for a pending login of user %d", ps.User.ID, ps.Pending.UserID)
	}
	return &ps.Pending, nil
}

// saveAttempt writes st to key's counter, whatever it held.
func saveAttempt(t *testing.T, s auth.Store, key auth.AttemptKey, st auth.AttemptState) {
	t.Helper()
	_, err := s.UpdateAttempts(ctx(t), []auth.AttemptStep{{Key: key, Step: func(auth.AttemptState) (auth.AttemptState, bool) {
		return st, true
	}}})
	noErr(t, "UpdateAttempts", err)
}

func testPendingLogins(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	p := &auth.PendingLogin{TokenHash: hash("p"), UserID: alice.ID, CreatedAt: t0(),
		ExpiresAt: at(5 * time.Minute), IP: "198.51.100.7", UserAgent: "ua"}
	noErr(t, "CreatePendingLogin", s.CreatePendingLogin(ctx(t), p))
	got, err := pendingLogin(t, s, hash("p"))
	noErr(t, "PendingSignIn", err)
	if got.UserID != alice.ID || !got.ExpiresAt.Equal(p.ExpiresAt) || !got.CreatedAt.Equal(t0()) ||
		got.IP != p.IP || got.UserAgent != p.UserAgent || !bytes.Equal(got.TokenHash, p.TokenHash) ||
		got.CredEpoch != p.CredEpoch {
		t.Fatalf("PendingSignIn = %+v, want %+v", got, p)
	}
	// The joined read: the user as UserByID has it, and the TOTP credential as TOTP
	// has it once there is one (nil before).
	ps, err := s.PendingSignIn(ctx(t), hash("p"))
	noErr(t, "PendingSignIn", err)
	if ps.User.ID != alice.ID || ps.User.Username != alice.Username || ps.User.Email != alice.Email ||
		ps.User.PasswordHash != alice.PasswordHash || !ps.User.CreatedAt.Equal(alice.CreatedAt) ||
		ps.User.CredEpoch != alice.CredEpoch || ps.TOTP != nil {
		t.Fatalf("PendingSignIn without TOTP = user %+v, totp %+v; want %+v and nil", ps.User, ps.TOTP, *alice)
	}
	cred := &auth.TOTPCredential{UserID: alice.ID, Secret: auth.EncryptedSecret{KeyID: "k1", Ciphertext: []byte("sealed")},
		LastStep: 42, CreatedAt: t0()}
	noErr(t, "EnableTOTP", s.EnableTOTP(ctx(t), cred, nil, 0))
	// Enabling ended the pending logins with the sessions (epoch bump): store a new one.
	u, err := s.UserByID(ctx(t), alice.ID)
	noErr(t, "UserByID", err)
	noErr(t, "CreatePendingLogin(after TOTP)", s.CreatePendingLogin(ctx(t), &auth.PendingLogin{
		TokenHash: hash("p"), UserID: alice.ID, CreatedAt: t0(), ExpiresAt: at(5 * time.Minute), CredEpoch: u.CredEpoch}))
	ps, err = s.PendingSignIn(ctx(t), hash("p"))
	noErr(t, "PendingSignIn(with TOTP)", err)
	if ps.TOTP == nil || ps.TOTP.UserID != alice.ID || ps.TOTP.Secret.KeyID != "k1" ||
		!bytes.Equal(ps.TOTP.Secret.Ciphertext, []byte("sealed")) || ps.TOTP.LastStep != 42 ||
		!ps.TOTP.CreatedAt.Equal(t0()) || ps.User.CredEpoch != u.CredEpoch {
		t.Fatalf("PendingSignIn with TOTP = %+v (user %+v), want credential %+v", ps.TOTP, ps.User, cred)
	}
	noErr(t, "CreatePendingLogin(second)", s.CreatePendingLogin(ctx(t), &auth.PendingLogin{
		TokenHash: hash("q"), UserID: alice.ID, CreatedAt: t0(), ExpiresAt: at(time.Minute), CredEpoch: u.CredEpoch}))

	wins := race(t, 16, func(int) (bool, error) { return s.ConsumePendingLogin(ctx(t), hash("p")) })
	if wins != 1 {
		t.Fatalf("16 concurrent ConsumePendingLogin: %d won, want 1", wins)
	}
	_, err = pendingLogin(t, s, hash("p"))
	wantErr(t, "PendingSignIn(consumed)", err, auth.ErrNotFound)
	if _, err := pendingLogin(t, s, hash("q")); err != nil {
		t.Fatalf("consuming one pending login removed another: %v", err)
	}
}

// testAttempts holds UpdateAttempts, the one write of every counter: what a step
// writes reads back exactly; a step sees the counter as the steps before it left it;
// a step that declines writes nothing; and parallel updates of one counter, on any
// number of connections, each see the one before: none is lost and none is refused.
func testAttempts(t *testing.T, s auth.Store) {
	key := auth.AttemptKey{Scope: "mfa", Key: "42"}
	zero, err := s.Attempt(ctx(t), key)
	noErr(t, "Attempt(missing)", err)
	if zero != (auth.AttemptState{}) {
		t.Fatalf("Attempt(missing) = %+v, want the zero state", zero)
	}

	// Every field round-trips, zero times included.
	full := auth.AttemptState{Failures: 5, Locks: 2, LockedUntil: at(30 * time.Second), UpdatedAt: at(time.Second),
		InFlight: 3, InFlightUntil: at(time.Minute)}
	var seen auth.AttemptState
	sts, err := s.UpdateAttempts(ctx(t), []auth.AttemptStep{{Key: key, Step: func(prev auth.AttemptState) (auth.AttemptState, bool) {
		seen = prev
		return full, true
	}}})
	noErr(t, "UpdateAttempts", err)
	want := full
	want.Version = 1
	if seen != (auth.AttemptState{}) || len(sts) != 1 || !sameAttempt(sts[0], want) {
		t.Fatalf("UpdateAttempts(new counter) saw %+v, returned %+v; want the zero state and %+v", seen, sts, want)
	}
	if got, _ := s.Attempt(ctx(t), key); !sameAttempt(got, want) {
		t.Fatalf("Attempt after UpdateAttempts = %+v, want %+v", got, want)
	}
	saveAttempt(t, s, key, auth.AttemptState{Locks: 1, UpdatedAt: at(time.Minute)})
	if got, _ := s.Attempt(ctx(t), key); got.Version != 2 || got.Failures != 0 || got.Locks != 1 ||
		!got.LockedUntil.IsZero() || got.InFlight != 0 || !got.InFlightUntil.IsZero() || !got.UpdatedAt.Equal(at(time.Minute)) {
		t.Fatalf("after a reset: %+v, want zero times back as zero", got)
	}

	// Steps in one call run in order, each seeing the writes before it; a step that
	// declines leaves the counter as it was and returns it.
	plus := func(prev auth.AttemptState) (auth.AttemptState, bool) { prev.Failures++; return prev, true }
	decline := func(prev auth.AttemptState) (auth.AttemptState, bool) { return auth.AttemptState{Failures: 99}, false }
	other := auth.AttemptKey{Scope: "pw-ip", Key: "42"}
	sts, err = s.UpdateAttempts(ctx(t), []auth.AttemptStep{{Key: key, Step: plus}, {Key: other, Step: plus}, {Key: key, Step: plus}, {Key: key, Step: decline}})
	noErr(t, "UpdateAttempts(several)", err)
	if len(sts) != 4 || sts[0].Failures != 1 || sts[1].Failures != 1 || sts[2].Failures != 2 || sts[3].Failures != 2 || sts[3].Version != 4 {
		t.Fatalf("UpdateAttempts(several) = %+v, want 1, 1, 2, 2 failures", sts)
	}
	if got, _ := s.Attempt(ctx(t), key); got.Failures != 2 || got.Version != 4 {
		t.Fatalf("after several steps: %+v, want 2 failures at version 4", got)
	}

	// 200 parallel counts on one new counter: every one lands, each on the one before.
	// Then 200 parallel slots under the policy: exactly as many as it allows are taken.
	hot := auth.AttemptKey{Scope: "pw-account", Key: "hot"}
	race(t, 200, func(int) (bool, error) {
		_, err := s.UpdateAttempts(ctx(t), []auth.AttemptStep{{Key: hot, Step: plus}})
		return true, err
	})
	if got, _ := s.Attempt(ctx(t), hot); got.Failures != 200 || got.Version != 200 {
		t.Fatalf("after 200 parallel counts: %+v, want 200 failures at version 200", got)
	}
	p := auth.LimitPolicy{MaxFailures: 5, BaseLock: 30 * time.Second, MaxLock: 15 * time.Minute}
	slots := auth.AttemptKey{Scope: "mfa", Key: "slots"}
	taken := race(t, 200, func(int) (bool, error) {
		var d auth.Decision
		_, err := s.UpdateAttempts(ctx(t), []auth.AttemptStep{{Key: slots, Step: func(prev auth.AttemptState) (auth.AttemptState, bool) {
			next, write, dec := p.Apply(prev, auth.OpAcquire, t0())
			d = dec
			return next, write
		}}})
		return d.Allowed, err
	})
	if got, _ := s.Attempt(ctx(t), slots); taken != 5 || got.InFlight != 5 || got.Version != 5 {
		t.Fatalf("200 parallel slots under a limit of 5: %d taken, counter %+v; want 5", taken, got)
	}

	// Counters are independent per scope and key.
	if got, err := s.Attempt(ctx(t), auth.AttemptKey{Scope: "pw-ip", Key: "hot"}); err != nil || got.Version != 0 {
		t.Fatalf("Attempt(other scope) = %+v, %v, want zero", got, err)
	}
}

func sameAttempt(a, b auth.AttemptState) bool {
	return a.Failures == b.Failures && a.Locks == b.Locks && a.LockedUntil.Equal(b.LockedUntil) &&
		a.UpdatedAt.Equal(b.UpdatedAt) && a.Version == b.Version
}

func secret(s string) auth.EncryptedSecret {
	return auth.EncryptedSecret{KeyID: "k1", Ciphertext: []byte("sealed-" + s)}
}

func codes(prefix string, n int) [][]byte {
	var hs [][]byte
	for i := range n {
		hs = append(hs, hash(fmt.Sprintf("%s-%d", prefix, i)))
	}
	return hs
}

// enable turns TOTP on for user with the codes prefix-0 … prefix-15.
func enable(t *testing.T, s auth.Store, user auth.UserID, prefix string, keep auth.SessionID) {
	t.Helper()
	c := &auth.TOTPCredential{UserID: user, Secret: secret(prefix), LastStep: 1000, CreatedAt: t0()}
	noErr(t, "EnableTOTP", s.EnableTOTP(ctx(t), c, codes(prefix, 16), keep))
}

func testTOTP(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	_, err := s.PendingTOTP(ctx(t), alice.ID)
	wantErr(t, "PendingTOTP(none)", err, auth.ErrNotFound)
	_, err = s.TOTP(ctx(t), alice.ID)
	wantErr(t, "TOTP(none)", err, auth.ErrNotFound)

	noErr(t, "SetPendingTOTP", s.SetPendingTOTP(ctx(t), &auth.PendingTOTP{UserID: alice.ID,
		Secret: secret("first"), ExpiresAt: at(15 * time.Minute)}))
	noErr(t, "SetPendingTOTP(replace)", s.SetPendingTOTP(ctx(t), &auth.PendingTOTP{UserID: alice.ID,
		Secret: auth.EncryptedSecret{KeyID: "k2", Ciphertext: []byte("second")}, ExpiresAt: at(16 * time.Minute)}))
	p, err := s.PendingTOTP(ctx(t), alice.ID)
	noErr(t, "PendingTOTP", err)
	if p.UserID != alice.ID || p.Secret.KeyID != "k2" || string(p.Secret.Ciphertext) != "second" ||
		!p.ExpiresAt.Equal(at(16*time.Minute)) {
		t.Fatalf("PendingTOTP = %+v, want the replacement", p)
	}

	keep := mustSession(t, s, alice.ID, "keep", t0())
	mustSession(t, s, alice.ID, "other", t0())
	bobs := mustSession(t, s, bob.ID, "bob", t0())
	noErr(t, "SetPendingTOTP(bob)", s.SetPendingTOTP(ctx(t), &auth.PendingTOTP{UserID: bob.ID,
		Secret: secret("bob"), ExpiresAt: at(time.Minute)}))

	c := &auth.TOTPCredential{UserID: alice.ID, Secret: p.Secret, LastStep: 55555, CreatedAt: at(time.Second)}
	noErr(t, "EnableTOTP", s.EnableTOTP(ctx(t), c, codes("a", 16), keep.ID))
	got, err := s.TOTP(ctx(t), alice.ID)
	noErr(t, "TOTP", err)
	if got.UserID != alice.ID || got.LastStep != 55555 || got.Secret.KeyID != "k2" ||
		string(got.Secret.Ciphertext) != "second" || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("TOTP = %+v, want %+v", got, c)
	}
	_, err = s.PendingTOTP(ctx(t), alice.ID)
	wantErr(t, "PendingTOTP(after enable)", err, auth.ErrNotFound)
	if _, err := s.PendingTOTP(ctx(t), bob.ID); err != nil {
		t.Fatalf("enabling alice removed bob's pending setup: %v", err)
	}
	if ids := sessionIDs(t, s, alice.ID); !equalIDs(ids, []auth.SessionID{keep.ID}) {
		t.Fatalf("sessions after EnableTOTP = %v, want only keep %d", ids, keep.ID)
	}
	if ids := sessionIDs(t, s, bob.ID); !equalIDs(ids, []auth.SessionID{bobs.ID}) {
		t.Fatalf("EnableTOTP(alice) ended bob's sessions: %v", ids)
	}
	counts, err := s.RecoveryCodeCounts(ctx(t), alice.ID)
	if err != nil || counts != (auth.RecoveryCodeCounts{Total: 16, Remaining: 16}) {
		t.Fatalf("RecoveryCodeCounts after enable = %+v, %v, want 16/16", counts, err)
	}

	// A second enrolment changes nothing: not the credential, the codes or the sessions.
	mustSession(t, s, alice.ID, "later", t0())
	err = s.EnableTOTP(ctx(t), &auth.TOTPCredential{UserID: alice.ID, Secret: secret("x"),
		LastStep: 1, CreatedAt: t0()}, codes("x", 16), keep.ID)
	wantErr(t, "EnableTOTP(again)", err, auth.ErrConflict)
	got, _ = s.TOTP(ctx(t), alice.ID)
	if got.LastStep != 55555 || string(got.Secret.Ciphertext) != "second" {
		t.Fatalf("failed EnableTOTP changed the credential: %+v", got)
	}
	if ok, _ := s.UseRecoveryCode(ctx(t), alice.ID, hash("x-0"), t0()); ok {
		t.Fatal("failed EnableTOTP installed its codes")
	}
	if ids := sessionIDs(t, s, alice.ID); len(ids) != 2 {
		t.Fatalf("failed EnableTOTP ended sessions: %v", ids)
	}
}

func testAdvanceTOTPStep(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	if ok, err := s.AdvanceTOTPStep(ctx(t), alice.ID, 5); ok || err != nil {
		t.Fatalf("AdvanceTOTPStep(no credential) = %v, %v, want false, nil", ok, err)
	}
	enable(t, s, alice.ID, "a", 0) // enrolment accepted step 1000

	steps := []struct {
		step int64
		want bool
	}{
		{1000, false}, // the enrolment step counts as used
		{999, false},
		{1001, true},
		{1001, false}, // replay
		{1000, false}, // earlier
		{1003, true},  // skipping ahead is fine
		{1002, false}, // then the skipped one is earlier
		{1 << 40, true},
	}
	for _, c := range steps {
		ok, err := s.AdvanceTOTPStep(ctx(t), alice.ID, c.step)
		if err != nil || ok != c.want {
			t.Fatalf("AdvanceTOTPStep(%d) = %v, %v, want %v", c.step, ok, err, c.want)
		}
	}
	cred, _ := s.TOTP(ctx(t), alice.ID)
	if cred.LastStep != 1<<40 {
		t.Fatalf("LastStep = %d, want %d", cred.LastStep, int64(1)<<40)
	}

	bob := mustUser(t, s, "bob")
	enable(t, s, bob.ID, "b", 0)
	wins := race(t, 16, func(int) (bool, error) { return s.AdvanceTOTPStep(ctx(t), bob.ID, 2000) })
	if wins != 1 {
		t.Fatalf("16 concurrent AdvanceTOTPStep(same step): %d accepted, want 1", wins)
	}
}

func testRecoveryCodes(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")

	err := s.ReplaceRecoveryCodes(ctx(t), alice.ID, codes("n", 16), t0())
	wantErr(t, "ReplaceRecoveryCodes(no TOTP)", err, auth.ErrNotFound)
	if c, err := s.RecoveryCodeCounts(ctx(t), alice.ID); err != nil || c != (auth.RecoveryCodeCounts{}) {
		t.Fatalf("failed ReplaceRecoveryCodes left codes: %+v, %v", c, err)
	}

	enable(t, s, alice.ID, "a", 0)
	enable(t, s, bob.ID, "b", 0)

	if ok, err := s.UseRecoveryCode(ctx(t), alice.ID, hash("a-3"), at(time.Minute)); !ok || err != nil {
		t.Fatalf("UseRecoveryCode(a-3) = %v, %v, want true", ok, err)
	}
	if ok, err := s.UseRecoveryCode(ctx(t), alice.ID, hash("a-3"), at(2*time.Minute)); ok || err != nil {
		t.Fatalf("UseRecoveryCode(a-3 again) = %v, %v, want false", ok, err)
	}
	if ok, err := s.UseRecoveryCode(ctx(t), alice.ID, hash("b-0"), t0()); ok || err != nil {
		t.Fatalf("UseRecoveryCode(bob's code on alice) = %v, %v, want false", ok, err)
	}
	if ok, err := s.UseRecoveryCode(ctx(t), alice.ID, hash("nope"), t0()); ok || err != nil {
		t.Fatalf("UseRecoveryCode(unknown) = %v, %v, want false", ok, err)
	}
	wins := race(t, 16, func(int) (bool, error) {
		return s.UseRecoveryCode(ctx(t), alice.ID, hash("a-7"), at(time.Minute))
	})
	if wins != 1 {
		t.Fatalf("16 concurrent UseRecoveryCode(same code): %d accepted, want 1", wins)
	}
	c, err := s.RecoveryCodeCounts(ctx(t), alice.ID)
	if err != nil || c != (auth.RecoveryCodeCounts{Total: 16, Remaining: 14}) {
		t.Fatalf("RecoveryCodeCounts = %+v, %v, want 16/14", c, err)
	}
	if c, _ := s.RecoveryCodeCounts(ctx(t), bob.ID); c != (auth.RecoveryCodeCounts{Total: 16, Remaining: 16}) {
		t.Fatalf("bob's counts = %+v, want 16/16", c)
	}

	noErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx(t), alice.ID, codes("n", 10), at(time.Hour)))
	for _, old := range []string{"a-0", "a-15"} {
		if ok, err := s.UseRecoveryCode(ctx(t), alice.ID, hash(old), t0()); ok || err != nil {
			t.Fatalf("UseRecoveryCode(old %s) after replace = %v, %v, want false", old, ok, err)
		}
	}
	if c, _ := s.RecoveryCodeCounts(ctx(t), alice.ID); c != (auth.RecoveryCodeCounts{Total: 10, Remaining: 10}) {
		t.Fatalf("counts after replace = %+v, want 10/10", c)
	}
	if ok, err := s.UseRecoveryCode(ctx(t), alice.ID, hash("n-9"), t0()); !ok || err != nil {
		t.Fatalf("UseRecoveryCode(new) = %v, %v, want true", ok, err)
	}
	if c, _ := s.RecoveryCodeCounts(ctx(t), bob.ID); c != (auth.RecoveryCodeCounts{Total: 16, Remaining: 16}) {
		t.Fatalf("replacing alice's codes changed bob's: %+v", c)
	}
}

func testDisableMFA(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	keep := mustSession(t, s, alice.ID, "keep", t0())
	enable(t, s, alice.ID, "a", keep.ID)
	enable(t, s, bob.ID, "b", 0)
	mustSession(t, s, alice.ID, "other", t0())
	bobs := mustSession(t, s, bob.ID, "bob", t0())
	noErr(t, "SetPendingTOTP", s.SetPendingTOTP(ctx(t), &auth.PendingTOTP{UserID: alice.ID,
		Secret: secret("p"), ExpiresAt: at(time.Minute)}))

	existed, err := s.DisableMFA(ctx(t), alice.ID, keep.ID)
	if err != nil || !existed {
		t.Fatalf("DisableMFA = %v, %v, want true", existed, err)
	}
	_, err = s.TOTP(ctx(t), alice.ID)
	wantErr(t, "TOTP(after disable)", err, auth.ErrNotFound)
	_, err = s.PendingTOTP(ctx(t), alice.ID)
	wantErr(t, "PendingTOTP(after disable)", err, auth.ErrNotFound)
	if c, err := s.RecoveryCodeCounts(ctx(t), alice.ID); err != nil || c != (auth.RecoveryCodeCounts{}) {
		t.Fatalf("codes after DisableMFA = %+v, %v, want none", c, err)
	}
	if ok, _ := s.UseRecoveryCode(ctx(t), alice.ID, hash("a-1"), t0()); ok {
		t.Fatal("a recovery code worked after DisableMFA")
	}
	if ids := sessionIDs(t, s, alice.ID); !equalIDs(ids, []auth.SessionID{keep.ID}) {
		t.Fatalf("sessions after DisableMFA = %v, want only keep", ids)
	}
	if _, err := s.TOTP(ctx(t), bob.ID); err != nil {
		t.Fatalf("DisableMFA(alice) removed bob's TOTP: %v", err)
	}
	if ids := sessionIDs(t, s, bob.ID); !equalIDs(ids, []auth.SessionID{bobs.ID}) {
		t.Fatalf("DisableMFA(alice) ended bob's sessions: %v", ids)
	}

	existed, err = s.DisableMFA(ctx(t), alice.ID, 0)
	if err != nil || existed {
		t.Fatalf("DisableMFA(again) = %v, %v, want false", existed, err)
	}
	if ids := sessionIDs(t, s, alice.ID); len(ids) != 0 {
		t.Fatalf("DisableMFA(keep 0) left sessions %v", ids)
	}
	// Re-enrolment after removal works.
	enable(t, s, alice.ID, "c", 0)
}

func testChangePassword(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	keep := mustSession(t, s, alice.ID, "keep", t0())
	mustSession(t, s, alice.ID, "other", t0())
	bobs := mustSession(t, s, bob.ID, "bob", t0())
	pending := &auth.PendingLogin{TokenHash: []byte("pending-alice"), UserID: alice.ID, CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour)}
	noErr(t, "CreatePendingLogin", s.CreatePendingLogin(ctx(t), pending))

	noErr(t, "ChangePassword", s.ChangePassword(ctx(t), alice.ID, "new-hash", keep.ID))
	if _, err := pendingLogin(t, s, pending.TokenHash); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("pending login after ChangePassword: err = %v, want ErrNotFound", err)
	}
	u, _ := s.UserByID(ctx(t), alice.ID)
	if u.PasswordHash != "new-hash" {
		t.Fatalf("password hash = %q, want new-hash", u.PasswordHash)
	}
	if ids := sessionIDs(t, s, alice.ID); !equalIDs(ids, []auth.SessionID{keep.ID}) {
		t.Fatalf("sessions after ChangePassword = %v, want only keep", ids)
	}
	if ids := sessionIDs(t, s, bob.ID); !equalIDs(ids, []auth.SessionID{bobs.ID}) {
		t.Fatalf("ChangePassword(alice) ended bob's sessions: %v", ids)
	}
	noErr(t, "ChangePassword(keep 0)", s.ChangePassword(ctx(t), alice.ID, "newer", 0))
	if ids := sessionIDs(t, s, alice.ID); len(ids) != 0 {
		t.Fatalf("ChangePassword(keep 0) left %v", ids)
	}
	wantErr(t, "ChangePassword(unknown)", s.ChangePassword(ctx(t), bob.ID+1000, "x", 0), auth.ErrNotFound)
	if u, _ := s.UserByID(ctx(t), bob.ID); u.PasswordHash != "hash-bob" {
		t.Fatal("ChangePassword(alice) changed bob's hash")
	}
}

func testPasswordReset(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	reset := func(token string, user auth.UserID, expires time.Time) {
		t.Helper()
		noErr(t, "CreatePasswordReset", s.CreatePasswordReset(ctx(t), &auth.PasswordReset{
			TokenHash: hash(token), UserID: user, CreatedAt: t0(), ExpiresAt: expires}))
	}
	reset("r2", alice.ID, at(time.Hour))
	reset("r1", alice.ID, at(time.Hour)) // the newer link: r2 dies
	reset("old", mustUser(t, s, "carol").ID, at(time.Minute))
	reset("rb", bob.ID, at(time.Hour))
	mustSession(t, s, alice.ID, "s1", t0())
	mustSession(t, s, alice.ID, "s2", t0())
	bobs := mustSession(t, s, bob.ID, "bob", t0())

	_, err := s.ResetPassword(ctx(t), hash("old"), "x", at(time.Minute), false)
	wantErr(t, "ResetPassword(expired at exactly now)", err, auth.ErrNotFound)
	_, err = s.ResetPassword(ctx(t), hash("unknown"), "x", t0(), false)
	wantErr(t, "ResetPassword(unknown)", err, auth.ErrNotFound)
	if u, _ := s.UserByID(ctx(t), alice.ID); u.PasswordHash != "hash-alice" {
		t.Fatal("a refused reset changed the password")
	}

	var (
		mu   sync.Mutex
		user auth.UserID
	)
	wins := race(t, 8, func(i int) (bool, error) {
		id, err := s.ResetPassword(ctx(t), hash("r1"), fmt.Sprintf("new-%d", i), at(time.Second), false)
		if errors.Is(err, auth.ErrNotFound) {
			return false, nil
		}
		mu.Lock()
		user = id
		mu.Unlock()
		return err == nil, err
	})
	if wins != 1 || user != alice.ID {
		t.Fatalf("8 concurrent ResetPassword(same link): %d won (user %d), want 1 (user %d)", wins, user, alice.ID)
	}
	if u, _ := s.UserByID(ctx(t), alice.ID); u.PasswordHash == "hash-alice" {
		t.Fatal("ResetPassword did not set the password")
	}
	if ids := sessionIDs(t, s, alice.ID); len(ids) != 0 {
		t.Fatalf("sessions after ResetPassword = %v, want none", ids)
	}
	_, err = s.ResetPassword(ctx(t), hash("r1"), "again", at(2*time.Second), false)
	wantErr(t, "ResetPassword(used)", err, auth.ErrNotFound)
	_, err = s.ResetPassword(ctx(t), hash("r2"), "other link", at(2*time.Second), false)
	wantErr(t, "ResetPassword(other link of the same user)", err, auth.ErrNotFound)

	if ids := sessionIDs(t, s, bob.ID); !equalIDs(ids, []auth.SessionID{bobs.ID}) {
		t.Fatalf("alice's reset ended bob's sessions: %v", ids)
	}
	id, err := s.ResetPassword(ctx(t), hash("rb"), "bob-new", at(2*time.Second), false)
	if err != nil || id != bob.ID {
		t.Fatalf("ResetPassword(bob's link) = %d, %v, want %d", id, err, bob.ID)
	}
}

func testEvents(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	add := func(user auth.UserID, name string, d time.Duration) *auth.Event {
		t.Helper()
		e := &auth.Event{UserID: user, Time: at(d), Event: name, Outcome: "success",
			IP: "192.0.2.9", UserAgent: "ua", Detail: "d-" + name}
		noErr(t, "AddEvent", s.AddEvent(ctx(t), e))
		return e
	}
	e1 := add(alice.ID, "login", 0)
	add(bob.ID, "login", time.Second)
	add(0, "login_unknown", 2*time.Second)
	e4 := add(alice.ID, "mfa_enabled", 3*time.Second)
	e5 := add(alice.ID, "logout", 4*time.Second)
	if e1.ID == 0 || e4.ID <= e1.ID {
		t.Fatalf("event ids %d, %d: want increasing", e1.ID, e4.ID)
	}

	es, err := s.Events(ctx(t), alice.ID, 10)
	noErr(t, "Events", err)
	if len(es) != 3 || es[0].ID != e5.ID || es[2].ID != e1.ID {
		t.Fatalf("Events(alice) = %+v, want 3 newest first", es)
	}
	if es[2] != *e1 {
		t.Fatalf("Events returned %+v, want %+v", es[2], *e1)
	}
	es, _ = s.Events(ctx(t), alice.ID, 2)
	if len(es) != 2 || es[0].ID != e5.ID || es[1].ID != e4.ID {
		t.Fatalf("Events(alice, 2) = %+v, want the 2 newest", es)
	}
	es, _ = s.Events(ctx(t), 0, 100)
	if len(es) != 5 || es[0].ID != e5.ID || es[2].UserID != 0 || es[2].Event != "login_unknown" {
		t.Fatalf("Events(0) = %+v, want every event newest first", es)
	}
	es, _ = s.Events(ctx(t), bob.ID, 100)
	if len(es) != 1 || es[0].UserID != bob.ID {
		t.Fatalf("Events(bob) = %+v", es)
	}
}

func testOutbox(t *testing.T, s auth.Store) {
	ms, err := s.Outbox(ctx(t))
	if err != nil || len(ms) != 0 {
		t.Fatalf("Outbox(empty) = %v, %v", ms, err)
	}
	m1 := &auth.OutboxMessage{To: "a@example.com", Subject: "one", Body: secret("b1"), CreatedAt: at(time.Second)}
	m2 := &auth.OutboxMessage{To: "b@example.com", Subject: "two", Body: secret("b2"), CreatedAt: t0()}
	noErr(t, "AddOutbox", s.AddOutbox(ctx(t), m1))
	noErr(t, "AddOutbox", s.AddOutbox(ctx(t), m2))
	ms, err = s.Outbox(ctx(t))
	noErr(t, "Outbox", err)
	if len(ms) != 2 || ms[0].ID != m1.ID || ms[1].ID != m2.ID || m1.ID == 0 {
		t.Fatalf("Outbox = %+v, want oldest first", ms)
	}
	got := ms[0]
	if got.To != m1.To || got.Subject != m1.Subject || got.Body.KeyID != "k1" ||
		!bytes.Equal(got.Body.Ciphertext, m1.Body.Ciphertext) || !got.CreatedAt.Equal(m1.CreatedAt) {
		t.Fatalf("Outbox[0] = %+v, want %+v", got, *m1)
	}
}

func testTokens(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	t1 := &auth.AccessToken{UserID: alice.ID, Name: "ci", TokenHash: hash("t1"), CreatedAt: t0()}
	t2 := &auth.AccessToken{UserID: alice.ID, Name: "laptop", TokenHash: hash("t2"),
		CreatedAt: at(time.Hour), ExpiresAt: at(90 * 24 * time.Hour)}
	tb := &auth.AccessToken{UserID: bob.ID, Name: "bob", TokenHash: hash("tb"), CreatedAt: t0()}
	for _, tok := range []*auth.AccessToken{t1, t2, tb} {
		noErr(t, "CreateToken", s.CreateToken(ctx(t), tok))
	}
	if t1.ID == 0 || t1.ID == t2.ID {
		t.Fatalf("token ids %d, %d", t1.ID, t2.ID)
	}
	err := s.CreateToken(ctx(t), &auth.AccessToken{UserID: bob.ID, Name: "dup", TokenHash: hash("t1"), CreatedAt: t0()})
	wantErr(t, "CreateToken(duplicate hash)", err, auth.ErrConflict)

	got, err := s.TokenByHash(ctx(t), hash("t1"))
	noErr(t, "TokenByHash", err)
	if got.ID != t1.ID || got.UserID != alice.ID || got.Name != "ci" || !got.ExpiresAt.IsZero() ||
		!got.LastUsedAt.IsZero() || !got.CreatedAt.Equal(t0()) || !bytes.Equal(got.TokenHash, t1.TokenHash) {
		t.Fatalf("TokenByHash = %+v, want %+v (zero expiry and last use)", got, t1)
	}
	got, _ = s.TokenByHash(ctx(t), hash("t2"))
	if !got.ExpiresAt.Equal(t2.ExpiresAt) {
		t.Fatalf("ExpiresAt = %v, want %v", got.ExpiresAt, t2.ExpiresAt)
	}
	_, err = s.TokenByHash(ctx(t), hash("nope"))
	wantErr(t, "TokenByHash(unknown)", err, auth.ErrNotFound)

	ts, err := s.ListTokens(ctx(t), alice.ID)
	noErr(t, "ListTokens", err)
	if len(ts) != 2 || ts[0].ID != t2.ID || ts[1].ID != t1.ID {
		t.Fatalf("ListTokens = %+v, want newest first", ts)
	}

	noErr(t, "TouchToken", s.TouchToken(ctx(t), t1.ID, at(time.Minute)))
	got, _ = s.TokenByHash(ctx(t), hash("t1"))
	if !got.LastUsedAt.Equal(at(time.Minute)) {
		t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, at(time.Minute))
	}

	wantErr(t, "DeleteToken(other user's)", s.DeleteToken(ctx(t), alice.ID, tb.ID), auth.ErrNotFound)
	if _, err := s.TokenByHash(ctx(t), hash("tb")); err != nil {
		t.Fatalf("alice deleted bob's token: %v", err)
	}
	noErr(t, "DeleteToken(own)", s.DeleteToken(ctx(t), alice.ID, t1.ID))
	_, err = s.TokenByHash(ctx(t), hash("t1"))
	wantErr(t, "TokenByHash(deleted)", err, auth.ErrNotFound)
	wantErr(t, "DeleteToken(again)", s.DeleteToken(ctx(t), alice.ID, t1.ID), auth.ErrNotFound)
}

// testTimeRoundTrip checks that times come back exactly, to the microsecond, in UTC,
// whatever zone they were written in, and that the zero time stays zero.
func testTimeRoundTrip(t *testing.T, s auth.Store) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	cases := []struct {
		name string
		in   time.Time
	}{
		{"microseconds", time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)},
		{"other zone", time.Date(2025, 6, 30, 23, 59, 59, 999999000, zone)},
		{"epoch", time.Unix(0, 0)},
		{"before epoch", time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC)},
		{"past 2038", time.Date(2400, 2, 29, 12, 0, 0, 1000, time.UTC)},
		{"local monotonic", time.Now().Truncate(time.Microsecond)},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := &auth.AccessToken{UserID: mustUser(t, s, fmt.Sprintf("u%d", i)).ID, Name: c.name,
				TokenHash: hash(c.name), CreatedAt: c.in, ExpiresAt: c.in, LastUsedAt: time.Time{}}
			noErr(t, "CreateToken", s.CreateToken(ctx(t), tok))
			got, err := s.TokenByHash(ctx(t), hash(c.name))
			noErr(t, "TokenByHash", err)
			want := c.in.UTC().Round(0)
			if got.CreatedAt != want || got.ExpiresAt != want {
				t.Fatalf("round trip of %v = %v / %v, want exactly %v", c.in, got.CreatedAt, got.ExpiresAt, want)
			}
			if got.CreatedAt.Location() != time.UTC {
				t.Fatalf("location = %v, want UTC", got.CreatedAt.Location())
			}
			if !got.LastUsedAt.IsZero() {
				t.Fatalf("zero time came back as %v", got.LastUsedAt)
			}
		})
	}
}

// testClosed checks that a store that cannot reach its database answers every
// race-settling call with an error, never with "won", "unused" or "unlocked": the
// Service must deny when the database is down.
func testClosed(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	enable(t, s, alice.ID, "a", 0)
	noErr(t, "Close", s.Close())

	key := auth.AttemptKey{Scope: "mfa", Key: "1"}
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx(t)) }},
		{"Attempt", func() error { _, err := s.Attempt(ctx(t), key); return err }},
		{"UpdateAttempts", func() error {
			_, err := s.UpdateAttempts(ctx(t), []auth.AttemptStep{{Key: key, Step: func(prev auth.AttemptState) (auth.AttemptState, bool) {
				prev.Failures++
				return prev, true
			}}})
			return err
		}},
		{"AdvanceTOTPStep", func() error { _, err := s.AdvanceTOTPStep(ctx(t), alice.ID, 5000); return err }},
		{"UseRecoveryCode", func() error { _, err := s.UseRecoveryCode(ctx(t), alice.ID, hash("a-0"), t0()); return err }},
		{"ConsumePendingLogin", func() error { _, err := s.ConsumePendingLogin(ctx(t), hash("p")); return err }},
		{"ResetPassword", func() error { _, err := s.ResetPassword(ctx(t), hash("r"), "x", t0(), false); return err }},
		{"EnableTOTP", func() error {
			return s.EnableTOTP(ctx(t), &auth.TOTPCredential{UserID: alice.ID, CreatedAt: t0()}, nil, 0)
		}},
		{"DisableMFA", func() error { _, err := s.DisableMFA(ctx(t), alice.ID, 0); return err }},
		{"ReplaceRecoveryCodes", func() error { return s.ReplaceRecoveryCodes(ctx(t), alice.ID, codes("z", 1), t0()) }},
		{"TOTP", func() error { _, err := s.TOTP(ctx(t), alice.ID); return err }},
		{"SessionByTokenHash", func() error { _, err := s.SessionByTokenHash(ctx(t), hash("s")); return err }},
		{"TokenByHash", func() error { _, err := s.TokenByHash(ctx(t), hash("t")); return err }},
		{"RecoveryCodeCounts", func() error { _, err := s.RecoveryCodeCounts(ctx(t), alice.ID); return err }},
	}
	for _, c := range calls {
		err := c.call()
		if err == nil {
			t.Errorf("%s on a closed store = nil error, want an error", c.name)
			continue
		}
		// "Not found" from a closed database would read as a definite answer.
		if errors.Is(err, auth.ErrNotFound) || errors.Is(err, auth.ErrConflict) {
			t.Errorf("%s on a closed store = %v, want a plain failure", c.name, err)
		}
	}
}

func testPurge(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	live := mustSession(t, s, alice.ID, "live", at(29*24*time.Hour))
	mustSession(t, s, alice.ID, "absolute", t0())       // expires at t0+30d
	mustSession(t, s, alice.ID, "idle", at(-time.Hour)) // last seen long ago
	noErr(t, "CreatePendingLogin", s.CreatePendingLogin(ctx(t), &auth.PendingLogin{TokenHash: hash("p-old"), UserID: alice.ID, CreatedAt: t0(), ExpiresAt: at(time.Minute)}))
	noErr(t, "CreatePendingLogin", s.CreatePendingLogin(ctx(t), &auth.PendingLogin{TokenHash: hash("p-new"), UserID: alice.ID, CreatedAt: t0(), ExpiresAt: at(31 * 24 * time.Hour)}))
	noErr(t, "CreatePasswordReset", s.CreatePasswordReset(ctx(t), &auth.PasswordReset{TokenHash: hash("r-old"), UserID: alice.ID, CreatedAt: t0(), ExpiresAt: at(time.Hour)}))
	save := func(scope, key string, st auth.AttemptState) {
		t.Helper()
		saveAttempt(t, s, auth.AttemptKey{Scope: scope, Key: key}, st)
	}
	save("pw-ip", "stale", auth.AttemptState{Failures: 3, UpdatedAt: t0()})
	save("pw-ip", "locked", auth.AttemptState{Failures: 9, LockedUntil: at(40 * 24 * time.Hour), UpdatedAt: t0()})
	save("pw-ip", "recent", auth.AttemptState{Failures: 1, UpdatedAt: at(30 * 24 * time.Hour)})
	save("mfa", "1", auth.AttemptState{Failures: 4, UpdatedAt: t0()})

	now := at(30*24*time.Hour + time.Minute)
	n, err := s.Purge(ctx(t), auth.PurgeBefore{Now: now, IdleBefore: at(0), StaleAttemptsBefore: at(24 * time.Hour), AttemptScopes: []string{"pw-ip"}})
	noErr(t, "Purge", err)
	// absolute + idle sessions, p-old, r-old, pw-ip/stale.
	if n != 5 {
		t.Fatalf("Purge removed %d rows, want 5", n)
	}
	if ids := sessionIDs(t, s, alice.ID); !equalIDs(ids, []auth.SessionID{live.ID}) {
		t.Fatalf("sessions after Purge = %v, want only the live one", ids)
	}
	if _, err := pendingLogin(t, s, hash("p-new")); err != nil {
		t.Fatalf("Purge removed an unexpired pending login: %v", err)
	}
	for key, want := range map[auth.AttemptKey]int{{Scope: "pw-ip", Key: "stale"}: 0, {Scope: "pw-ip", Key: "locked"}: 9,
		{Scope: "pw-ip", Key: "recent"}: 1, {Scope: "mfa", Key: "1"}: 4} {
		st, err := s.Attempt(ctx(t), key)
		noErr(t, "Attempt", err)
		if st.Failures != want {
			t.Errorf("after Purge %v has %d failures, want %d", key, st.Failures, want)
		}
	}
}

func testSSHKeys(t *testing.T, s auth.Store) {
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	k := &auth.SSHKey{UserID: alice.ID, Title: "laptop", PublicKey: "ssh-ed25519 AAAA1", Fingerprint: "SHA256:one", CreatedAt: t0()}
	noErr(t, "CreateSSHKey", s.CreateSSHKey(ctx(t), k))
	if k.ID == 0 {
		t.Fatal("CreateSSHKey did not set the id")
	}
	// A fingerprint is unique per account: another account may hold the same key (so
	// nobody can squat a victim's public key), the same account may not twice.
	noErr(t, "CreateSSHKey(same key, other account)", s.CreateSSHKey(ctx(t), &auth.SSHKey{UserID: bob.ID, Title: "x", PublicKey: "ssh-ed25519 AAAA1", Fingerprint: "SHA256:one", CreatedAt: t0()}))
	err := s.CreateSSHKey(ctx(t), &auth.SSHKey{UserID: alice.ID, Title: "again", PublicKey: "ssh-ed25519 AAAA1", Fingerprint: "SHA256:one", CreatedAt: t0()})
	var ce *auth.ConflictError
	if !errors.As(err, &ce) || ce.Field != "ssh_key" {
		t.Fatalf("CreateSSHKey(duplicate) = %v, want ConflictError{ssh_key}", err)
	}
	noErr(t, "TouchSSHKey", s.TouchSSHKey(ctx(t), k.ID, at(time.Minute)))
	ks, err := s.ListSSHKeys(ctx(t), alice.ID)
	noErr(t, "ListSSHKeys", err)
	if len(ks) != 1 || ks[0].Fingerprint != "SHA256:one" || !ks[0].LastUsedAt.Equal(at(time.Minute)) || !ks[0].CreatedAt.Equal(t0()) {
		t.Fatalf("ListSSHKeys = %+v", ks)
	}
	wantErr(t, "DeleteSSHKey(other user)", s.DeleteSSHKey(ctx(t), bob.ID, k.ID), auth.ErrNotFound)
	noErr(t, "DeleteSSHKey", s.DeleteSSHKey(ctx(t), alice.ID, k.ID))
	wantErr(t, "DeleteSSHKey(again)", s.DeleteSSHKey(ctx(t), alice.ID, k.ID), auth.ErrNotFound)
	wantErr(t, "TouchSSHKey(gone)", s.TouchSSHKey(ctx(t), k.ID, t0()), auth.ErrNotFound)
}

// newRequest is a pending recovery request whose cancel token is "cancel-"+id.
func newRequest(t *testing.T, user auth.UserID, subject, ip string, created time.Time) *auth.RecoveryRequest {
	id := hex.EncodeToString(randomBytes(t, 16))
	return &auth.RecoveryRequest{ID: auth.RecoveryRequestID(id), UserID: user, Subject: subject, Status: auth.RecoveryPending,
		Challenge: "latchkey-recovery:" + id, CancelHash: hash("cancel-" + id), CreatedAt: created,
		ExpiresAt: created.Add(15 * time.Minute), IP: ip, UserAgent: "test"}
}

func mustOpen(t *testing.T, s auth.Store, r *auth.RecoveryRequest, lim auth.RecoveryLimit) bool {
	t.Helper()
	ok, _, err := s.OpenRecoveryRequest(ctx(t), r, lim)
	noErr(t, "OpenRecoveryRequest", err)
	return ok
}

func testRecoveryOpen(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	lim := auth.RecoveryLimit{Since: t0(), PerSubject: 5, PerIP: 20}
	// An old request is outside the window and counts for nothing.
	if !mustOpen(t, s, newRequest(t, alice.ID, "user:1", "192.0.2.1", at(-2*time.Hour)), lim) {
		t.Fatal("first request refused")
	}
	for i := range 5 {
		if !mustOpen(t, s, newRequest(t, alice.ID, "user:1", "192.0.2.1", at(time.Duration(i)*time.Minute)), lim) {
			t.Fatalf("request %d refused, want 5 per account", i+1)
		}
	}
	ok, oldest, err := s.OpenRecoveryRequest(ctx(t), newRequest(t, alice.ID, "user:1", "192.0.2.9", at(10*time.Minute)), lim)
	noErr(t, "OpenRecoveryRequest", err)
	if ok || !oldest.Equal(t0()) {
		t.Fatalf("sixth request = %v, oldest %v; want refused with oldest %v", ok, oldest, t0())
	}
	// Decoys (no user) count per IP; fill the IP's 20 with decoys of many logins.
	for i := range 15 {
		if !mustOpen(t, s, newRequest(t, 0, fmt.Sprintf("login:x%d", i), "192.0.2.1", at(time.Minute)), lim) {
			t.Fatalf("decoy %d refused", i)
		}
	}
	if mustOpen(t, s, newRequest(t, 0, "login:y", "192.0.2.1", at(time.Minute)), lim) {
		t.Fatal("21st request from one IP was accepted")
	}
	// Racing for the last slots of one account never exceeds the limit.
	lim2 := auth.RecoveryLimit{Since: t0(), PerSubject: 3, PerIP: 100}
	wins := race(t, 16, func(i int) (bool, error) {
		ok, _, err := s.OpenRecoveryRequest(ctx(t), newRequest(t, alice.ID, "user:race", fmt.Sprintf("198.51.100.%d", i), at(time.Minute)), lim2)
		return ok, err
	})
	if wins != 3 {
		t.Fatalf("16 racing opens with room for 3: %d opened", wins)
	}
	d := newRequest(t, 0, "login:z", "203.0.113.1", t0())
	mustOpen(t, s, d, lim)
	got, err := s.RecoveryRequest(ctx(t), d.ID)
	noErr(t, "RecoveryRequest(decoy)", err)
	if got.UserID != 0 || got.Challenge != d.Challenge || !got.ExpiresAt.Equal(d.ExpiresAt) {
		t.Fatalf("decoy read back = %+v", got)
	}
	list, err := s.ListRecoveryRequests(ctx(t), "", 1000)
	noErr(t, "ListRecoveryRequests", err)
	for _, r := range list {
		if r.UserID == 0 {
			t.Fatal("ListRecoveryRequests shows a decoy")
		}
	}
	_, err = s.RecoveryRequest(ctx(t), "ffffffffffffffffffffffffffffffff")
	wantErr(t, "RecoveryRequest(unknown)", err, auth.ErrNotFound)
}

func testRecoveryVerify(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	lim := auth.RecoveryLimit{Since: at(-time.Hour), PerSubject: 100, PerIP: 100}
	ev := auth.RecoveryEvidence{Method: "ssh_key", KeyFingerprint: "SHA256:k", KeyCreatedAt: at(-time.Hour), VerifiedAt: at(time.Minute)}

	// Sixteen racers try to verify: exactly one wins. (Attempts are counted by the
	// attempt limiter, under the request's own key.)
	r := newRequest(t, alice.ID, "user:1", "192.0.2.1", t0())
	mustOpen(t, s, r, lim)
	wins := race(t, 16, func(int) (bool, error) { return s.VerifyRecoveryRequest(ctx(t), r.ID, ev, at(time.Minute)) })
	if wins != 1 {
		t.Fatalf("16 racing verifications: %d won, want exactly 1", wins)
	}
	got, err := s.RecoveryRequest(ctx(t), r.ID)
	noErr(t, "RecoveryRequest", err)
	if got.Status != auth.RecoveryVerified || got.KeyFingerprint != "SHA256:k" ||
		!got.KeyCreatedAt.Equal(at(-time.Hour)) || !got.VerifiedAt.Equal(at(time.Minute)) {
		t.Fatalf("verified request = %+v", got)
	}

	// An expired request verifies nothing.
	r2 := newRequest(t, alice.ID, "user:1", "192.0.2.1", t0())
	mustOpen(t, s, r2, lim)
	if ok, err := s.VerifyRecoveryRequest(ctx(t), r2.ID, ev, at(15*time.Minute)); err != nil || ok {
		t.Fatalf("VerifyRecoveryRequest(expired) = %v, %v", ok, err)
	}

	// Status moves are conditional.
	if ok, err := s.SetRecoveryStatus(ctx(t), r2.ID, []string{auth.RecoveryVerified}, auth.RecoveryDenied, t0(), "x"); err != nil || ok {
		t.Fatalf("SetRecoveryStatus(from the wrong status) = %v, %v", ok, err)
	}
	if ok, err := s.SetRecoveryStatus(ctx(t), r2.ID, []string{auth.RecoveryPending, auth.RecoveryVerified}, auth.RecoveryClosed, t0(), "five failures"); err != nil || !ok {
		t.Fatalf("SetRecoveryStatus = %v, %v", ok, err)
	}

	// Cancel by the token's hash, once; reminders once each.
	c, err := s.CancelRecoveryRequest(ctx(t), hash("cancel-"+string(r.ID)), at(time.Hour))
	noErr(t, "CancelRecoveryRequest", err)
	if c.ID != r.ID || c.Status != auth.RecoveryCancelled || !c.CancelledAt.Equal(at(time.Hour)) {
		t.Fatalf("cancelled = %+v", c)
	}
	_, err = s.CancelRecoveryRequest(ctx(t), hash("cancel-"+string(r.ID)), at(time.Hour))
	wantErr(t, "CancelRecoveryRequest(again)", err, auth.ErrNotFound)
	_, err = s.CancelRecoveryRequest(ctx(t), hash("cancel-"+string(r2.ID)), at(time.Hour))
	wantErr(t, "CancelRecoveryRequest(closed)", err, auth.ErrNotFound)

	r3 := newRequest(t, alice.ID, "user:1", "192.0.2.1", t0())
	mustOpen(t, s, r3, lim)
	if ok, _ := s.VerifyRecoveryRequest(ctx(t), r3.ID, ev, at(time.Minute)); !ok {
		t.Fatal("VerifyRecoveryRequest refused")
	}
	if n := race(t, 8, func(int) (bool, error) { return s.MarkRecoveryReminder(ctx(t), r3.ID, 1) }); n != 1 {
		t.Fatalf("MarkRecoveryReminder raced: %d won, want 1", n)
	}
	vs, err := s.ListRecoveryRequests(ctx(t), auth.RecoveryVerified, 10)
	noErr(t, "ListRecoveryRequests", err)
	if len(vs) != 1 || vs[0].ID != r3.ID || vs[0].Reminders != 1 {
		t.Fatalf("verified requests = %+v", vs)
	}
}

func testRecoveryApprove(t *testing.T, s auth.Store) {
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	enable(t, s, alice.ID, "a", 0)
	enable(t, s, bob.ID, "b", 0)
	mustSession(t, s, alice.ID, "alice-1", t0())
	bobSession := mustSession(t, s, bob.ID, "bob-1", t0())
	noErr(t, "CreatePendingLogin", s.CreatePendingLogin(ctx(t), &auth.PendingLogin{TokenHash: hash("p"), UserID: alice.ID, CreatedAt: t0(), ExpiresAt: at(time.Hour),
		CredEpoch: epoch(t, s, alice.ID)}))
	lim := auth.RecoveryLimit{Since: at(-time.Hour), PerSubject: 100, PerIP: 100}
	r, other := newRequest(t, alice.ID, "user:1", "192.0.2.1", t0()), newRequest(t, alice.ID, "user:1", "192.0.2.1", t0())
	mustOpen(t, s, r, lim)
	mustOpen(t, s, other, lim)

	reset := &auth.PasswordReset{TokenHash: hash("reset"), CreatedAt: t0(), ExpiresAt: at(24 * time.Hour)}
	_, err := s.ApproveRecoveryRequest(ctx(t), r.ID, "why", at(time.Minute), reset)
	wantErr(t, "ApproveRecoveryRequest(pending)", err, auth.ErrNotFound)
	if _, err := s.TOTP(ctx(t), alice.ID); err != nil {
		t.Fatalf("a refused approval changed something: %v", err)
	}
	s.VerifyRecoveryRequest(ctx(t), r.ID, auth.RecoveryEvidence{Method: "ssh_key", VerifiedAt: at(time.Minute)}, at(time.Minute))

	user, err := s.ApproveRecoveryRequest(ctx(t), r.ID, "video call", at(time.Hour), reset)
	noErr(t, "ApproveRecoveryRequest", err)
	if user != alice.ID || reset.UserID != alice.ID {
		t.Fatalf("ApproveRecoveryRequest = user %d (reset for %d), want %d", user, reset.UserID, alice.ID)
	}
	_, err = s.TOTP(ctx(t), alice.ID)
	wantErr(t, "TOTP after approval", err, auth.ErrNotFound)
	if n, _ := s.RecoveryCodeCounts(ctx(t), alice.ID); n.Total != 0 {
		t.Fatalf("%d recovery codes left after approval", n.Total)
	}
	if ids := sessionIDs(t, s, alice.ID); len(ids) != 0 {
		t.Fatalf("sessions after approval = %v", ids)
	}
	_, err = pendingLogin(t, s, hash("p"))
	wantErr(t, "pending login after approval", err, auth.ErrNotFound)
	for id, want := range map[auth.RecoveryRequestID]string{r.ID: auth.RecoveryApproved, other.ID: auth.RecoveryClosed} {
		got, err := s.RecoveryRequest(ctx(t), id)
		noErr(t, "RecoveryRequest", err)
		if got.Status != want {
			t.Errorf("request %s is %s, want %s", id, got.Status, want)
		}
	}
	// The password is as it was; the reset link works once.
	u, _ := s.UserByID(ctx(t), alice.ID)
	if u.PasswordHash != alice.PasswordHash {
		t.Fatal("approval changed the password")
	}
	if uid, err := s.ResetPassword(ctx(t), hash("reset"), "new", at(2*time.Hour), false); err != nil || uid != alice.ID {
		t.Fatalf("ResetPassword with the approval's link = %d, %v", uid, err)
	}
	// Bob is untouched.
	if _, err := s.TOTP(ctx(t), bob.ID); err != nil {
		t.Fatalf("bob lost TOTP: %v", err)
	}
	if ids := sessionIDs(t, s, bob.ID); !equalIDs(ids, []auth.SessionID{bobSession.ID}) {
		t.Fatalf("bob's sessions = %v", ids)
	}
	_, err = s.ApproveRecoveryRequest(ctx(t), r.ID, "again", at(time.Hour), &auth.PasswordReset{TokenHash: hash("reset2"), CreatedAt: t0(), ExpiresAt: at(time.Hour)})
	wantErr(t, "ApproveRecoveryRequest(twice)", err, auth.ErrNotFound)
}

func testRecoveryPurge(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	lim := auth.RecoveryLimit{Since: at(-100 * time.Hour), PerSubject: 100, PerIP: 100}
	old, recent, verified := newRequest(t, alice.ID, "user:1", "ip", t0()), newRequest(t, 0, "login:x", "ip", at(20*time.Hour)), newRequest(t, alice.ID, "user:1", "ip", t0())
	for _, r := range []*auth.RecoveryRequest{old, recent, verified} {
		mustOpen(t, s, r, lim)
	}
	s.VerifyRecoveryRequest(ctx(t), verified.ID, auth.RecoveryEvidence{Method: "ssh_key", VerifiedAt: at(time.Minute)}, at(time.Minute))
	_, err := s.Purge(ctx(t), auth.PurgeBefore{Now: at(30 * time.Hour), IdleBefore: t0(), StaleAttemptsBefore: t0()})
	noErr(t, "Purge", err)
	_, err = s.RecoveryRequest(ctx(t), old.ID)
	wantErr(t, "expired request a day later", err, auth.ErrNotFound)
	for _, r := range []*auth.RecoveryRequest{recent, verified} {
		if _, err := s.RecoveryRequest(ctx(t), r.ID); err != nil {
			t.Errorf("Purge removed request %s: %v", r.ID, err)
		}
	}
}

// testSessionWithUser: the joined lookup behind every signed-in request returns
// exactly what SessionByTokenHash and UserByID return, and ErrNotFound for an unknown
// or deleted session.
func testSessionWithUser(t *testing.T, s auth.Store) {
	u := mustUser(t, s, "joan")
	other := mustUser(t, s, "kim")
	want := mustSession(t, s, u.ID, "joan-token", at(0))
	mustSession(t, s, other.ID, "kim-token", at(time.Second))

	sess, user, mfa, err := s.SessionWithUser(ctx(t), hash("joan-token"))
	noErr(t, "SessionWithUser", err)
	if mfa != (auth.MFAState{}) {
		t.Errorf("SessionWithUser MFA state without MFA = %+v, want zero", mfa)
	}
	// IP, user agent and password hash are left out by contract.
	trimmed := *want
	trimmed.IP, trimmed.UserAgent = "", ""
	if !sameSession(*sess, trimmed) {
		t.Errorf("SessionWithUser session = %+v, want %+v without IP and user agent", *sess, *want)
	}
	byID, err := s.UserByID(ctx(t), u.ID)
	noErr(t, "UserByID", err)
	if user.ID != byID.ID || user.Username != byID.Username || user.Email != byID.Email ||
		user.EmailVerified != byID.EmailVerified || user.PasswordHash != "" ||
		user.IsAdmin != byID.IsAdmin || !user.CreatedAt.Equal(byID.CreatedAt) || user.CredEpoch != byID.CredEpoch {
		t.Errorf("SessionWithUser user = %+v, want %+v", *user, *byID)
	}

	// With TOTP on and one of three codes used, the state matches MFAState's.
	cred := &auth.TOTPCredential{UserID: u.ID, Secret: auth.EncryptedSecret{KeyID: "k", Ciphertext: []byte("c")},
		LastStep: 1, CreatedAt: t0()}
	noErr(t, "EnableTOTP", s.EnableTOTP(ctx(t), cred, [][]byte{hash("c1"), hash("c2"), hash("c3")}, want.ID))
	if won, err := s.UseRecoveryCode(ctx(t), u.ID, hash("c2"), at(time.Second)); err != nil || !won {
		t.Fatalf("UseRecoveryCode = %v, %v", won, err)
	}
	_, _, mfa, err = s.SessionWithUser(ctx(t), hash("joan-token"))
	noErr(t, "SessionWithUser(MFA on)", err)
	state, err := s.MFAState(ctx(t), u.ID)
	noErr(t, "MFAState", err)
	if wantMFA := (auth.MFAState{Enabled: true, TOTP: true, Codes: auth.RecoveryCodeCounts{Total: 3, Remaining: 2}}); mfa != wantMFA ||
		state != wantMFA {
		t.Errorf("SessionWithUser MFA state = %+v, MFAState = %+v, want both %+v", mfa, state, wantMFA)
	}
	// Kim's session sees Kim's state, not Joan's.
	_, _, mfa, err = s.SessionWithUser(ctx(t), hash("kim-token"))
	noErr(t, "SessionWithUser(kim)", err)
	if mfa != (auth.MFAState{}) {
		t.Errorf("another user's session shows MFA state %+v, want zero", mfa)
	}

	_, _, _, err = s.SessionWithUser(ctx(t), hash("nobody-token"))
	wantErr(t, "SessionWithUser(unknown)", err, auth.ErrNotFound)
	noErr(t, "DeleteSession", s.DeleteSession(ctx(t), u.ID, want.ID))
	_, _, _, err = s.SessionWithUser(ctx(t), hash("joan-token"))
	wantErr(t, "SessionWithUser(deleted)", err, auth.ErrNotFound)
}

// testCredEpoch: every change that ends a user's sessions adds one to the user's
// credentials epoch and re-stamps the kept session, and no session or pending login
// can be stored under an epoch that has moved on — not even by a sign-in that raced
// the change.
func testCredEpoch(t *testing.T, s auth.Store) {
	alice := mustUser(t, s, "alice")
	bob := mustUser(t, s, "bob")
	if alice.CredEpoch != 0 || epoch(t, s, alice.ID) != 0 {
		t.Fatalf("a new user has epoch %d (stored %d), want 0", alice.CredEpoch, epoch(t, s, alice.ID))
	}
	bobs := mustSession(t, s, bob.ID, "bob", t0())

	stale := &auth.Session{UserID: alice.ID, TokenHash: hash("stale"), CreatedAt: t0(), ExpiresAt: at(time.Hour), CredEpoch: 1}
	wantErr(t, "CreateSession(stale epoch)", s.CreateSession(ctx(t), stale), auth.ErrCredentialsChanged)
	if _, err := s.SessionByTokenHash(ctx(t), hash("stale")); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("CreateSession(stale epoch) stored a session: %v", err)
	}
	err := s.CreatePendingLogin(ctx(t), &auth.PendingLogin{TokenHash: hash("stale-p"), UserID: alice.ID,
		CreatedAt: t0(), ExpiresAt: at(time.Hour), CredEpoch: 1})
	wantErr(t, "CreatePendingLogin(stale epoch)", err, auth.ErrCredentialsChanged)
	if _, err := pendingLogin(t, s, hash("stale-p")); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("CreatePendingLogin(stale epoch) stored a pending login: %v", err)
	}

	lim := auth.RecoveryLimit{Since: at(-time.Hour), PerSubject: 100, PerIP: 100}
	changes := []struct {
		name string
		keep bool // whether the change can spare the caller's session
		fn   func(keep auth.SessionID) error
	}{
		{"ChangePassword", true, func(keep auth.SessionID) error {
			return s.ChangePassword(ctx(t), alice.ID, "hash-2", keep)
		}},
		{"EnableTOTP", true, func(keep auth.SessionID) error {
			c := &auth.TOTPCredential{UserID: alice.ID, Secret: secret("e"), LastStep: 1000, CreatedAt: t0()}
			return s.EnableTOTP(ctx(t), c, codes("e", 4), keep)
		}},
		{"DisableMFA", true, func(keep auth.SessionID) error {
			_, err := s.DisableMFA(ctx(t), alice.ID, keep)
			return err
		}},
		{"DeleteSessions", true, func(keep auth.SessionID) error {
			_, err := s.DeleteSessions(ctx(t), alice.ID, keep)
			return err
		}},
		{"ResetPassword", false, func(auth.SessionID) error {
			if err := s.CreatePasswordReset(ctx(t), &auth.PasswordReset{TokenHash: hash("reset"), UserID: alice.ID,
				CreatedAt: t0(), ExpiresAt: at(time.Hour)}); err != nil {
				return err
			}
			_, err := s.ResetPassword(ctx(t), hash("reset"), "hash-3", t0(), false)
			return err
		}},
		{"ApproveRecoveryRequest", false, func(auth.SessionID) error {
			r := newRequest(t, alice.ID, "user:alice", "192.0.2.1", t0())
			mustOpen(t, s, r, lim)
			s.VerifyRecoveryRequest(ctx(t), r.ID, auth.RecoveryEvidence{Method: "ssh_key", VerifiedAt: at(time.Minute)}, at(time.Minute))
			_, err := s.ApproveRecoveryRequest(ctx(t), r.ID, "why", at(time.Minute),
				&auth.PasswordReset{TokenHash: hash("approved"), CreatedAt: t0(), ExpiresAt: at(time.Hour)})
			return err
		}},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			before := epoch(t, s, alice.ID)
			keep := mustSession(t, s, alice.ID, "keep-"+c.name, t0())
			mustSession(t, s, alice.ID, "other-"+c.name, t0())
			noErr(t, "CreatePendingLogin", s.CreatePendingLogin(ctx(t), &auth.PendingLogin{TokenHash: hash("p-" + c.name),
				UserID: alice.ID, CreatedAt: t0(), ExpiresAt: at(time.Hour), CredEpoch: before}))
			var keepID auth.SessionID
			if c.keep {
				keepID = keep.ID
			}

			noErr(t, c.name, c.fn(keepID))
			after := epoch(t, s, alice.ID)
			if after != before+1 {
				t.Fatalf("%s: epoch %d -> %d, want %d", c.name, before, after, before+1)
			}
			var want []auth.SessionID
			if c.keep {
				want = []auth.SessionID{keep.ID}
				got, err := s.SessionByTokenHash(ctx(t), keep.TokenHash)
				noErr(t, "SessionByTokenHash(keep)", err)
				if got.CredEpoch != after {
					t.Fatalf("%s: kept session has epoch %d, want %d", c.name, got.CredEpoch, after)
				}
			}
			if ids := sessionIDs(t, s, alice.ID); !equalIDs(ids, want) {
				t.Fatalf("%s: sessions = %v, want %v", c.name, ids, want)
			}
			if _, err := pendingLogin(t, s, hash("p-"+c.name)); !errors.Is(err, auth.ErrNotFound) {
				t.Fatalf("%s: pending login survived: %v", c.name, err)
			}
			old := &auth.Session{UserID: alice.ID, TokenHash: hash("old-" + c.name), CreatedAt: t0(),
				ExpiresAt: at(time.Hour), CredEpoch: before}
			wantErr(t, "CreateSession(epoch before "+c.name+")", s.CreateSession(ctx(t), old), auth.ErrCredentialsChanged)
			// A session of the new epoch is fine, and the next change ends it.
			mustSession(t, s, alice.ID, "new-"+c.name, t0())
		})
	}
	if epoch(t, s, bob.ID) != 0 {
		t.Fatalf("alice's changes moved bob's epoch to %d", epoch(t, s, bob.ID))
	}
	if ids := sessionIDs(t, s, bob.ID); !equalIDs(ids, []auth.SessionID{bobs.ID}) {
		t.Fatalf("alice's changes ended bob's sessions: %v", ids)
	}

	// A sign-in that checked the password under the old epoch races the change: it may
	// commit first (and the change then ends its session) or after (and is refused),
	// but its session or pending login never outlives the change.
	for i := range 20 {
		e := epoch(t, s, alice.ID)
		tok := fmt.Sprintf("race-%d", i)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		start := make(chan struct{})
		wg.Go(func() { <-start; errs[0] = s.ChangePassword(ctx(t), alice.ID, tok, 0) })
		wg.Go(func() {
			<-start
			errs[1] = s.CreateSession(ctx(t), &auth.Session{UserID: alice.ID, TokenHash: hash(tok + "-s"),
				CreatedAt: t0(), ExpiresAt: at(time.Hour), CredEpoch: e})
		})
		wg.Go(func() {
			<-start
			errs[2] = s.CreatePendingLogin(ctx(t), &auth.PendingLogin{TokenHash: hash(tok + "-p"), UserID: alice.ID,
				CreatedAt: t0(), ExpiresAt: at(time.Hour), CredEpoch: e})
		})
		wg.Go(func() {
			<-start
			errs[3] = s.FinishSignIn(ctx(t), &auth.SignInFinish{Session: &auth.Session{UserID: alice.ID,
				TokenHash: hash(tok + "-f"), CreatedAt: t0(), ExpiresAt: at(time.Hour), CredEpoch: e}})
		})
		close(start)
		wg.Wait()
		noErr(t, "ChangePassword(racing)", errs[0])
		for _, err := range errs[1:] {
			if err != nil && !errors.Is(err, auth.ErrCredentialsChanged) {
				t.Fatalf("a sign-in racing ChangePassword = %v, want nil or ErrCredentialsChanged", err)
			}
		}
		if ids := sessionIDs(t, s, alice.ID); len(ids) != 0 {
			t.Fatalf("round %d: a session opened under epoch %d outlived the change: %v", i, e, ids)
		}
		if _, err := pendingLogin(t, s, hash(tok+"-p")); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("round %d: a pending login under epoch %d outlived the change: %v", i, e, err)
		}
	}

	// A second-factor finish racing DisableMFA touches the same rows (pending login,
	// credential, codes, user) from the other side: it must neither survive the change
	// nor deadlock with it (which PostgreSQL would report as an error).
	for i := range 20 {
		enable(t, s, alice.ID, fmt.Sprintf("race-mfa-%d", i), 0)
		e := epoch(t, s, alice.ID)
		p := hash(fmt.Sprintf("race-mfa-%d-p", i))
		noErr(t, "CreatePendingLogin", s.CreatePendingLogin(ctx(t), &auth.PendingLogin{TokenHash: p,
			UserID: alice.ID, CreatedAt: t0(), ExpiresAt: at(time.Hour), CredEpoch: e}))
		var wg sync.WaitGroup
		var disableErr, finishErr error
		start := make(chan struct{})
		wg.Go(func() { <-start; _, disableErr = s.DisableMFA(ctx(t), alice.ID, 0) })
		wg.Go(func() {
			<-start
			finishErr = s.FinishSignIn(ctx(t), &auth.SignInFinish{
				Session: &auth.Session{UserID: alice.ID, TokenHash: hash(fmt.Sprintf("race-mfa-%d-s", i)),
					CreatedAt: t0(), ExpiresAt: at(time.Hour), CredEpoch: e},
				PendingHash: p, TOTPStep: 1001, RecoveryCodeHash: hash(fmt.Sprintf("race-mfa-%d-1", i)),
				Counters: []auth.AttemptStep{{Key: auth.AttemptKey{Scope: "mfa", Key: "alice"}, Step: zeroStep(t0())}}})
		})
		close(start)
		wg.Wait()
		noErr(t, "DisableMFA(racing)", disableErr)
		if finishErr != nil && !errors.Is(finishErr, auth.ErrPendingGone) && !errors.Is(finishErr, auth.ErrFactorUsed) {
			t.Fatalf("round %d: FinishSignIn racing DisableMFA = %v, want nil, ErrPendingGone or ErrFactorUsed", i, finishErr)
		}
		if ids := sessionIDs(t, s, alice.ID); len(ids) != 0 {
			t.Fatalf("round %d: a second-factor sign-in outlived DisableMFA: %v", i, ids)
		}
	}
}

// finishFixture is an account half-way through a sign-in: TOTP on (last step 1000,
// codes <name>-0 … <name>-15), a pending login, and failure counters that a success
// must zero — and one it must leave alone.
type finishFixture struct {
	user    *auth.User
	epoch   int64
	pending []byte
	reset   []auth.AttemptKey // the counters the finish zeroes; the last one has no row
	other   auth.AttemptKey   // a counter the finish must not touch
	counted auth.AttemptKey   // a counter the finish's step takes one failure from
}

// takeOne is a counter step that takes one failure back.
func takeOne(prev auth.AttemptState) (auth.AttemptState, bool) {
	next := prev
	next.Failures--
	return next, true
}

// zeroStep is a counter step that resets a counter at time at, as a success does, and
// leaves a counter that has no row as it is.
func zeroStep(at time.Time) func(auth.AttemptState) (auth.AttemptState, bool) {
	return func(prev auth.AttemptState) (auth.AttemptState, bool) {
		if prev.Version == 0 {
			return prev, false
		}
		return auth.AttemptState{UpdatedAt: at}, true
	}
}

func newFinishFixture(t *testing.T, s auth.Store, name string) *finishFixture {
	t.Helper()
	u := mustUser(t, s, name)
	enable(t, s, u.ID, name, 0)
	fx := &finishFixture{user: u, epoch: epoch(t, s, u.ID), pending: hash(name + "-pending"),
		// Out of order on purpose: stores must cope with any order.
		reset: []auth.AttemptKey{{Scope: "pw-account", Key: name}, {Scope: "mfa", Key: name}, {Scope: "mfa", Key: name + "-never"}},
		other: auth.AttemptKey{Scope: "pw-ip", Key: name}, counted: auth.AttemptKey{Scope: "pw-ip", Key: name + "-counted"}}
	noErr(t, "CreatePendingLogin", s.CreatePendingLogin(ctx(t), &auth.PendingLogin{TokenHash: fx.pending,
		UserID: u.ID, CreatedAt: t0(), ExpiresAt: at(5 * time.Minute), CredEpoch: fx.epoch}))
	for _, k := range append(fx.reset[:2:2], fx.other, fx.counted) {
		saveAttempt(t, s, k, auth.AttemptState{Failures: 3, Locks: 1, LockedUntil: at(time.Hour), UpdatedAt: t0()})
	}
	return fx
}

// finish is a sign-in finish for fx that spends TOTP step 1001 and code <name>-3.
func (fx *finishFixture) finish(token string) *auth.SignInFinish {
	u := fx.user
	return &auth.SignInFinish{
		Session: &auth.Session{UserID: u.ID, TokenHash: hash(token), CreatedAt: at(time.Minute),
			LastSeenAt: at(time.Minute), ExpiresAt: at(30 * 24 * time.Hour), ReauthAt: at(time.Minute),
			IP: "192.0.2.7", UserAgent: "ua", CredEpoch: fx.epoch, Method: auth.SessionPasswordTOTP, MFAAt: at(time.Minute)},
		PendingHash:      fx.pending,
		TOTPStep:         1001,
		RecoveryCodeHash: hash(u.Username + "-3"),
		Counters:         fx.counters(),
		Event: &auth.Event{UserID: u.ID, Time: at(time.Minute), Event: "login_mfa", Outcome: "success",
			IP: "192.0.2.7", UserAgent: "ua", Detail: "totp"},
	}
}

// counters are the finish's counter steps: zero the reset counters (out of order on
// purpose: stores must cope with any order), take one failure from counted.
func (fx *finishFixture) counters() []auth.AttemptStep {
	var steps []auth.AttemptStep
	for _, k := range fx.reset {
		steps = append(steps, auth.AttemptStep{Key: k, Step: zeroStep(at(time.Minute))})
	}
	return append(steps, auth.AttemptStep{Key: fx.counted, Step: takeOne})
}

// state is everything FinishSignIn may change for fx, printed for comparison.
func (fx *finishFixture) state(t *testing.T, s auth.Store) string {
	t.Helper()
	id := fx.user.ID
	_, perr := pendingLogin(t, s, fx.pending)
	c, err := s.TOTP(ctx(t), id)
	noErr(t, "TOTP", err)
	counts, err := s.RecoveryCodeCounts(ctx(t), id)
	noErr(t, "RecoveryCodeCounts", err)
	var attempts []auth.AttemptState
	for _, k := range append(fx.reset, fx.other, fx.counted) {
		a, err := s.Attempt(ctx(t), k)
		noErr(t, "Attempt", err)
		attempts = append(attempts, a)
	}
	es, err := s.Events(ctx(t), id, 0)
	noErr(t, "Events", err)
	return fmt.Sprintf("pending %v, last step %d, codes %+v, sessions %v, attempts %+v, events %d, epoch %d",
		perr == nil, c.LastStep, counts, sessionIDs(t, s, id), attempts, len(es), epoch(t, s, id))
}

// testFinishSignIn: a successful finish applies every write; a failed one, whatever
// the step that fails, applies none; and racing finishes spend a pending login or a
// TOTP step once.
func testFinishSignIn(t *testing.T, s auth.Store) {
	t.Run("success", func(t *testing.T) {
		fx := newFinishFixture(t, s, "ok")
		f := fx.finish("ok-session")
		noErr(t, "FinishSignIn", s.FinishSignIn(ctx(t), f))
		if f.Session.ID == 0 || f.Event.ID == 0 {
			t.Fatalf("FinishSignIn set session id %d, event id %d; want both", f.Session.ID, f.Event.ID)
		}
		if _, err := pendingLogin(t, s, fx.pending); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("pending login after FinishSignIn: %v, want ErrNotFound", err)
		}
		if c, _ := s.TOTP(ctx(t), fx.user.ID); c.LastStep != 1001 {
			t.Fatalf("last step after FinishSignIn = %d, want 1001", c.LastStep)
		}
		if ok, _ := s.UseRecoveryCode(ctx(t), fx.user.ID, f.RecoveryCodeHash, at(time.Hour)); ok {
			t.Fatal("the recovery code still worked after FinishSignIn")
		}
		if c, _ := s.RecoveryCodeCounts(ctx(t), fx.user.ID); c.Remaining != 15 {
			t.Fatalf("recovery codes after FinishSignIn = %+v, want 15 remaining", c)
		}
		got, err := s.SessionByTokenHash(ctx(t), f.Session.TokenHash)
		noErr(t, "SessionByTokenHash", err)
		if !sameSession(*got, *f.Session) {
			t.Fatalf("stored session = %+v, want %+v", *got, *f.Session)
		}
		zeroed := auth.AttemptState{UpdatedAt: f.Session.CreatedAt, Version: 2}
		for _, k := range fx.reset[:2] {
			if a, _ := s.Attempt(ctx(t), k); !sameAttempt(a, zeroed) {
				t.Errorf("Attempt(%v) after FinishSignIn = %+v, want %+v", k, a, zeroed)
			}
		}
		if a, _ := s.Attempt(ctx(t), fx.reset[2]); a != (auth.AttemptState{}) {
			t.Errorf("resetting a counter without a row created %+v", a)
		}
		if a, _ := s.Attempt(ctx(t), fx.other); a.Failures != 3 || a.Version != 1 {
			t.Errorf("a counter not listed changed: %+v", a)
		}
		if a, _ := s.Attempt(ctx(t), fx.counted); a.Failures != 2 || a.Version != 2 || !a.LockedUntil.Equal(at(time.Hour)) {
			t.Errorf("the counter of the finish's step = %+v, want one failure fewer (2), version 2, lock kept", a)
		}
		es, err := s.Events(ctx(t), fx.user.ID, 0)
		noErr(t, "Events", err)
		if len(es) != 1 || es[0] != *f.Event {
			t.Fatalf("Events = %+v, want just %+v", es, *f.Event)
		}
	})

	// Bob's codes are the "another user's code" case: spending one on alice's sign-in
	// must fail and leave bob's account as it was.
	bob := newFinishFixture(t, s, "bob")
	bobBefore := bob.state(t, s)
	failures := []struct {
		name   string
		before func(t *testing.T, fx *finishFixture) // what happened meanwhile
		change func(f *auth.SignInFinish)
		want   error
	}{
		{"pending consumed", func(t *testing.T, fx *finishFixture) {
			if ok, err := s.ConsumePendingLogin(ctx(t), fx.pending); err != nil || !ok {
				t.Fatalf("ConsumePendingLogin = %v, %v", ok, err)
			}
		}, nil, auth.ErrPendingGone},
		{"pending unknown", nil, func(f *auth.SignInFinish) { f.PendingHash = hash("nobody") }, auth.ErrPendingGone},
		{"step equal", nil, func(f *auth.SignInFinish) { f.TOTPStep = 1000 }, auth.ErrFactorUsed},
		{"step earlier", nil, func(f *auth.SignInFinish) { f.TOTPStep = 999 }, auth.ErrFactorUsed},
		{"code used", func(t *testing.T, fx *finishFixture) {
			if ok, err := s.UseRecoveryCode(ctx(t), fx.user.ID, hash(fx.user.Username+"-3"), t0()); err != nil || !ok {
				t.Fatalf("UseRecoveryCode = %v, %v", ok, err)
			}
		}, nil, auth.ErrFactorUsed},
		{"code unknown", nil, func(f *auth.SignInFinish) { f.RecoveryCodeHash = hash("no-such-code") }, auth.ErrFactorUsed},
		{"another user's code", nil, func(f *auth.SignInFinish) { f.RecoveryCodeHash = hash("bob-3") }, auth.ErrFactorUsed},
		{"stale epoch", func(t *testing.T, fx *finishFixture) {
			// A credential change that spared a session: the pending login went with
			// the rest, so this finish names none and fails only on the epoch.
			keep := mustSession(t, s, fx.user.ID, fx.user.Username+"-keep", t0())
			noErr(t, "ChangePassword", s.ChangePassword(ctx(t), fx.user.ID, "changed", keep.ID))
		}, func(f *auth.SignInFinish) { f.PendingHash = nil }, auth.ErrCredentialsChanged},
		{"stale epoch with pending", nil, func(f *auth.SignInFinish) { f.Session.CredEpoch-- }, auth.ErrCredentialsChanged},
	}
	// A context that ends between the finish's statements and its commit: all or
	// nothing. (SQLite's group commit finishes a write it has started whatever the
	// context says; PostgreSQL's COMMIT fails and rolls back.) The store serves the
	// next finish either way: no connection is left inside the transaction.
	t.Run("context ends before commit", func(t *testing.T) {
		fx := newFinishFixture(t, s, "cancel")
		f := fx.finish("cancel-session")
		c, cancel := context.WithCancel(ctx(t))
		defer cancel()
		f.Counters = append(f.Counters, auth.AttemptStep{Key: auth.AttemptKey{Scope: "pw-ip", Key: "cancel"},
			Step: func(prev auth.AttemptState) (auth.AttemptState, bool) { cancel(); return prev, false }})
		before := fx.state(t, s)
		err := s.FinishSignIn(c, f)
		after := fx.state(t, s)
		_, serr := s.SessionByTokenHash(ctx(t), f.Session.TokenHash)
		switch {
		case err != nil && after != before:
			t.Fatalf("FinishSignIn failed (%v) but changed the store:\n got %s\nwant %s", err, after, before)
		case err == nil && (serr != nil || after == before):
			t.Fatalf("FinishSignIn succeeded but its session reads %v and the store did not change", serr)
		}
		again := newFinishFixture(t, s, "after-cancel")
		noErr(t, "FinishSignIn after a cancelled one", s.FinishSignIn(ctx(t), again.finish("after-cancel-session")))
	})

	for i, c := range failures {
		t.Run(c.name, func(t *testing.T) {
			fx := newFinishFixture(t, s, fmt.Sprintf("f%d", i))
			if c.before != nil {
				c.before(t, fx)
			}
			f := fx.finish(fmt.Sprintf("f%d-session", i))
			if c.change != nil {
				c.change(f)
			}
			want := fx.state(t, s)
			wantErr(t, "FinishSignIn("+c.name+")", s.FinishSignIn(ctx(t), f), c.want)
			if got := fx.state(t, s); got != want {
				t.Fatalf("FinishSignIn(%s) changed the store:\n got %s\nwant %s", c.name, got, want)
			}
			if f.Session.ID != 0 || f.Event.ID != 0 {
				t.Fatalf("a failed FinishSignIn set session id %d, event id %d", f.Session.ID, f.Event.ID)
			}
			if _, err := s.SessionByTokenHash(ctx(t), f.Session.TokenHash); !errors.Is(err, auth.ErrNotFound) {
				t.Fatalf("a failed FinishSignIn stored its session: %v", err)
			}
		})
	}
	if got := bob.state(t, s); got != bobBefore {
		t.Fatalf("the failed finishes changed bob's account:\n got %s\nwant %s", got, bobBefore)
	}

	t.Run("race on the pending login", func(t *testing.T) {
		fx := newFinishFixture(t, s, "racep")
		wins := race(t, 16, func(i int) (bool, error) {
			f := fx.finish(fmt.Sprintf("racep-%d", i))
			f.TOTPStep, f.RecoveryCodeHash = 0, nil
			return finished(s.FinishSignIn(ctx(t), f), auth.ErrPendingGone)
		})
		if wins != 1 {
			t.Fatalf("16 FinishSignIn with one pending login: %d won, want 1", wins)
		}
		if ids := sessionIDs(t, s, fx.user.ID); len(ids) != 1 {
			t.Fatalf("sessions after the race = %v, want one", ids)
		}
	})

	t.Run("race on the TOTP step", func(t *testing.T) {
		fx := newFinishFixture(t, s, "races")
		pendings := make([][]byte, 16)
		for i := range pendings {
			pendings[i] = hash(fmt.Sprintf("races-pending-%d", i))
			noErr(t, "CreatePendingLogin", s.CreatePendingLogin(ctx(t), &auth.PendingLogin{TokenHash: pendings[i],
				UserID: fx.user.ID, CreatedAt: t0(), ExpiresAt: at(5 * time.Minute), CredEpoch: fx.epoch}))
		}
		wins := race(t, 16, func(i int) (bool, error) {
			f := fx.finish(fmt.Sprintf("races-%d", i))
			f.PendingHash, f.TOTPStep, f.RecoveryCodeHash = pendings[i], 2000, nil
			return finished(s.FinishSignIn(ctx(t), f), auth.ErrFactorUsed)
		})
		if wins != 1 {
			t.Fatalf("16 FinishSignIn with one TOTP step: %d won, want 1", wins)
		}
		if ids := sessionIDs(t, s, fx.user.ID); len(ids) != 1 {
			t.Fatalf("sessions after the race = %v, want one", ids)
		}
		// The losers rolled back: their pending logins are still there to retry.
		left := 0
		for _, p := range pendings {
			if _, err := pendingLogin(t, s, p); err == nil {
				left++
			}
		}
		if left != 15 {
			t.Fatalf("%d pending logins left after the race, want the 15 losers'", left)
		}
	})
}

// finished reads a racing FinishSignIn: nil won, lost (the expected loss) did not,
// anything else is an error.
func finished(err, lost error) (bool, error) {
	if errors.Is(err, lost) {
		return false, nil
	}
	return err == nil, err
}

func testMFAState(t *testing.T, s auth.Store) {
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	check := func(name string, user auth.UserID, wantOn bool, want auth.RecoveryCodeCounts) {
		t.Helper()
		state, err := s.MFAState(ctx(t), user)
		on, c := state.Enabled, state.Codes
		if err != nil || on != wantOn || c != want {
			t.Fatalf("%s: MFAState = %v, %+v, %v; want %v, %+v", name, on, c, err, wantOn, want)
		}
	}
	check("new user", alice.ID, false, auth.RecoveryCodeCounts{})
	enable(t, s, alice.ID, "a", 0)
	check("enabled", alice.ID, true, auth.RecoveryCodeCounts{Total: 16, Remaining: 16})
	check("other user", bob.ID, false, auth.RecoveryCodeCounts{})
	if won, err := s.UseRecoveryCode(ctx(t), alice.ID, codes("a", 16)[3], t0()); err != nil || !won {
		t.Fatalf("UseRecoveryCode = %v, %v", won, err)
	}
	check("one code used", alice.ID, true, auth.RecoveryCodeCounts{Total: 16, Remaining: 15})
	if _, err := s.DisableMFA(ctx(t), alice.ID, 0); err != nil {
		t.Fatal(err)
	}
	check("removed", alice.ID, false, auth.RecoveryCodeCounts{})
}
