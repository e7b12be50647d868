package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/cli"
)

// run runs one command with no environment but env and returns its exit code and
// output.
func run(env map[string]string, stdin string, args ...string) (int, string, string) {
	var out, errb strings.Builder
	code := cli.Run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// TestRun: usage, help, unknown commands and bad flags answer with the right exit
// code and end with one line naming the problem; migrate and the admin commands work on a fresh SQLite file.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"LATCHKEY_DATABASE_URL":    "sqlite:" + filepath.Join(dir, "latchkey.db"),
		"LATCHKEY_SECRET_KEY_FILE": filepath.Join(dir, "secret.key"),
		"LATCHKEY_ARGON2_MEMORY":   "8192",
		"LATCHKEY_ARGON2_TIME":     "1",
	}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		out, err string
	}{
		{"no command", nil, "", 2, "", "Usage:"},
		{"help", []string{"help"}, "", 0, "latchkey serve", ""},
		{"unknown", []string{"frobnicate"}, "", 1, "", `unknown command "frobnicate"`},
		{"bench is not in the binary", []string{"bench"}, "", 1, "", `unknown command "bench"`},
		{"bad flag", []string{"migrate", "--no-such-flag"}, "", 1, "", "no-such-flag"},
		{"migrate", []string{"migrate"}, "", 0, "migrations applied", ""},
		{"migrate with an argument", []string{"migrate", "extra"}, "", 1, "", "no arguments"},
		{"admin without a command", []string{"admin"}, "", 1, "", "admin needs a command"},
		{"create-user", []string{"admin", "create-user", "--username", "ops", "--email", "ops@example.com", "--admin"}, "a long password\n", 0, "(admin)", ""},
		{"create-user taken", []string{"admin", "create-user", "--username", "ops", "--email", "x@example.com"}, "a long password\n", 1, "", "username"},
		{"users", []string{"admin", "users"}, "", 0, "ops@example.com", ""},
		{"grant-admin unknown", []string{"admin", "grant-admin", "nobody"}, "", 1, "", ""},
		{"outbox", []string{"admin", "outbox"}, "", 0, "", ""},
		{"recovery list", []string{"admin", "recovery", "list"}, "", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(env, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errs, tt.err) {
				t.Fatalf("latchkey %v = %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, out, errs, tt.code, tt.out, tt.err)
			}
			// The error itself is the last line, after any flag usage.
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			if last := lines[len(lines)-1]; code == 1 && (!strings.HasPrefix(last, "latchkey: ") || !strings.Contains(last, tt.err)) {
				t.Fatalf("latchkey %v last stderr line = %q, want \"latchkey: …%s…\"", tt.args, last, tt.err)
			}
		})
	}
}
