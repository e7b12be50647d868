package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testMaster(b byte) []byte { return bytes.Repeat([]byte{b}, Size) }

func writeKeyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func newKeyring(t *testing.T, master []byte) *Keyring {
	t.Helper()
	k, err := New(master)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return k
}

func TestLoadOrCreateCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "nested", "secret.key")
	master, created, err := LoadOrCreate(path, "", rand.Reader)
	if err != nil || !created || len(master) != Size {
		t.Fatalf("LoadOrCreate(%q) = %d bytes, %v, %v, want %d bytes, true, nil", path, len(master), created, err, Size)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", perm)
	}
	dirInfo, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := dirInfo.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("key directory mode = %04o, want no group or other access", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString(master) + "\n"; string(data) != want {
		t.Errorf("key file content is not one line of base64 of the key")
	}

	again, created, err := LoadOrCreate(path, "", rand.Reader)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate(%q) = %v, %v, want false, nil", path, created, err)
	}
	if !bytes.Equal(again, master) {
		t.Errorf("second LoadOrCreate(%q) returned different bytes", path)
	}
}

func TestLoadOrCreateUsesRand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	master, _, err := LoadOrCreate(path, "", bytes.NewReader(testMaster(7)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(master, testMaster(7)) {
		t.Errorf("LoadOrCreate did not take the key from the injected reader")
	}
	path = filepath.Join(t.TempDir(), "secret.key")
	if _, _, err := LoadOrCreate(path, "", strings.NewReader("short")); err == nil {
		t.Errorf("LoadOrCreate with a short reader = nil error, want one")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadOrCreate with a short reader left a file behind: %v", err)
	}
}

func TestLoadOrCreateRefuses(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(testMaster(1)) + "\n"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		msg     string
	}{
		{"group readable", good, 0o640, "mode 0640"},
		{"world readable", good, 0o604, "mode 0604"},
		{"group writable", good, 0o620, "mode 0620"},
		{"not base64", "this is not base64!\n", 0o600, "base64"},
		{"url base64", base64.URLEncoding.EncodeToString(append(testMaster(0xfb), 0xff, 0xff)) + "\n", 0o600, "base64"},
		{"too short", base64.StdEncoding.EncodeToString(testMaster(1)[:16]) + "\n", 0o600, "16 bytes"},
		{"too long", base64.StdEncoding.EncodeToString(append(testMaster(1), 1)) + "\n", 0o600, "33 bytes"},
		{"empty", "", 0o600, "0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeKeyFile(t, tt.content, tt.mode)
			_, _, err := LoadOrCreate(path, "", rand.Reader)
			if err == nil {
				t.Fatalf("LoadOrCreate(%q) = nil error, want one mentioning %q", path, tt.msg)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("LoadOrCreate(%q) = %q, want it to mention %q", path, err, tt.msg)
			}
			if strings.Contains(err.Error(), strings.TrimSpace(tt.content)) && tt.content != "" {
				t.Errorf("LoadOrCreate(%q) = %q, which quotes the key file", path, err)
			}
		})
	}
}

func TestLoadOrCreateAcceptsNoTrailingNewline(t *testing.T) {
	path := writeKeyFile(t, base64.StdEncoding.EncodeToString(testMaster(3)), 0o400)
	master, _, err := LoadOrCreate(path, "", rand.Reader)
	if err != nil || !bytes.Equal(master, testMaster(3)) {
		t.Errorf("LoadOrCreate(%q) = %v, want the key", path, err)
	}
}

func TestLoadOrCreateOverride(t *testing.T) {
	override := base64.StdEncoding.EncodeToString(testMaster(9))
	tests := []struct {
		name     string
		override string
		ok       bool
	}{
		{"valid", override, true},
		{"valid with newline", override + "\n", true},
		{"not base64", "%%%%", false},
		{"16 bytes", base64.StdEncoding.EncodeToString(testMaster(9)[:16]), false},
		{"unpadded", strings.TrimRight(base64.StdEncoding.EncodeToString(testMaster(9)), "="), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A file with a different key exists: the override must win
			// without the file being read, rewritten or created.
			dir := t.TempDir()
			path := filepath.Join(dir, "secret.key")
			master, created, err := LoadOrCreate(path, tt.override, rand.Reader)
			if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("LoadOrCreate with an override touched %q", path)
			}
			if !tt.ok {
				if err == nil || !strings.Contains(err.Error(), "override") {
					t.Errorf("LoadOrCreate(override %q) = %v, want an override error", tt.override, err)
				}
				return
			}
			if err != nil || created || !bytes.Equal(master, testMaster(9)) {
				t.Errorf("LoadOrCreate(override %q) = %v, %v, want the override's key, false, nil", tt.override, created, err)
			}
		})
	}
	t.Run("wins over file", func(t *testing.T) {
		path := writeKeyFile(t, base64.StdEncoding.EncodeToString(testMaster(1))+"\n", 0o600)
		master, _, err := LoadOrCreate(path, override, rand.Reader)
		if err != nil || !bytes.Equal(master, testMaster(9)) {
			t.Errorf("LoadOrCreate(%q, override) = %v, want the override's key", path, err)
		}
	})
}

func TestNewRejectsWrongSize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New(%d bytes) = nil error, want one", n)
		}
	}
}

func TestKeyID(t *testing.T) {
	a := newKeyring(t, testMaster(1))
	if got := a.KeyID(); !strings.HasPrefix(got, "k1-") || len(got) != len("k1-")+8 {
		t.Errorf("KeyID() = %q, want k1- and 8 hex digits", got)
	}
	if got, again := a.KeyID(), newKeyring(t, testMaster(1)).KeyID(); got != again {
		t.Errorf("KeyID() = %q then %q for the same master, want stable", got, again)
	}
	if got, other := a.KeyID(), newKeyring(t, testMaster(2)).KeyID(); got == other {
		t.Errorf("KeyID() = %q for two different masters, want different", got)
	}
}

func TestSealOpen(t *testing.T) {
	k := newKeyring(t, testMaster(1))
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"totp secret", []byte("JBSWY3DPEHPK3PXPJBSWY3DP"), []byte("totp:42")},
		{"empty plaintext", []byte{}, []byte("totp:1")},
		{"no aad", []byte("x"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ct, err := k.Seal(tt.plaintext, tt.aad)
			if err != nil {
				t.Fatalf("Seal() = %v", err)
			}
			if id != k.KeyID() {
				t.Errorf("Seal() key id = %q, want %q", id, k.KeyID())
			}
			// Only a plaintext of 8 bytes or more can be looked for: a random ciphertext
			// of ~30 bytes contains a given single byte one time in nine (this flaked),
			// but a given 8-byte run only by a 2^-59 chance.
			if len(tt.plaintext) >= 8 && bytes.Contains(ct, tt.plaintext) {
				t.Errorf("Seal() ciphertext contains the plaintext")
			}
			got, err := k.Open(id, ct, tt.aad)
			if err != nil || !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open(Seal(%q)) = %q, %v, want %q, nil", tt.plaintext, got, err, tt.plaintext)
			}
			// A keyring rebuilt from the same master, as after a restart,
			// opens it too.
			again := newKeyring(t, testMaster(1))
			if got, err := again.Open(id, ct, tt.aad); err != nil || !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open after restart = %q, %v, want %q, nil", got, err, tt.plaintext)
			}
		})
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	k := newKeyring(t, testMaster(1))
	_, a, _ := k.Seal([]byte("same"), []byte("totp:1"))
	_, b, _ := k.Seal([]byte("same"), []byte("totp:1"))
	if bytes.Equal(a, b) {
		t.Errorf("Seal() twice gave the same ciphertext, want fresh nonces")
	}
	if len(a) != 12+len("same")+16 {
		t.Errorf("Seal() ciphertext is %d bytes, want nonce(12) + plaintext + tag(16)", len(a))
	}
}

func TestOpenFailures(t *testing.T) {
	k := newKeyring(t, testMaster(1))
	other := newKeyring(t, testMaster(2))
	aad := []byte("totp:42")
	id, ct, err := k.Seal([]byte("JBSWY3DPEHPK3PXP"), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name  string
		k     *Keyring
		keyID string
		ct    []byte
		aad   []byte
		want  error
	}{
		{"unknown key id", k, "k1-00000000", ct, aad, ErrUnknownKey},
		{"empty key id", k, "", ct, aad, ErrUnknownKey},
		{"other master", other, id, ct, aad, ErrUnknownKey},
		{"other master claiming its id", other, other.KeyID(), ct, aad, ErrOpen},
		{"wrong aad", k, id, ct, []byte("totp:43"), ErrOpen},
		{"no aad", k, id, ct, nil, ErrOpen},
		{"nonce tampered", k, id, flip(0), aad, ErrOpen},
		{"body tampered", k, id, flip(13), aad, ErrOpen},
		{"tag tampered", k, id, flip(len(ct) - 1), aad, ErrOpen},
		{"truncated", k, id, ct[:len(ct)-1], aad, ErrOpen},
		{"too short for a nonce", k, id, ct[:5], aad, ErrOpen},
		{"empty", k, id, nil, aad, ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.k.Open(tt.keyID, tt.ct, tt.aad)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Open(%q, …, %q) = %q, %v, want nil, %v", tt.keyID, tt.aad, got, err, tt.want)
			}
		})
	}
}

func TestMAC(t *testing.T) {
	k := newKeyring(t, testMaster(1))
	data := []byte("abcd-efgh-jkmn-pqrs")
	a := k.MAC("recovery-code", data)
	if len(a) != 32 {
		t.Errorf("MAC() is %d bytes, want 32", len(a))
	}
	tests := []struct {
		name    string
		k       *Keyring
		purpose string
		data    []byte
		same    bool
	}{
		{"same everything", k, "recovery-code", data, true},
		{"after restart", newKeyring(t, testMaster(1)), "recovery-code", data, true},
		{"other purpose", k, "reset-token", data, false},
		{"purpose prefix", k, "recovery-cod", data, false},
		{"other data", k, "recovery-code", []byte("abcd-efgh-jkmn-pqrt"), false},
		{"other master", newKeyring(t, testMaster(2)), "recovery-code", data, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.k.MAC(tt.purpose, tt.data)
			if bytes.Equal(got, a) != tt.same {
				t.Errorf("MAC(%q, %q) equal to the reference = %v, want %v", tt.purpose, tt.data, !tt.same, tt.same)
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const value = "hunter2-very-secret"
	s := Secret(value)
	type wrapper struct {
		Name  string
		Token Secret
		Ptr   *Secret
	}
	w := wrapper{Name: "n", Token: s, Ptr: &s}
	tests := []struct {
		name string
		got  string
	}{
		{"%v", fmt.Sprintf("%v", s)},
		//lint:ignore S1025 the test checks the %s verb itself, not String.
		{"%s", fmt.Sprintf("%s", s)},
		{"%+v", fmt.Sprintf("%+v", s)},
		{"%#v", fmt.Sprintf("%#v", s)},
		{"%q", fmt.Sprintf("%q", s)},
		{"%x", fmt.Sprintf("%x", s)},
		{"Sprint", fmt.Sprint(s)},
		{"struct %v", fmt.Sprintf("%v", w)},
		{"struct %+v", fmt.Sprintf("%+v", w)},
		{"struct %#v", fmt.Sprintf("%#v", w)},
		{"pointer %v", fmt.Sprintf("%v", &s)},
		{"error wrap", fmt.Errorf("login failed for %v", s).Error()},
		{"slog JSON", logJSON(t, slog.Any("token", s))},
		{"slog JSON string attr", logJSON(t, slog.String("x", "y"), slog.Any("w", w))},
		{"slog text", logText(t, slog.Any("token", s))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.got, value) {
				t.Errorf("%s printed %q, which contains the secret", tt.name, tt.got)
			}
		})
	}
	if got := s.Reveal(); got != value {
		t.Errorf("Reveal() = %q, want %q", got, value)
	}
	if got := s.String(); got != "[redacted]" {
		t.Errorf("String() = %q, want %q", got, "[redacted]")
	}
}

func logJSON(t *testing.T, attrs ...slog.Attr) string {
	t.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, "msg", attrs...)
	if !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("JSON log %q does not say [redacted]", buf.String())
	}
	return buf.String()
}

func logText(t *testing.T, attrs ...slog.Attr) string {
	t.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, "msg", attrs...)
	return buf.String()
}
