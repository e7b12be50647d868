package recovery_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"github.com/latchkey/latchkey/internal/testenv"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/latchkey/latchkey/internal/recovery"
)

func TestParsePublicKeyRealKeys(t *testing.T) {
	keygen := testenv.Tool(t, "ssh-keygen", "openssh-client")
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		wantType string
	}{
		{"ed25519", []string{"-t", "ed25519"}, ssh.KeyAlgoED25519},
		{"ecdsa256", []string{"-t", "ecdsa", "-b", "256"}, ssh.KeyAlgoECDSA256},
		{"ecdsa384", []string{"-t", "ecdsa", "-b", "384"}, ssh.KeyAlgoECDSA384},
		{"ecdsa521", []string{"-t", "ecdsa", "-b", "521"}, ssh.KeyAlgoECDSA521},
		{"rsa3072", []string{"-t", "rsa", "-b", "3072"}, ssh.KeyAlgoRSA},
		{"rsa2048", []string{"-t", "rsa", "-b", "2048"}, ssh.KeyAlgoRSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kf := genKey(t, dir, tt.name, tt.args...)
			// A .pub file ends in a newline; a text area may add CRLF.
			for _, line := range []string{kf.line, strings.TrimSpace(kf.line) + "\r\n", "  " + kf.line} {
				key, comment, err := recovery.ParsePublicKey(line)
				if err != nil {
					t.Fatalf("ParsePublicKey(%q) error = %v", line, err)
				}
				if key.Type() != tt.wantType || comment != tt.name+"@example.com" {
					t.Errorf("ParsePublicKey(%q) = %s, %q, want %s, %q", line, key.Type(), comment, tt.wantType, tt.name+"@example.com")
				}
			}
			key, _, _ := recovery.ParsePublicKey(kf.line)
			out, err := exec.Command(keygen, "-lf", kf.priv+".pub").Output()
			if err != nil {
				t.Fatalf("ssh-keygen -lf: %v", err)
			}
			fields := strings.Fields(string(out))
			if len(fields) < 2 {
				t.Fatalf("ssh-keygen -lf printed %q", out)
			}
			if got := recovery.Fingerprint(key); got != fields[1] {
				t.Errorf("Fingerprint(%s) = %q, ssh-keygen -lf says %q", tt.name, got, fields[1])
			}
		})
	}
}

func TestParsePublicKeyRefused(t *testing.T) {
	testenv.Tool(t, "ssh-keygen", "openssh-client")
	dir := t.TempDir()
	ed := genKey(t, dir, "ed", "-t", "ed25519")
	edLine := strings.TrimSpace(ed.line)
	edBlob := strings.Fields(edLine)[1]
	dsa := genKey(t, dir, "dsa", "-t", "dsa")

	// ssh-keygen refuses to make RSA keys under 1024 bits and may refuse
	// 1024; a short RSA key is easy to build in Go.
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := ssh.NewPublicKey(&rsa1024.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaLine := string(ssh.MarshalAuthorizedKey(rsaPub))

	// A user certificate signed by a throwaway CA.
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	ca, err := ssh.NewSignerFromKey(caPriv)
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: ed.pub, CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	certLine := string(ssh.MarshalAuthorizedKey(cert))

	// A security-key (FIDO) ed25519 key: the key blob plus an application.
	edRaw := ed.pub.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
	skBlob := ssh.Marshal(struct {
		Name        string
		Key         []byte
		Application string
	}{ssh.KeyAlgoSKED25519, edRaw, "ssh:"})
	skLine := ssh.KeyAlgoSKED25519 + " " + base64.StdEncoding.EncodeToString(skBlob) + " yubikey"

	tests := []struct {
		name    string
		line    string
		mention string // a word the user-facing message must contain
	}{
		{"empty", "", "no key"},
		{"blank", " \n\t ", "no key"},
		{"dsa", dsa.line, "DSA"},
		{"rsa 1024", rsaLine, "1024 bits"},
		{"certificate", certLine, "certificate"},
		{"security key", skLine, "security-key"},
		{"restrict option", "restrict " + edLine, "options"},
		{"command option", `command="/bin/true",no-pty ` + edLine, "options"},
		{"two lines", edLine + "\n" + edLine, "one line"},
		{"two lines with CR", edLine + "\r" + edLine, "one line"},
		{"junk", "hello world", "not an OpenSSH public key"},
		{"type only", "ssh-ed25519", "not an OpenSSH public key"},
		{"bad base64", "ssh-ed25519 !!!notbase64", "not an OpenSSH public key"},
		{"truncated key", "ssh-ed25519 " + edBlob[:len(edBlob)-8], "not an OpenSSH public key"},
		{"type mismatch", "ssh-rsa " + edBlob, "not an OpenSSH public key"},
		{"blob without type", edBlob, "not an OpenSSH public key"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "private key"},
		{"too long", edLine + " " + strings.Repeat("x", 16<<10), "more than"},
		{"control character in comment", edLine + "\x1b[31m", "control"},
		{"comment only", "# ssh-ed25519 " + edBlob, "not an OpenSSH public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _, err := recovery.ParsePublicKey(tt.line)
			if err == nil {
				t.Fatalf("ParsePublicKey(%.60q) = %v, nil, want an error", tt.line, key.Type())
			}
			if !errors.Is(err, recovery.ErrInvalidKey) {
				t.Errorf("ParsePublicKey(%.60q) error = %v, want it to wrap ErrInvalidKey", tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("ParsePublicKey(%.60q) error = %q, want it to mention %q", tt.line, err, tt.mention)
			}
			if len(err.Error()) > 300 {
				t.Errorf("ParsePublicKey(%.60q) error is %d bytes long; it should stay short", tt.line, len(err.Error()))
			}
		})
	}
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGK8Csnn6eRhsHBtFnCZyGPh0nQvNTtxXCaO4Hq5jo2t alice@example.com")
	f.Add("restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGK8Csnn6eRhsHBtFnCZyGPh0nQvNTtxXCaO4Hq5jo2t")
	f.Add("ssh-dss AAAA")
	f.Add("")
	f.Add("\n\n")
	f.Fuzz(func(t *testing.T, line string) {
		key, _, err := recovery.ParsePublicKey(line)
		if err != nil {
			if !errors.Is(err, recovery.ErrInvalidKey) {
				t.Fatalf("ParsePublicKey(%q) error = %v, want it to wrap ErrInvalidKey", line, err)
			}
			return
		}
		switch key.Type() {
		case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		default:
			t.Fatalf("ParsePublicKey(%q) accepted a %s key", line, key.Type())
		}
		if fp := recovery.Fingerprint(key); !strings.HasPrefix(fp, "SHA256:") {
			t.Fatalf("Fingerprint = %q, want a SHA256: prefix", fp)
		}
	})
}
