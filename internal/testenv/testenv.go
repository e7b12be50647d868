// Package testenv holds the one rule every test that needs something outside Go
// follows: skip with a message naming what is missing, but fail instead when
// LATCHKEY_TEST_REQUIRE_ALL=1 (CI sets it), so CI can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireAll reports whether missing prerequisites must fail tests.
func RequireAll() bool { return os.Getenv("LATCHKEY_TEST_REQUIRE_ALL") == "1" }

// Missing skips t with msg, or fails it under LATCHKEY_TEST_REQUIRE_ALL=1.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if RequireAll() {
		t.Fatal(msg + " (LATCHKEY_TEST_REQUIRE_ALL=1 makes this a failure)")
	}
	t.Skip(msg)
}

// Tool returns the path of an external program, or skips (fails) the test naming
// the Debian package that brings it.
func Tool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed (apt-get install "+debianPackage+")")
	}
	return path
}
