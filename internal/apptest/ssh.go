package apptest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// SSHKey is a fresh Ed25519 key for recovery tests: its authorized_keys line, and
// Sign, which makes the armored SSHSIG signature `ssh-keygen -Y sign -n namespace`
// would make of message.
type SSHKey struct {
	AuthorizedKey string
	signer        ssh.Signer
}

// NewSSHKey generates a key.
func NewSSHKey(t testing.TB) *SSHKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &SSHKey{AuthorizedKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " test@apptest", signer: signer}
}

// Sign returns the armored SSHSIG signature of message in namespace (SHA-512).
func (k *SSHKey) Sign(t testing.TB, namespace, message string) string {
	t.Helper()
	digest := sha512.Sum512([]byte(message))
	signed := []byte("SSHSIG")
	for _, f := range []string{namespace, "", "sha512", string(digest[:])} {
		signed = appendString(signed, f)
	}
	sig, err := k.signer.Sign(rand.Reader, signed)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte("SSHSIG")
	blob = binary.BigEndian.AppendUint32(blob, 1)
	for _, f := range []string{string(k.signer.PublicKey().Marshal()), namespace, "", "sha512", string(ssh.Marshal(sig))} {
		blob = appendString(blob, f)
	}
	b64 := base64.StdEncoding.EncodeToString(blob)
	var b strings.Builder
	b.WriteString("-----BEGIN SSH SIGNATURE-----\n")
	for len(b64) > 70 {
		b.WriteString(b64[:70] + "\n")
		b64 = b64[70:]
	}
	b.WriteString(b64 + "\n-----END SSH SIGNATURE-----\n")
	return b.String()
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

var tokenParam = regexp.MustCompile(`token=([A-Za-z0-9_\-]+)`)

// LinkToken returns the token= parameter of the last link in the last mail to addr
// whose text contains marker, or fails.
func (e *Env) LinkToken(t testing.TB, addr, marker string) string {
	t.Helper()
	mails := e.Mail(t, addr)
	for i := len(mails) - 1; i >= 0; i-- {
		if !strings.Contains(mails[i], marker) {
			continue
		}
		if m := tokenParam.FindAllStringSubmatch(mails[i], -1); len(m) > 0 {
			return m[len(m)-1][1]
		}
	}
	t.Fatalf("no mail to %s with %q and a token link; mails: %q", addr, marker, mails)
	return ""
}
