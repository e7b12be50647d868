package recovery

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// ErrInvalidKey is wrapped by every error ParsePublicKey returns. The wrapping
// message says what is wrong in words a user can act on, and is safe to show.
var ErrInvalidKey = errors.New("invalid SSH public key")

// maxKeyLine bounds a pasted key line. The largest key we accept, RSA 16384,
// is under 3 KiB in base64; more than this is not a public key.
const maxKeyLine = 16 << 10

// minRSABits follows NIST SP 800-131A: RSA below 2048 bits is no longer
// considered safe for signatures.
const minRSABits = 2048

// acceptedTypes is the message shown whenever a key type is refused.
const acceptedTypes = "use an ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa (2048 bits or more) key"

// ParsePublicKey parses one line in the OpenSSH authorized_keys format, as in
// a ~/.ssh/id_ed25519.pub file, and returns the key and its comment.
//
// Only plain keys that can sign SSHSIG recovery challenges with modern
// algorithms are accepted: ed25519, ECDSA on the NIST curves, and RSA of
// 2048 bits or more. DSA and short RSA keys are too weak; certificates would
// tie recovery to a CA's say-so; security-key (sk-*) keys need a hardware
// token at recovery time, which is exactly what a user may have lost, and
// their signatures carry extra fields we do not check; authorized_keys
// options ("restrict", "command=…") mean nothing here, and accepting them
// would hide that the user pasted something other than a public key.
func ParsePublicKey(line string) (key ssh.PublicKey, comment string, err error) {
	if len(line) > maxKeyLine {
		return nil, "", fmt.Errorf("%w: input is %d bytes, more than the %d allowed for one key", ErrInvalidKey, len(line), maxKeyLine)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, "", fmt.Errorf("%w: no key given; paste the contents of your .pub file", ErrInvalidKey)
	}
	if strings.HasPrefix(line, "-----BEGIN") {
		return nil, "", fmt.Errorf("%w: this looks like a private key or a PEM file; paste the public key (the .pub file) instead", ErrInvalidKey)
	}
	if strings.ContainsAny(line, "\r\n") {
		return nil, "", fmt.Errorf("%w: more than one line; add one key at a time", ErrInvalidKey)
	}

	// Name the problem from the declared type before parsing, so that a DSA
	// or security key gets a precise message even where the parser would
	// only say it found no key.
	declared, _, _ := strings.Cut(line, " ")
	if err := refusedType(declared); err != nil {
		return nil, "", err
	}

	key, comment, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, "", fmt.Errorf("%w: not an OpenSSH public key; expected one line like \"ssh-ed25519 AAAAC3Nza… you@example.com\"", ErrInvalidKey)
	}
	if len(options) > 0 {
		return nil, "", fmt.Errorf("%w: authorized_keys options such as %q are not accepted; paste only the key type, key and comment", ErrInvalidKey, options[0])
	}
	if err := checkKey(key); err != nil {
		return nil, "", err
	}
	if !utf8.ValidString(comment) || strings.ContainsFunc(comment, unicode.IsControl) {
		return nil, "", fmt.Errorf("%w: the comment after the key contains control characters or invalid UTF-8", ErrInvalidKey)
	}
	return key, comment, nil
}

// checkKey applies the key policy of ParsePublicKey to an already parsed key,
// so that keys reaching Latchkey another way (a signature's embedded key, a
// row written by an older version) are held to the same rules.
func checkKey(key ssh.PublicKey) error {
	if key == nil {
		return fmt.Errorf("%w: no key", ErrInvalidKey)
	}
	if err := checkKeyType(key.Type()); err != nil {
		return err
	}
	if key.Type() == ssh.KeyAlgoRSA {
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			return fmt.Errorf("%w: cannot read the RSA key size", ErrInvalidKey)
		}
		pub, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: cannot read the RSA key size", ErrInvalidKey)
		}
		if bits := pub.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("%w: this RSA key has %d bits, at least %d are required; generate a new key with ssh-keygen -t ed25519", ErrInvalidKey, bits, minRSABits)
		}
	}
	return nil
}

// checkKeyType refuses every key type outside the accepted list.
func checkKeyType(typ string) error {
	switch typ {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return nil
	}
	if err := refusedType(typ); err != nil {
		return err
	}
	return fmt.Errorf("%w: unsupported key type %q; %s", ErrInvalidKey, truncate(typ, 40), acceptedTypes)
}

// keyAlgoDSA is the DSA key type's name, spelled out because x/crypto/ssh
// deprecates its own constant along with DSA support.
const keyAlgoDSA = "ssh-dss"

// refusedType names the reason for the key types people commonly paste and
// we refuse on purpose; it returns nil for every other type.
func refusedType(typ string) error {
	switch {
	case typ == keyAlgoDSA:
		return fmt.Errorf("%w: DSA (ssh-dss) keys are insecure and no longer accepted; %s", ErrInvalidKey, acceptedTypes)
	case strings.HasSuffix(typ, "-cert-v01@openssh.com"):
		return fmt.Errorf("%w: SSH certificates are not accepted; paste the plain public key; %s", ErrInvalidKey, acceptedTypes)
	case strings.HasPrefix(typ, "sk-"):
		return fmt.Errorf("%w: security-key (sk-…) keys are not accepted, since recovery must work without the hardware token; %s", ErrInvalidKey, acceptedTypes)
	}
	return nil
}

// Fingerprint returns the key's SHA-256 fingerprint in the form
// `ssh-keygen -lf` prints ("SHA256:" and unpadded base64), so users can match
// what the settings page shows against their own machine.
func Fingerprint(key ssh.PublicKey) string {
	return ssh.FingerprintSHA256(key)
}

// truncate shortens attacker-chosen text before it goes into an error
// message, so an error can never echo kilobytes of input back.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
