package recovery_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"github.com/latchkey/latchkey/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// keyFile is a key pair written by ssh-keygen.
type keyFile struct {
	priv string        // path of the private key
	line string        // the .pub file's content
	pub  ssh.PublicKey // nil when x/crypto/ssh cannot parse the type
}

// genKey runs ssh-keygen to create a key pair in dir; args choose the type.
func genKey(t *testing.T, dir, name string, args ...string) keyFile {
	t.Helper()
	keygen := testenv.Tool(t, "ssh-keygen", "openssh-client")
	priv := filepath.Join(dir, name)
	cmd := exec.Command(keygen, append([]string{"-q", "-N", "", "-C", name + "@example.com", "-f", priv}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	line, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	// pub stays nil for types x/crypto/ssh no longer parses, such as DSA.
	pub, _, _, _, _ := ssh.ParseAuthorizedKey(line)
	return keyFile{priv: priv, line: string(line), pub: pub}
}

// sshSign signs message with ssh-keygen -Y sign and returns the armored
// signature. The message goes through a file so its bytes are exact.
func sshSign(t *testing.T, key keyFile, namespace string, message []byte, extra ...string) string {
	t.Helper()
	keygen := testenv.Tool(t, "ssh-keygen", "openssh-client")
	msg := filepath.Join(t.TempDir(), "challenge")
	if err := os.WriteFile(msg, message, 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-Y", "sign", "-f", key.priv, "-n", namespace}, extra...)
	cmd := exec.Command(keygen, append(args, msg)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	sig, err := os.ReadFile(msg + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return string(sig)
}

// sshCheck asks OpenSSH whether it accepts armored as a signature of message
// in namespace, without an allowed-signers file, and returns its output.
func sshCheck(t *testing.T, armored, namespace string, message []byte) (ok bool, output string) {
	t.Helper()
	keygen := testenv.Tool(t, "ssh-keygen", "openssh-client")
	sigFile := filepath.Join(t.TempDir(), "challenge.sig")
	if err := os.WriteFile(sigFile, []byte(armored), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(keygen, "-Y", "check-novalidate", "-n", namespace, "-s", sigFile)
	cmd.Stdin = bytes.NewReader(message)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return err == nil, out.String()
}

// sigSpec describes an SSHSIG signature to build in Go, including ways to
// make it wrong that ssh-keygen would never produce.
type sigSpec struct {
	magic     string // default "SSHSIG"
	version   uint32 // default 1
	namespace string // default "latchkey-recovery"
	reserved  string
	hashAlg   string // default "sha512"; "sha1" hashes with SHA-1
	sigAlg    string // signature algorithm for AlgorithmSigner; default the key's
	signedNS  string // namespace inside the signed data, if different
	trailing  []byte // appended to the blob
	truncate  int    // bytes cut from the end of the blob
	noNS      bool   // use an empty namespace
}

// craftSig builds an armored SSHSIG signature of message with signer.
func craftSig(t testing.TB, signer ssh.Signer, message []byte, s sigSpec) string {
	t.Helper()
	if s.magic == "" {
		s.magic = "SSHSIG"
	}
	if s.version == 0 {
		s.version = 1
	}
	if s.namespace == "" && !s.noNS {
		s.namespace = "latchkey-recovery"
	}
	if s.hashAlg == "" {
		s.hashAlg = "sha512"
	}
	if s.signedNS == "" {
		s.signedNS = s.namespace
	}
	var digest []byte
	switch s.hashAlg {
	case "sha1":
		d := sha1.Sum(message)
		digest = d[:]
	case "sha256":
		d := sha256.Sum256(message)
		digest = d[:]
	default:
		d := sha512.Sum512(message)
		digest = d[:]
	}
	signed := []byte("SSHSIG")
	for _, f := range []string{s.signedNS, s.reserved, s.hashAlg, string(digest)} {
		signed = appendString(signed, f)
	}
	var sig *ssh.Signature
	var err error
	if s.sigAlg != "" {
		sig, err = signer.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, signed, s.sigAlg)
	} else {
		sig, err = signer.Sign(rand.Reader, signed)
	}
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	blob := []byte(s.magic)
	blob = binary.BigEndian.AppendUint32(blob, s.version)
	blob = appendString(blob, string(signer.PublicKey().Marshal()))
	blob = appendString(blob, s.namespace)
	blob = appendString(blob, s.reserved)
	blob = appendString(blob, s.hashAlg)
	blob = appendString(blob, string(ssh.Marshal(sig)))
	blob = append(blob, s.trailing...)
	blob = blob[:len(blob)-s.truncate]
	return armor(blob)
}

// armor wraps a blob the way ssh-keygen does: 70 base64 characters a line.
func armor(blob []byte) string {
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
