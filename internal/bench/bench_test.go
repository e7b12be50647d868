package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/auth"
)

// TestBench runs 'latchkey-bench' briefly on SQLite and checks that every figure is
// printed with positive numbers. It asserts nothing about speed: that depends on the
// machine, and the ratios are for people to read.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("the bench provisions hundreds of accounts and floods 400 default-cost sign-ins")
	}
	var out, errOut strings.Builder
	code := Run(context.Background(), []string{"--duration", "200ms", "--concurrency", "4"},
		func(string) string { return "" }, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("bench exit code = %d, want 0; stderr %s", code, errOut.String())
	}
	t.Logf("bench output:\n%s", out.String())
	want := map[string][]string{
		"session_check":   {"per_s", "ref_per_s", "ratio", "p50_ms", "p99_ms"},
		"password_signin": {"per_s", "ref_per_s", "ratio", "p50_ms", "p99_ms"},
		"mfa_step":        {"per_s", "ref_per_s", "ratio", "p50_ms", "p99_ms", "direct_per_s", "direct_ratio"},
		"flood":           {"requests", "peak_rss_mib", "answered"},
		"signin_shared":   {"per_s", "ref_per_s", "ratio"},
		"shared_address":  {"requests"},
		"signup_flood":    {"signups", "after_status"},
	}
	for _, line := range strings.Split(out.String(), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		keys, ok := want[fields[0]]
		if !ok {
			continue
		}
		delete(want, fields[0])
		vals := map[string]string{}
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(f, "=")
			vals[k] = v
		}
		for _, k := range keys {
			n, err := strconv.ParseFloat(vals[k], 64)
			if err != nil || n <= 0 {
				t.Errorf("%s %s = %q, want a positive number", fields[0], k, vals[k])
			}
		}
		if (fields[0] == "shared_address" || fields[0] == "signin_shared") && vals["status_429"] != "0" {
			t.Errorf("%s: %s answers were 429, want none", fields[0], vals["status_429"])
		}
		if fields[0] == "signup_flood" && vals["after_status"] != "200" {
			t.Errorf("signup_flood: the first sign-in after the flood answered %s, want 200", vals["after_status"])
		}
		if fields[0] == "flood" && (vals["answered"] != vals["requests"] || vals["no_answer"] != "0") {
			t.Errorf("flood answered %s of %s requests, want all", vals["answered"], vals["requests"])
		}
	}
	for name := range want {
		t.Errorf("no %s line in the output", name)
	}
}

// TestBenchOnly runs one figure with a CPU profile: only that figure's line is
// printed, and the profile is a non-empty file.
func TestBenchOnly(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	var out, errOut strings.Builder
	code := Run(context.Background(), []string{"--duration", "100ms", "--concurrency", "2",
		"--only", "session_check", "--cpuprofile", prof}, func(string) string { return "" }, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("bench exit code = %d, want 0; stderr %s", code, errOut.String())
	}
	var figures []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "#") {
			figures = append(figures, strings.Fields(line)[0])
		}
	}
	if len(figures) != 1 || figures[0] != "session_check" {
		t.Fatalf("--only session_check printed figures %v:\n%s", figures, out.String())
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Fatalf("--cpuprofile file: %v (size %v)", err, fi)
	}
}

// TestBenchTokenNeverLooksLikeAnAccessToken: a random draw that encodes to "lk_…" is
// skipped, so the bench's sessions are never taken for personal access tokens.
func TestBenchTokenNeverLooksLikeAnAccessToken(t *testing.T) {
	first := append([]byte{0x96, 0x4f, 0xc0}, make([]byte, 29)...) // "lk_A…" in base64url
	second := bytes.Repeat([]byte{7}, 32)
	tok, hash := benchTokenFrom(bytes.NewReader(append(first, second...)))
	if strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Fatalf("benchTokenFrom = %q, want no %q prefix", tok, auth.TokenPrefix)
	}
	if want := base64.RawURLEncoding.EncodeToString(second); tok != want {
		t.Fatalf("benchTokenFrom = %q, want the second draw %q", tok, want)
	}
	if sum := sha256.Sum256([]byte(tok)); !bytes.Equal(hash, sum[:]) {
		t.Fatal("benchTokenFrom's hash is not the SHA-256 of its token")
	}
	if base64.RawURLEncoding.EncodeToString(first)[:3] != auth.TokenPrefix {
		t.Fatal("the test's first draw does not start with the prefix: the test proves nothing")
	}
}

// TestBenchFlags checks that bad flags end with one line and a non-zero exit.
func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined"},
		{"zero duration", []string{"--duration", "0s"}, "--duration"},
		{"bad duration", []string{"--duration", "fast"}, "invalid value"},
		{"no concurrency", []string{"--concurrency", "0"}, "--concurrency"},
		{"sqlite url", []string{"--database-url", "sqlite:/tmp/x.db"}, "postgres://"},
		{"argument", []string{"extra"}, "no arguments"},
		{"unknown figure", []string{"--only", "session_check,warp_speed"}, "unknown figure"},
		{"profile in a missing directory", []string{"--only", "session_check", "--duration", "10ms",
			"--cpuprofile", "/nonexistent/dir/cpu.prof"}, "--cpuprofile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := Run(context.Background(), tt.args, func(string) string { return "" }, nil, &out, &errOut)
			msg := errOut.String()
			if code == 0 || !strings.Contains(msg, tt.want) || strings.Count(msg, "\n") != 1 {
				t.Errorf("bench %v = exit %d, stderr %q; want non-zero and one line with %q", tt.args, code, msg, tt.want)
			}
		})
	}
}
