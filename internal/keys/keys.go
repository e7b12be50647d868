// Package keys loads the site's secret key and derives from it everything
// that must survive a database leak: the AES-256-GCM key that seals TOTP
// secrets and the HMAC keys that hash recovery codes and tokens.
//
// Each use gets its own subkey through HKDF-SHA256, so a flaw in one use
// (say, an HMAC output shown somewhere) says nothing about another, and the
// sealing key carries an id so that keys can be rotated later without
// guessing which one sealed a row.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/hkdf"
)

// Size is the length of the master secret key in bytes.
const Size = 32

// ErrUnknownKey is wrapped by Open when a ciphertext names a key id this
// keyring does not hold, as after the secret key file has been replaced.
var ErrUnknownKey = errors.New("unknown key id")

// ErrOpen is wrapped by Open when a ciphertext fails authentication: it was
// tampered with, truncated, or sealed for another row.
var ErrOpen = errors.New("ciphertext failed authentication")

// HKDF info strings. They are part of the stored data's meaning: changing
// one makes every existing ciphertext or MAC unreadable.
const (
	infoSeal  = "latchkey v1 seal aes-256-gcm"
	infoKeyID = "latchkey v1 key id"
	infoMAC   = "latchkey v1 mac "
)

// Keyring holds the subkeys derived from one master key. It is safe for
// concurrent use.
type Keyring struct {
	keyID   string
	aead    cipher.AEAD
	macRoot []byte
}

// New derives a Keyring from a 32-byte master key.
func New(master []byte) (*Keyring, error) {
	if len(master) != Size {
		return nil, fmt.Errorf("secret key is %d bytes, want %d", len(master), Size)
	}
	sealKey := derive(master, infoSeal)
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("create AES cipher: %w", err)
	}
	// NewGCMWithRandomNonce draws each 12-byte nonce from crypto/rand and
	// prepends it, so no caller can reuse a nonce by mistake.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("create AES-GCM: %w", err)
	}
	// The id is a hash of a separate derived key, never of the sealing key,
	// so publishing it beside every ciphertext reveals nothing usable.
	idSum := sha256.Sum256(derive(master, infoKeyID))
	return &Keyring{
		keyID:   "k1-" + hex.EncodeToString(idSum[:4]),
		aead:    aead,
		macRoot: derive(master, infoMAC+"root"),
	}, nil
}

// derive expands secret into a 32-byte subkey for one use.
func derive(secret []byte, info string) []byte {
	key := make([]byte, 32)
	// HKDF-SHA256 can produce up to 255*32 bytes; 32 cannot fail.
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, []byte(info)), key); err != nil {
		panic("keys: hkdf: " + err.Error())
	}
	return key
}

// KeyID returns a short, stable id of the sealing key, stored beside each
// ciphertext so that a future key rotation knows which key opens which row.
func (k *Keyring) KeyID() string { return k.keyID }

// Seal encrypts plaintext with AES-256-GCM under a random nonce. aad is
// authenticated but not stored: binding a ciphertext to its row (for example
// "totp:42") stops someone with database access from moving a secret from
// one account to another.
func (k *Keyring) Seal(plaintext, aad []byte) (keyID string, ciphertext []byte, err error) {
	return k.keyID, k.aead.Seal(nil, nil, plaintext, aad), nil
}

// Open decrypts a ciphertext made by Seal with the same aad.
func (k *Keyring) Open(keyID string, ciphertext, aad []byte) ([]byte, error) {
	if keyID != k.keyID {
		return nil, fmt.Errorf("%w %q (this key is %q)", ErrUnknownKey, keyID, k.keyID)
	}
	plaintext, err := k.aead.Open(nil, nil, ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plaintext, nil
}

// MAC returns HMAC-SHA256 of data under a key derived for purpose (for
// example "recovery-code"). The same master and purpose always give the same
// MAC, so stored MACs can be looked up by equality; different purposes give
// unrelated MACs, so a value hashed for one use cannot be replayed as another.
func (k *Keyring) MAC(purpose string, data []byte) []byte {
	m := hmac.New(sha256.New, derive(k.macRoot, infoMAC+purpose))
	m.Write(data)
	return m.Sum(nil)
}

// redacted is what every printing path shows for a Secret.
const redacted = "[redacted]"

// Secret is a string that must not reach logs or error messages: a password,
// a TOTP secret, a token. Every way of printing it shows "[redacted]"; only
// Reveal returns the value, so each use is visible in review.
type Secret string

// String returns "[redacted]" so %v and %s never print the value.
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]" so %#v never prints the value.
func (s Secret) GoString() string { return redacted }

// LogValue returns "[redacted]" so slog handlers never print the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]" so a Secret that ends up in JSON or in a
// structured log by accident stays hidden; responses meant to carry the
// value must put Reveal's result there on purpose.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the value itself.
func (s Secret) Reveal() string { return string(s) }

// encoding is the secret key file's format: one line of standard base64.
var encoding = base64.StdEncoding
