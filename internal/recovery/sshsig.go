package recovery

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Namespace is the SSHSIG namespace of recovery signatures. Binding the
// signature to it means a signature the user made for git, for a file or for
// another site can never be replayed as proof for Latchkey, and vice versa.
const Namespace = "latchkey-recovery"

// ErrInvalidSignature is wrapped by every error VerifySignature returns; the
// wrapping message gives the specific reason and is safe to show the user.
var ErrInvalidSignature = errors.New("invalid SSH signature")

// maxArmored bounds the armored input. An RSA-16384 signature with its key is
// about 5 KiB once armored; more than this is not a signature.
const maxArmored = 16 << 10

const (
	armorBegin = "-----BEGIN SSH SIGNATURE-----"
	armorEnd   = "-----END SSH SIGNATURE-----"
	sigMagic   = "SSHSIG"
	sigVersion = 1
)

// sigBlob is the SSHSIG blob after its six-byte magic preamble (OpenSSH
// PROTOCOL.sshsig §3). ssh.Unmarshal reads each string as a uint32 length and
// bytes, and refuses short input and trailing bytes.
type sigBlob struct {
	Version       uint32
	PublicKey     []byte
	Namespace     string
	Reserved      string
	HashAlgorithm string
	Signature     []byte
}

// VerifySignature checks an armored SSHSIG signature, the output of
// `ssh-keygen -Y sign -n <namespace>`, over message, and returns which of the
// allowed keys made it.
//
// golang.org/x/crypto/ssh (v0.59.0) verifies raw SSH signatures but has no
// SSHSIG support, so the envelope is parsed here and the cryptography is left
// to ssh.PublicKey.Verify. The rules are stricter than OpenSSH's where that
// costs honest users nothing: the namespace must match exactly, the message
// hash must be sha256 or sha512, RSA signatures must use rsa-sha2-256 or
// rsa-sha2-512 (never SHA-1 "ssh-rsa"), the reserved field must be empty, the
// embedded key must be byte-for-byte one of allowed and pass the key policy of
// ParsePublicKey, and no byte may be left over anywhere.
func VerifySignature(armored string, namespace string, message []byte, allowed []ssh.PublicKey) (signer ssh.PublicKey, err error) {
	if namespace == "" {
		return nil, fmt.Errorf("%w: no namespace to check against", ErrInvalidSignature)
	}
	raw, err := dearmor(armored)
	if err != nil {
		return nil, err
	}
	body, ok := bytes.CutPrefix(raw, []byte(sigMagic))
	if !ok {
		return nil, fmt.Errorf("%w: not an SSHSIG signature (bad magic preamble)", ErrInvalidSignature)
	}
	var blob sigBlob
	if err := ssh.Unmarshal(body, &blob); err != nil {
		return nil, fmt.Errorf("%w: malformed signature blob (truncated or trailing data)", ErrInvalidSignature)
	}
	if blob.Version != sigVersion {
		return nil, fmt.Errorf("%w: unsupported SSHSIG version %d, want %d", ErrInvalidSignature, blob.Version, sigVersion)
	}
	if blob.Namespace != namespace {
		return nil, fmt.Errorf("%w: signed for namespace %q, want %q (sign with ssh-keygen -Y sign -n %s)", ErrInvalidSignature, truncate(blob.Namespace, 64), namespace, namespace)
	}
	if blob.Reserved != "" {
		return nil, fmt.Errorf("%w: the reserved field is not empty", ErrInvalidSignature)
	}
	var digest []byte
	switch blob.HashAlgorithm {
	case "sha256":
		sum := sha256.Sum256(message)
		digest = sum[:]
	case "sha512":
		sum := sha512.Sum512(message)
		digest = sum[:]
	default:
		return nil, fmt.Errorf("%w: message hash %q is not accepted, want sha256 or sha512", ErrInvalidSignature, truncate(blob.HashAlgorithm, 32))
	}

	// Match the raw embedded key against the registered ones before parsing
	// it further: an unregistered key is refused whatever it signed.
	for _, a := range allowed {
		if a != nil && bytes.Equal(a.Marshal(), blob.PublicKey) {
			signer = a
			break
		}
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: signed with a key that is not registered on this account", ErrInvalidSignature)
	}
	if err := checkKey(signer); err != nil {
		return nil, fmt.Errorf("%w: the signing key is not acceptable: %v", ErrInvalidSignature, err)
	}

	var sig ssh.Signature
	if err := ssh.Unmarshal(blob.Signature, &sig); err != nil {
		return nil, fmt.Errorf("%w: malformed signature", ErrInvalidSignature)
	}
	// Rest carries the flags and counter of security-key signatures, which
	// are refused anyway; for every accepted key type it must be empty.
	if len(sig.Rest) != 0 {
		return nil, fmt.Errorf("%w: unexpected data after the signature", ErrInvalidSignature)
	}
	if signer.Type() == ssh.KeyAlgoRSA && sig.Format != ssh.KeyAlgoRSASHA256 && sig.Format != ssh.KeyAlgoRSASHA512 {
		return nil, fmt.Errorf("%w: RSA signature algorithm %q is not accepted, want rsa-sha2-256 or rsa-sha2-512", ErrInvalidSignature, truncate(sig.Format, 32))
	}
	if err := signer.Verify(signedData(blob.Namespace, blob.Reserved, blob.HashAlgorithm, digest), &sig); err != nil {
		return nil, fmt.Errorf("%w: the signature does not match the message and key (was exactly the challenge signed, without a trailing newline?)", ErrInvalidSignature)
	}
	return signer, nil
}

// signedData builds what SSHSIG actually signs (PROTOCOL.sshsig §4): the magic
// preamble, then namespace, reserved, hash algorithm and the message digest,
// each as an SSH string. Signing a digest wrapped this way, rather than the
// message itself, is what keeps an SSHSIG signature from being valid as an
// SSH authentication signature and vice versa.
func signedData(namespace, reserved, hashAlgorithm string, digest []byte) []byte {
	out := make([]byte, 0, len(sigMagic)+4*4+len(namespace)+len(reserved)+len(hashAlgorithm)+len(digest))
	out = append(out, sigMagic...)
	for _, field := range [][]byte{[]byte(namespace), []byte(reserved), []byte(hashAlgorithm), digest} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(field)))
		out = append(out, field...)
	}
	return out
}

// dearmor extracts the blob from the PEM-like armor ssh-keygen writes. It is
// strict about structure (exactly one BEGIN line first and one END line last,
// base64 only in between) and lenient only about what mail clients and text
// areas do: CRLF line ends and surrounding or trailing whitespace.
func dearmor(armored string) ([]byte, error) {
	if len(armored) > maxArmored {
		return nil, fmt.Errorf("%w: input is %d bytes, more than the %d allowed", ErrInvalidSignature, len(armored), maxArmored)
	}
	lines := strings.Split(strings.ReplaceAll(strings.TrimSpace(armored), "\r\n", "\n"), "\n")
	if len(lines) < 3 || strings.TrimSpace(lines[0]) != armorBegin || strings.TrimSpace(lines[len(lines)-1]) != armorEnd {
		return nil, fmt.Errorf("%w: expected the armored output of ssh-keygen -Y sign, from %s to %s", ErrInvalidSignature, armorBegin, armorEnd)
	}
	var b64 strings.Builder
	for _, line := range lines[1 : len(lines)-1] {
		b64.WriteString(strings.TrimSpace(line))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64.String())
	if err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("%w: the text between the BEGIN and END lines is not valid base64", ErrInvalidSignature)
	}
	return raw, nil
}
