package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/config"
)

// rawPost posts body as JSON with a client that keeps up to 400 connections and
// returns the status (0: no answer).
func rawPost(c *http.Client, url string, body any, xff string) int {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, strings.NewReader(string(b)))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func manyClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 400}, Timeout: 2 * time.Minute}
}

// counterOf reads a counter straight from the server's store.
func counterOf(t *testing.T, s *testServer, key auth.AttemptKey) auth.AttemptState {
	t.Helper()
	a, err := s.App.Store.Attempt(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func accountKey(t *testing.T, s *testServer, login string) auth.AttemptKey {
	t.Helper()
	u, err := s.App.Service.UserByLogin(context.Background(), login)
	if err != nil {
		t.Fatal(err)
	}
	return auth.AttemptKey{Scope: "pw-account", Key: strconv.FormatInt(int64(u.ID), 10)}
}

// TestSignupFloodLocksNobody: a flood of sign-ups from many addresses fills the hashing
// pool, so a user's sign-ins meanwhile get 503 overloaded. None of those counts: when
// the flood stops, the user signs in at once, and neither the account nor the user's
// address holds a failure, a lock or a slot.
func TestSignupFloodLocksNobody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.IPMaxFailures = 100
		cfg.HashWorkers, cfg.HashQueue, cfg.HashMaxWait = 1, 2, 200*time.Millisecond
		var err error
		if cfg.TrustedProxies, err = config.ParseTrustedProxies("127.0.0.1/32"); err != nil {
			t.Fatal(err)
		}
		s := startServer(t, cfg, nil)
		const alice = "198.51.100.1"
		rawPost(http.DefaultClient, s.URL+"/api/v1/signup", map[string]string{"username": "alice", "email": "alice@example.com", "password": testPassword}, alice)
		c := manyClient()
		stop := make(chan struct{})
		var flood sync.WaitGroup
		for g := range 24 {
			flood.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					name := fmt.Sprintf("f%d-%d", g, i)
					rawPost(c, s.URL+"/api/v1/signup", map[string]string{"username": name, "email": name + "@example.com",
						"password": "pw-" + name + "-correct-horse"}, fmt.Sprintf("203.0.%d.%d", g, i%250+1))
				}
			})
		}
		counts := map[int]int{}
		for range 20 {
			counts[rawPost(c, s.URL+"/api/v1/login", map[string]string{"login": "alice", "password": testPassword}, alice)]++
		}
		close(stop)
		flood.Wait()
		t.Logf("alice's sign-ins during the flood: %v", counts)
		if counts[503] < 5 || counts[429] != 0 {
			t.Fatalf("alice's sign-ins during the flood: %v, want at least 5 × 503 (the flood filled the pool) and no 429", counts)
		}
		if st := rawPost(c, s.URL+"/api/v1/login", map[string]string{"login": "alice", "password": testPassword}, alice); st != 200 {
			t.Fatalf("alice's sign-in right after the flood = %d, want 200", st)
		}
		if a := counterOf(t, s, accountKey(t, s, "alice")); a.Failures != 0 || a.InFlight != 0 || !a.LockedUntil.IsZero() {
			t.Fatalf("alice's account counter after the flood = %+v, want clean", a)
		}
		if a := counterOf(t, s, auth.AttemptKey{Scope: "pw-ip", Key: alice}); a.Failures != 0 || !a.LockedUntil.IsZero() {
			t.Fatalf("alice's address counter after the flood = %+v, want clean", a)
		}
	})
}

// TestOneAddressManyPeople: 400 people behind one address (an office, a carrier NAT)
// sign in with their right passwords at the same moment: each gets 200 or 503, never
// 429, because per address only failures count.
func TestOneAddressManyPeople(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.IPMaxFailures = 100
		s := startServer(t, cfg, nil)
		hash, err := s.App.Hasher.Hash(context.Background(), testPassword)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 400 {
			u := &auth.User{Username: fmt.Sprintf("p%d", i), Email: fmt.Sprintf("p%d@example.com", i), PasswordHash: hash,
				CreatedAt: s.Clock.Now().UTC().Truncate(time.Microsecond)}
			if err := s.App.Store.CreateUser(context.Background(), u); err != nil {
				t.Fatal(err)
			}
		}
		c := manyClient()
		counts := parallel(t, 400, func(i int) int {
			return rawPost(c, s.URL+"/api/v1/login", map[string]string{"login": fmt.Sprintf("p%d", i), "password": testPassword}, "")
		})
		t.Logf("400 at once from one address: %v", counts)
		if counts[200]+counts[503] != 400 || counts[200] == 0 {
			t.Fatalf("400 right passwords at once from one address: %v, want only 200 and 503", counts)
		}
	})
}

// TestParallelSignInsOneAccount: 8 right passwords at once to one account (a CI job, a
// family) never see 429 while fewer than 5 failures happened, and 40 wrong ones at once
// evaluate at most 5.
func TestParallelSignInsOneAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "ci", "ci@example.com")
		c := manyClient()
		right := map[string]string{"login": "ci", "password": testPassword}
		for _, prior := range []int{0, 4} {
			for range prior {
				rawPost(c, s.URL+"/api/v1/login", map[string]string{"login": "ci", "password": "wrong password"}, "")
			}
			counts := parallel(t, 8, func(int) int { return rawPost(c, s.URL+"/api/v1/login", right, "") })
			// 503 only when the machine hashes so slowly that a wait for a slot runs
			// past 2 s; never 429.
			if counts[429] != 0 || counts[200] == 0 || counts[200]+counts[503] != 8 {
				t.Fatalf("8 right passwords at once after %d failures: %v, want 200 (or 503), never 429", prior, counts)
			}
		}
		counts := parallel(t, 40, func(int) int {
			return rawPost(c, s.URL+"/api/v1/login", map[string]string{"login": "ci", "password": "wrong password"}, "")
		})
		if counts[401] > 5 || counts[401]+counts[429]+counts[503] != 40 {
			t.Fatalf("40 wrong passwords at once: %v, want at most 5 × 401", counts)
		}
		// Locked once 5 were checked (fewer when the others' waits ran out first).
		if st := rawPost(c, s.URL+"/api/v1/login", right, ""); counts[401] == 5 && st != 429 {
			t.Fatalf("the right password after the lock = %d, want 429", st)
		}
	})
}

// TestParallelWrongCodes: of 40 wrong codes sent at once, spread over pending logins,
// at most 5 are evaluated; the rest wait for a slot and then see the lock.
func TestParallelWrongCodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "gil", "gil@example.com")
		s.enrol(t, s.login(t, "gil"))
		tokens := make([]string, 4)
		for i := range tokens {
			tokens[i] = s.pending(t, "gil")
		}
		c := manyClient()
		counts := parallel(t, 40, func(i int) int {
			return rawPost(c, s.URL+"/api/v1/login/mfa", map[string]string{"mfa_token": tokens[i%len(tokens)], "code": fmt.Sprintf("%06d", 100000+i)}, "")
		})
		// 503: a wait for a slot ran past 2 s on a slow machine, evaluating nothing.
		if counts[401] > 5 || counts[401]+counts[429]+counts[503] != 40 {
			t.Fatalf("40 wrong codes at once: %v, want at most 5 × 401 and the rest 429 or 503", counts)
		}
	})
}

// TestWeakPasswords: sign-up, password change and reset refuse common passwords and the
// username with 400 weak_password and say why.
func TestWeakPasswords(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	for _, pw := range []string{"password", "12345678", "weakling"} {
		r := s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": "weakling", "email": "weak@example.com", "password": pw}).want(t, 400, "weak_password")
		if msg, _ := r.Body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "this one is") && !strings.Contains(msg, "this one ") {
			t.Fatalf("weak_password message = %q, want it to say why", msg)
		}
	}
	s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": "alice", "email": "alice@example.com", "password": "pw-alice-correct-horse"}).want(t, 201)
	tok := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "alice", "password": "pw-alice-correct-horse"}).want(t, 200).str("session_token")
	for _, pw := range []string{"password", "12345678", "alice", "aliceexample"} {
		s.call(t, "POST", "/api/v1/password", tok, map[string]string{"current_password": "pw-alice-correct-horse", "new_password": pw}).want(t, 400)
	}
	s.call(t, "POST", "/api/v1/password", tok, map[string]string{"current_password": "pw-alice-correct-horse", "new_password": "password"}).want(t, 400, "weak_password")
	s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": "any", "new_password": "12345678"}).want(t, 400, "weak_password")
	// The page says why, next to the field.
	c := jarClient(t)
	form := url.Values{"username": {"bobby"}, "email": {"bobby@example.com"}, "password": {"password"},
		"csrf_token": {formToken(t, c, s, "/signup")}}
	resp, err := c.PostForm(s.URL+"/signup", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "most common passwords") {
		t.Fatalf("sign-up page with a common password = %d, want 400 saying why; body %q", resp.StatusCode, tail(string(body), 2000))
	}
}
