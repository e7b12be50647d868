package recovery_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"github.com/latchkey/latchkey/internal/testenv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/latchkey/latchkey/internal/recovery"
)

// challenge is shaped like a server challenge: ASCII, no trailing newline.
var challenge = []byte("latchkey-recovery:7f3a9c1e5b2d4068a1c3e5f7092b4d6f")

func TestVerifySignatureSSHKeygen(t *testing.T) {
	testenv.Tool(t, "ssh-keygen", "openssh-client")
	dir := t.TempDir()
	ed := genKey(t, dir, "ed", "-t", "ed25519")
	ec := genKey(t, dir, "ec", "-t", "ecdsa", "-b", "256")
	ec521 := genKey(t, dir, "ec521", "-t", "ecdsa", "-b", "521")
	rs := genKey(t, dir, "rsa", "-t", "rsa", "-b", "3072")
	other := genKey(t, dir, "other", "-t", "ed25519")
	registered := []ssh.PublicKey{ed.pub, ec.pub, ec521.pub, rs.pub}

	tests := []struct {
		name      string
		key       keyFile
		namespace string
		signArgs  []string
		message   []byte          // verified message; nil means challenge
		allowed   []ssh.PublicKey // nil means registered
		wantErr   string          // "" means success; otherwise part of the message
	}{
		{name: "ed25519", key: ed, namespace: recovery.Namespace},
		{name: "ecdsa nistp256", key: ec, namespace: recovery.Namespace},
		{name: "ecdsa nistp521", key: ec521, namespace: recovery.Namespace},
		{name: "rsa 3072", key: rs, namespace: recovery.Namespace},
		{name: "ed25519 sha512", key: ed, namespace: recovery.Namespace, signArgs: []string{"-O", "hashalg=sha512"}},
		{name: "ed25519 sha256", key: ed, namespace: recovery.Namespace, signArgs: []string{"-O", "hashalg=sha256"}},
		{name: "rsa sha256", key: rs, namespace: recovery.Namespace, signArgs: []string{"-O", "hashalg=sha256"}},
		{name: "only that key allowed", key: ec, namespace: recovery.Namespace, allowed: []ssh.PublicKey{ec.pub}},
		{name: "key not registered", key: other, namespace: recovery.Namespace, wantErr: "not registered"},
		{name: "no keys registered", key: ed, namespace: recovery.Namespace, allowed: []ssh.PublicKey{}, wantErr: "not registered"},
		{name: "namespace git", key: ed, namespace: "git", wantErr: "namespace"},
		{name: "namespace file", key: ed, namespace: "file", wantErr: "namespace"},
		{name: "namespace with suffix", key: ed, namespace: recovery.Namespace + "x", wantErr: "namespace"},
		{name: "trailing newline in message", key: ed, namespace: recovery.Namespace, message: append([]byte(string(challenge)), '\n'), wantErr: "does not match"},
		{name: "other message", key: rs, namespace: recovery.Namespace, message: []byte("latchkey-recovery:00000000000000000000000000000000"), wantErr: "does not match"},
		{name: "ecdsa other message", key: ec, namespace: recovery.Namespace, message: []byte{}, wantErr: "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			armored := sshSign(t, tt.key, tt.namespace, challenge, tt.signArgs...)
			message, allowed := tt.message, tt.allowed
			if message == nil {
				message = challenge
			}
			if allowed == nil {
				allowed = registered
			}
			signer, err := recovery.VerifySignature(armored, recovery.Namespace, message, allowed)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifySignature(%s) error = %v, want nil", tt.name, err)
				}
				if recovery.Fingerprint(signer) != recovery.Fingerprint(tt.key.pub) {
					t.Errorf("VerifySignature(%s) signer = %s, want %s", tt.name, recovery.Fingerprint(signer), recovery.Fingerprint(tt.key.pub))
				}
				return
			}
			if err == nil || signer != nil {
				t.Fatalf("VerifySignature(%s) = %v, %v, want nil and an error", tt.name, signer, err)
			}
			if !errors.Is(err, recovery.ErrInvalidSignature) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("VerifySignature(%s) error = %q, want ErrInvalidSignature mentioning %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestVerifySignatureArmor(t *testing.T) {
	testenv.Tool(t, "ssh-keygen", "openssh-client")
	ed := genKey(t, t.TempDir(), "ed", "-t", "ed25519")
	armored := sshSign(t, ed, recovery.Namespace, challenge)
	lines := strings.Split(strings.TrimSpace(armored), "\n")
	body := strings.Join(lines[1:len(lines)-1], "")
	tests := []struct {
		name    string
		armored string
		ok      bool
	}{
		{"as written", armored, true},
		{"CRLF", strings.ReplaceAll(armored, "\n", "\r\n"), true},
		{"surrounding whitespace", "\n\n  " + armored + "\n\t \n", true},
		{"one long line", lines[0] + "\n" + body + "\n" + lines[len(lines)-1], true},
		{"indented lines", strings.ReplaceAll(armored, "\n", "\n   "), true},
		{"no armor", body, false},
		{"no end line", strings.Join(lines[:len(lines)-1], "\n"), false},
		{"no begin line", strings.Join(lines[1:], "\n"), false},
		{"text before", "Here is my signature:\n" + armored, false},
		{"text after", armored + "thanks\n", false},
		{"wrong label", strings.ReplaceAll(armored, "SSH SIGNATURE", "PGP SIGNATURE"), false},
		{"bad base64", lines[0] + "\n" + body[:20] + "!" + body[21:] + "\n" + lines[len(lines)-1], false},
		{"empty body", lines[0] + "\n\n" + lines[len(lines)-1], false},
		{"too large", lines[0] + "\n" + body + strings.Repeat(" ", 16<<10) + "\n" + lines[len(lines)-1], false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := recovery.VerifySignature(tt.armored, recovery.Namespace, challenge, []ssh.PublicKey{ed.pub})
			if (err == nil) != tt.ok {
				t.Errorf("VerifySignature(%s) error = %v, want ok = %v", tt.name, err, tt.ok)
			}
			if err != nil && !errors.Is(err, recovery.ErrInvalidSignature) {
				t.Errorf("VerifySignature(%s) error = %v, want it to wrap ErrInvalidSignature", tt.name, err)
			}
		})
	}
}

func TestVerifySignatureCrafted(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed, err := ssh.NewSignerFromKey(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ssh.NewSignerFromKey(rsaPriv)
	if err != nil {
		t.Fatal(err)
	}
	allowed := []ssh.PublicKey{ed.PublicKey(), rs.PublicKey()}

	tests := []struct {
		name    string
		signer  ssh.Signer
		spec    sigSpec
		wantErr string // "" means accepted
		openssh bool   // whether ssh-keygen -Y check-novalidate accepts it too
		refused bool   // whether ssh-keygen must refuse it, proving the check is not vacuous
	}{
		{name: "good ed25519 sha512", signer: ed, openssh: true},
		{name: "good ed25519 sha256", signer: ed, spec: sigSpec{hashAlg: "sha256"}, openssh: true},
		{name: "good rsa-sha2-256", signer: rs, spec: sigSpec{sigAlg: ssh.KeyAlgoRSASHA256}, openssh: true},
		{name: "good rsa-sha2-512", signer: rs, spec: sigSpec{sigAlg: ssh.KeyAlgoRSASHA512}, openssh: true},
		{name: "legacy ssh-rsa", signer: rs, spec: sigSpec{sigAlg: ssh.KeyAlgoRSA}, wantErr: "rsa-sha2"},
		{name: "hash sha1", signer: ed, spec: sigSpec{hashAlg: "sha1"}, wantErr: "sha256 or sha512", refused: true},
		{name: "hash md5", signer: ed, spec: sigSpec{hashAlg: "md5"}, wantErr: "sha256 or sha512"},
		{name: "hash SHA256 upper case", signer: ed, spec: sigSpec{hashAlg: "SHA256"}, wantErr: "sha256 or sha512"},
		{name: "version 2", signer: ed, spec: sigSpec{version: 2}, wantErr: "version"},
		{name: "bad magic", signer: ed, spec: sigSpec{magic: "SSHSIH"}, wantErr: "magic"},
		{name: "short magic", signer: ed, spec: sigSpec{magic: "SSH"}, wantErr: "magic"},
		{name: "trailing bytes", signer: ed, spec: sigSpec{trailing: []byte{0}}, wantErr: "malformed"},
		{name: "trailing string", signer: ed, spec: sigSpec{trailing: []byte{0, 0, 0, 1, 'x'}}, wantErr: "malformed"},
		{name: "truncated by one", signer: ed, spec: sigSpec{truncate: 1}, wantErr: "malformed"},
		{name: "truncated by half", signer: ed, spec: sigSpec{truncate: 60}, wantErr: "malformed"},
		{name: "empty namespace", signer: ed, spec: sigSpec{noNS: true}, wantErr: "namespace"},
		{name: "reserved field set", signer: ed, spec: sigSpec{reserved: "x"}, wantErr: "reserved"},
		{name: "namespace swapped after signing", signer: ed, spec: sigSpec{signedNS: "git"}, wantErr: "does not match", refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			armored := craftSig(t, tt.signer, challenge, tt.spec)
			signer, err := recovery.VerifySignature(armored, recovery.Namespace, challenge, allowed)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifySignature(%s) error = %v, want nil", tt.name, err)
				}
				if string(signer.Marshal()) != string(tt.signer.PublicKey().Marshal()) {
					t.Errorf("VerifySignature(%s) returned the wrong key %s", tt.name, recovery.Fingerprint(signer))
				}
			} else {
				if err == nil {
					t.Fatalf("VerifySignature(%s) error = nil, want one mentioning %q", tt.name, tt.wantErr)
				}
				if !errors.Is(err, recovery.ErrInvalidSignature) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("VerifySignature(%s) error = %q, want ErrInvalidSignature mentioning %q", tt.name, err, tt.wantErr)
				}
			}
			// OpenSSH must agree on the good ones: proof that the blob built
			// here, and therefore the format parsed above, is real SSHSIG.
			if tt.openssh || tt.refused {
				if ok, out := sshCheck(t, armored, recovery.Namespace, challenge); ok != tt.openssh {
					t.Errorf("ssh-keygen -Y check-novalidate on the %s signature: ok = %v, want %v: %s", tt.name, ok, tt.openssh, out)
				}
			}
		})
	}
}

func TestVerifySignatureEmptyNamespaceArgument(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed, _ := ssh.NewSignerFromKey(edPriv)
	armored := craftSig(t, ed, challenge, sigSpec{})
	tests := []struct {
		namespace string
	}{{""}, {"git"}, {"file"}}
	for _, tt := range tests {
		t.Run(tt.namespace, func(t *testing.T) {
			if _, err := recovery.VerifySignature(armored, tt.namespace, challenge, []ssh.PublicKey{ed.PublicKey()}); !errors.Is(err, recovery.ErrInvalidSignature) {
				t.Errorf("VerifySignature(namespace %q) error = %v, want ErrInvalidSignature", tt.namespace, err)
			}
		})
	}
}

func FuzzVerifySignature(f *testing.F) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed, err := ssh.NewSignerFromKey(edPriv)
	if err != nil {
		f.Fatal(err)
	}
	allowed := []ssh.PublicKey{ed.PublicKey()}
	good := craftSig(f, ed, challenge, sigSpec{})
	f.Add(good)
	f.Add(strings.ReplaceAll(good, "\n", "\r\n"))
	f.Add("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----")
	f.Add("-----BEGIN SSH SIGNATURE-----\n" + base64.StdEncoding.EncodeToString([]byte("SSHSIG\x00\x00\x00\x01")) + "\n-----END SSH SIGNATURE-----")
	f.Add("")
	f.Fuzz(func(t *testing.T, armored string) {
		signer, err := recovery.VerifySignature(armored, recovery.Namespace, challenge, allowed)
		if err != nil {
			if signer != nil || !errors.Is(err, recovery.ErrInvalidSignature) {
				t.Fatalf("VerifySignature(%q) = %v, %v, want nil and ErrInvalidSignature", armored, signer, err)
			}
			return
		}
		// Acceptance is only possible with a real signature by the key; the
		// fuzzer can reach it only by keeping a seed's blob intact.
		if _, err := recovery.VerifySignature(armored, recovery.Namespace, []byte("other"), allowed); err == nil {
			t.Fatalf("VerifySignature(%q) accepts the signature for another message too", armored)
		}
	})
}
