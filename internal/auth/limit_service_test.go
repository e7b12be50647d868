package auth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/keys"
	"github.com/latchkey/latchkey/internal/password"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/storetest"
)

const rightPassword = "pw-alice-correct-horse"

// newService is a Service on a real SQLite file with cheap argon2id parameters and a
// fixed clock.
func newService(t *testing.T) (*auth.Service, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), storetest.SQLitePath(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ring, err := keys.New(bytes.Repeat([]byte{7}, keys.Size))
	if err != nil {
		t.Fatal(err)
	}
	p := password.DefaultParams()
	p.Memory, p.Time = 1024, 1
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	svc := auth.New(auth.Config{}, auth.Deps{Store: st, Keys: ring, Hasher: password.NewHasher(p, 2, time.Minute, 1000, rand.Reader),
		Clock: func() time.Time { return now }})
	t.Cleanup(svc.Wait)
	return svc, st
}

// verifyEmail marks u's address verified through the store, as following the mailed
// link does: only a verified address is unique and receives reset mail.
func verifyEmail(t *testing.T, st auth.Store, u *auth.User) {
	t.Helper()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := sha256.Sum256([]byte("verify-" + u.Username))
	l := &auth.EmailLink{TokenHash: h[:], UserID: u.ID, Purpose: auth.EmailLinkVerify, Email: u.Email,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateEmailLink(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ConfirmEmail(t.Context(), h[:], now, nil); err != nil {
		t.Fatal(err)
	}
}

// afterSlot is a context that ends once the counter key holds a slot: the request is
// gone after its attempt was counted first and before its check ran.
type afterSlot struct {
	context.Context
	st  auth.Store
	key auth.AttemptKey
}

func (c afterSlot) Err() error {
	a, err := c.st.Attempt(context.Background(), c.key)
	if err != nil || a.InFlight > 0 {
		return context.Canceled
	}
	return nil
}

func counter(t *testing.T, st auth.Store, key auth.AttemptKey) auth.AttemptState {
	t.Helper()
	a, err := st.Attempt(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCancelledChecksGiveTheirCountBack: on every path that hashes after counting, a
// request that ends after its count and before its check leaves the counter as it was:
// no failure, no slot held.
func TestCancelledChecksGiveTheirCountBack(t *testing.T) {
	svc, st := newService(t)
	c := auth.Client{IP: "192.0.2.1"}
	u, err := svc.Signup(t.Context(), c, "alice", "alice@example.com", rightPassword)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Login(t.Context(), c, "alice", rightPassword)
	if err != nil {
		t.Fatal(err)
	}
	p := &auth.Principal{User: u, Session: res.Session}
	account := auth.AttemptKey{Scope: "pw-account", Key: fmt.Sprint(int64(u.ID))}
	tests := []struct {
		name string
		key  auth.AttemptKey
		call func(ctx context.Context) error
	}{
		{"sign-in", account, func(ctx context.Context) error {
			_, err := svc.Login(ctx, c, "alice", "wrong password")
			return err
		}},
		{"re-authentication", account, func(ctx context.Context) error {
			_, err := svc.Reauth(ctx, c, p, "wrong password", "", "")
			return err
		}},
		{"password change", account, func(ctx context.Context) error {
			return svc.ChangePassword(ctx, c, p, "wrong password", "pw-alice-another-horse")
		}},
		{"reset", auth.AttemptKey{Scope: "reset-ip", Key: c.IP}, func(ctx context.Context) error {
			return svc.ResetPassword(ctx, c, "no-such-link", "pw-alice-another-horse", true)
		}},
		{"sign-up", auth.AttemptKey{Scope: "signup-ip", Key: c.IP}, func(ctx context.Context) error {
			_, err := svc.Signup(ctx, c, "bob", "bob@example.com", "pw-bob-correct-horse")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counter(t, st, tt.key)
			err := tt.call(afterSlot{t.Context(), st, tt.key})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("call with the client gone = %v, want context.Canceled", err)
			}
			after := counter(t, st, tt.key)
			if after.Failures != before.Failures || after.InFlight != 0 || !after.LockedUntil.Equal(before.LockedUntil) {
				t.Fatalf("counter %+v after a cancelled check, want %+v with no slot held", after, before)
			}
			// And the same call, not cancelled, counts.
			_ = tt.call(t.Context())
			if got := counter(t, st, tt.key); got.Failures != before.Failures+1 || got.InFlight != 0 {
				t.Fatalf("counter %+v after a completed check, want one failure more than %+v", got, before)
			}
		})
	}
}

// TestParallelRightPasswords: right passwords sent at once to one account never see
// 429 while fewer failures than the limit happened: checks beyond the free slots wait
// for one.
func TestParallelRightPasswords(t *testing.T) {
	svc, st := newService(t)
	c := auth.Client{IP: "192.0.2.1"}
	u, err := svc.Signup(t.Context(), c, "alice", "alice@example.com", rightPassword)
	if err != nil {
		t.Fatal(err)
	}
	for prior := range 5 {
		t.Run(fmt.Sprintf("after %d failures", prior), func(t *testing.T) {
			for range prior {
				if _, err := svc.Login(t.Context(), c, "alice", "wrong password"); !errors.Is(err, auth.ErrInvalidCredentials) {
					t.Fatalf("wrong password = %v", err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for range 16 {
				wg.Go(func() {
					if _, err := svc.Login(t.Context(), c, "alice", rightPassword); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				// Overloaded only when a wait for a slot ran past SlotWait (a slow
				// machine); never RateLimited.
				if e := auth.AsError(err); e == nil || e.Kind != auth.KindOverloaded {
					t.Errorf("a right password among 16 at once: %v", err)
				}
			}
			if a := counter(t, st, auth.AttemptKey{Scope: "pw-account", Key: fmt.Sprint(int64(u.ID))}); a.Failures != 0 || a.InFlight != 0 {
				t.Fatalf("counter after the successes = %+v, want reset", a)
			}
		})
	}
}

// TestParallelWrongPasswords: of 40 wrong passwords sent at once to one account, at
// most the limit is checked; the others wait, then see the lock.
func TestParallelWrongPasswords(t *testing.T) {
	svc, _ := newService(t)
	c := auth.Client{IP: "192.0.2.1"}
	if _, err := svc.Signup(t.Context(), c, "alice", "alice@example.com", rightPassword); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			_, err := svc.Login(t.Context(), c, "alice", "wrong password")
			code := "ok"
			if e := auth.AsError(err); e != nil {
				code = e.Code
			} else if err != nil {
				code = err.Error()
			}
			mu.Lock()
			counts[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts["invalid_credentials"] > 5 || counts["invalid_credentials"]+counts["too_many_attempts"]+counts["overloaded"] != 40 {
		t.Fatalf("40 wrong passwords at once: %v, want at most 5 checked (invalid_credentials)", counts)
	}
}

// TestSignupChecksBeforeHashing: a taken username or email, or a weak password, is
// refused without a hash and without using the address's allowance; the allowance is
// 10 an hour.
func TestSignupChecksBeforeHashing(t *testing.T) {
	svc, st := newService(t)
	c := auth.Client{IP: "2001:db8:1:2::7"}
	alice, err := svc.Signup(t.Context(), c, "alice", "alice@example.com", rightPassword)
	if err != nil {
		t.Fatal(err)
	}
	verifyEmail(t, st, alice) // an unverified address blocks nobody
	refusals := []struct {
		username, email, pw, code string
	}{
		{"Alice", "other@example.com", rightPassword, "username_taken"},
		{"other", "ALICE@example.com", rightPassword, "email_taken"},
		{"bob", "bob@example.com", "password", "weak_password"},
		{"bob", "bob@example.com", "12345678", "weak_password"},
		{"bobbybob", "bob@example.com", "bobbybob", "weak_password"},
	}
	for _, r := range refusals {
		_, err := svc.Signup(t.Context(), c, r.username, r.email, r.pw)
		if e := auth.AsError(err); e == nil || e.Code != r.code || e.Message == "" {
			t.Errorf("Signup(%q, %q, %q) = %v, want %s with a message", r.username, r.email, r.pw, err, r.code)
		}
	}
	key := auth.AttemptKey{Scope: "signup-ip", Key: "2001:db8:1:2::/64"}
	if a := counter(t, st, key); a.Failures != 1 {
		t.Fatalf("the address's sign-ups = %+v, want only the one that succeeded", a)
	}
	// Another address of the same /64 shares the allowance.
	c.IP = "2001:db8:1:2:ffff::1"
	for i := 2; i <= 10; i++ {
		if _, err := svc.Signup(t.Context(), c, fmt.Sprintf("user%d", i), fmt.Sprintf("user%d@example.com", i), rightPassword); err != nil {
			t.Fatalf("sign-up %d = %v", i, err)
		}
	}
	_, err = svc.Signup(t.Context(), c, "user11", "user11@example.com", rightPassword)
	if e := auth.AsError(err); e == nil || e.Code != "too_many_attempts" {
		t.Fatalf("the 11th sign-up from one /64 in an hour = %v, want too_many_attempts", err)
	}
}

// BenchmarkSignupTaken: a sign-up for a taken username costs lookups, not an argon2id
// hash (compare BenchmarkSignupHash, the hash alone, with the default parameters).
func BenchmarkSignupTaken(b *testing.B) {
	st, err := sqlite.Open(b.Context(), b.TempDir()+"/db")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	svc := auth.New(auth.Config{}, auth.Deps{Store: st, Hasher: password.NewHasher(password.DefaultParams(), 0, 0, 0, rand.Reader)})
	c := auth.Client{IP: "192.0.2.1"}
	if _, err := svc.Signup(b.Context(), c, "alice", "alice@example.com", rightPassword); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := svc.Signup(b.Context(), c, "alice", "new@example.com", rightPassword); auth.AsError(err) == nil {
			b.Fatalf("Signup(taken) = %v", err)
		}
	}
}

// BenchmarkSignupHash is the argon2id hash a sign-up costs once its name is free.
func BenchmarkSignupHash(b *testing.B) {
	h := password.NewHasher(password.DefaultParams(), 0, 0, 0, rand.Reader)
	for b.Loop() {
		if _, err := h.Hash(b.Context(), rightPassword); err != nil {
			b.Fatal(err)
		}
	}
}

// TestForgotPasswordLimits: reset mails are limited per target account (5 an hour)
// and per client address (20 an hour), through the same limiter; the answer stays the
// same either way.
func TestForgotPasswordLimits(t *testing.T) {
	svc, st := newService(t)
	for i := range 22 {
		c := auth.Client{IP: fmt.Sprintf("192.0.2.%d", i+1)}
		u, err := svc.Signup(t.Context(), c, fmt.Sprintf("user%d", i), fmt.Sprintf("user%d@example.com", i), rightPassword)
		if err != nil {
			t.Fatal(err)
		}
		verifyEmail(t, st, u) // reset mail goes only to a verified address
	}
	resets := func(to string) int {
		t.Helper()
		svc.Wait()
		ms, err := st.Outbox(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range ms {
			if m.Subject == "Reset your password" && (to == "" || m.To == to) {
				n++
			}
		}
		return n
	}
	a := auth.Client{IP: "198.51.100.1"}
	for range 7 {
		if err := svc.ForgotPassword(t.Context(), a, "user0@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if n := resets("user0@example.com"); n != 5 {
		t.Fatalf("7 requests for one account: %d reset mails, want 5", n)
	}
	b := auth.Client{IP: "2001:db8:9:9::1"}
	for i := 1; i <= 21; i++ {
		if err := svc.ForgotPassword(t.Context(), b, fmt.Sprintf("user%d@example.com", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := resets("") - 5; n != 20 {
		t.Fatalf("21 requests from one address: %d reset mails, want 20", n)
	}
}
