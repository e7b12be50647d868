package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/config"
)

// runCLI runs one latchkey command in-process with cfg's database and key.
func runCLI(t *testing.T, cfg config.Config, stdin string, args ...string) (int, string, string) {
	t.Helper()
	env := map[string]string{
		"LATCHKEY_DATABASE_URL":    cfg.DatabaseURL,
		"LATCHKEY_SECRET_KEY_FILE": cfg.SecretKeyFile,
		"LATCHKEY_REQUIRE_MFA":     cfg.RequireMFA, // the CLI follows the server's policy
		"LATCHKEY_ARGON2_MEMORY":   "8192",
		"LATCHKEY_ARGON2_TIME":     "1",
	}
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestAdminCLI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		s := startServer(t, cfg, nil)

		code, out, errs := runCLI(t, cfg, testPassword+"\n", "admin", "create-user", "--username", "olga", "--email", "olga@example.com", "--admin")
		if code != 0 || !strings.Contains(out, "created user") || !strings.Contains(out, "(admin)") {
			t.Fatalf("create-user = %d %q %q", code, out, errs)
		}
		s.verifyEmail(t, "olga@example.com") // an operator-made account verifies its address too
		// Flags may follow the positional argument; errors are one clear line.
		for _, tc := range []struct {
			stdin string
			args  []string
			want  string
		}{
			{"", []string{"admin", "create-user", "--username", "x1", "--email", "x1@example.com"}, "stdin"},
			{testPassword, []string{"admin", "create-user", "--username", "olga", "--email", "o2@example.com"}, "taken"},
			{"", []string{"admin", "reset-mfa", "olga"}, "reason"},
			{"", []string{"admin", "reset-mfa", "--reason", "lost phone", "nobody"}, "no user"},
			{"", []string{"admin", "frobnicate"}, "unknown admin command"},
			{"", []string{"admin", "users", "--database-url", "mysql://x"}, "database-url"},
			{"", []string{"frobnicate"}, "unknown command"},
		} {
			code, out, errs := runCLI(t, cfg, tc.stdin, tc.args...)
			if code == 0 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("%v = %d, stdout %q, stderr %q; want non-zero and one line with %q", tc.args, code, out, errs, tc.want)
			}
		}

		tok := s.login(t, "olga")
		s.enrol(t, tok)
		code, out, _ = runCLI(t, cfg, "", "admin", "users")
		if code != 0 || !strings.Contains(out, "olga") || !strings.Contains(out, "on") {
			t.Fatalf("users = %d %q", code, out)
		}
		code, out, errs = runCLI(t, cfg, "", "admin", "reset-mfa", "olga", "--reason", "lost phone, verified by video call")
		if code != 0 || !strings.Contains(out, "removed MFA") {
			t.Fatalf("reset-mfa = %d %q %q", code, out, errs)
		}
		s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 401)
		tok = s.login(t, "olga") // no MFA step any more
		// An operator without MFA can only set it up again (require-mfa=admins, the
		// default): the log is read from the store.
		s.call(t, "GET", "/api/v1/security-log", tok, nil).want(t, 403, "mfa_setup_required")
		events, err := s.App.Store.Events(context.Background(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events {
			if e.Event == "mfa_reset_by_operator" {
				found = strings.Contains(e.Detail, "lost phone")
			}
		}
		if !found {
			t.Error("the security log lacks the operator reset and its reason")
		}
		code, out, _ = runCLI(t, cfg, "", "admin", "outbox")
		if code != 0 || !strings.Contains(out, "An operator removed multiple-factor authentication") || !strings.Contains(out, "lost phone, verified by video call") {
			t.Fatalf("outbox = %d %q", code, out)
		}
		code, out, _ = runCLI(t, cfg, "", "migrate")
		if code != 0 || !strings.Contains(out, "migrations applied") {
			t.Fatalf("migrate = %d %q", code, out)
		}
	})
}
