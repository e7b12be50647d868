// Package password hashes and verifies passwords with argon2id, stores them as
// PHC strings, enforces the length policy, and bounds how many hashes run at
// once so that a burst of sign-ins cannot exhaust memory or CPU.
package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// MinLength and MaxLength bound a password's length in characters (runes),
// not bytes, so that people writing in any script get the same allowance.
// The upper bound also caps the work an attacker can ask of the hasher.
const (
	MinLength = 8
	MaxLength = 128
)

// ErrPolicy is wrapped by every error Validate returns, so callers can map a
// policy failure to invalid input without parsing messages.
var ErrPolicy = errors.New("password does not meet the policy")

// ErrMalformedHash is wrapped when a stored PHC string cannot be parsed or
// asks for parameters outside the bounds this package is willing to compute.
var ErrMalformedHash = errors.New("malformed password hash")

// Params are the argon2id cost parameters and output sizes.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams returns OWASP's recommended argon2id settings (m=19456 KiB,
// t=2, p=1) with a 16-byte salt and a 32-byte key, as the spec requires.
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// policyError carries a message meant for the person choosing a password; it
// matches ErrPolicy with errors.Is.
type policyError struct{ msg string }

func (e *policyError) Error() string        { return e.msg }
func (e *policyError) Is(target error) bool { return target == ErrPolicy }

// Validate checks a new password against the policy. Every error it returns
// wraps ErrPolicy and has a message fit to show to the user.
func Validate(pw string) error {
	if !utf8.ValidString(pw) {
		return &policyError{"password is not valid UTF-8 text"}
	}
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinLength:
		return &policyError{fmt.Sprintf("password must be at least %d characters long", MinLength)}
	case n > MaxLength:
		return &policyError{fmt.Sprintf("password must be at most %d characters long", MaxLength)}
	}
	return nil
}

const (
	phcAlgorithm = "argon2id"
	phcVersion   = "v=19"
)

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// encode formats a PHC string; the version is fixed because argon2 0x13 is
// the only one golang.org/x/crypto computes.
func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$%s$%s$m=%d,t=%d,p=%d$%s$%s",
		phcAlgorithm, phcVersion, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// limits are the largest parameters decode accepts. A PHC string comes from
// the database, and a tampered or corrupted row must not make one sign-in
// allocate gigabytes or spin for minutes.
type limits struct {
	memory, time uint32
	threads      uint8
}

// limitsFor allows up to four times the larger of the configured and the
// default parameters, so hashes made before a cost increase still verify.
func limitsFor(p Params) limits {
	d := DefaultParams()
	return limits{
		memory:  4 * max(p.Memory, d.Memory),
		time:    4 * max(p.Time, d.Time),
		threads: 4 * max(p.Threads, d.Threads),
	}
}

const (
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedHash, fmt.Sprintf(format, args...))
}

// decode parses a PHC string strictly. Messages never include the string
// itself: it is a password hash and belongs in no log.
func decode(phc string, lim limits) (Params, []byte, []byte, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return Params{}, nil, nil, malformed("want 5 $-separated fields, got %d", len(parts)-1)
	}
	if parts[1] != phcAlgorithm {
		return Params{}, nil, nil, malformed("algorithm is not %s", phcAlgorithm)
	}
	if parts[2] != phcVersion {
		return Params{}, nil, nil, malformed("version is not %s", phcVersion)
	}
	var p Params
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return Params{}, nil, nil, malformed("want parameters m, t and p")
	}
	for i, name := range []string{"m", "t", "p"} {
		value, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return Params{}, nil, nil, malformed("parameter %d is not %s", i+1, name)
		}
		// ParseUint refuses signs and spaces; the round trip also refuses
		// leading zeros, so each hash has exactly one spelling.
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil || strconv.FormatUint(n, 10) != value {
			return Params{}, nil, nil, malformed("parameter %s is not a canonical number", name)
		}
		switch name {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return Params{}, nil, nil, malformed("parameter p=%d is out of range", n)
			}
			p.Threads = uint8(n)
		}
	}
	switch {
	case p.Threads < 1 || p.Threads > lim.threads:
		return Params{}, nil, nil, malformed("parameter p=%d is out of range 1..%d", p.Threads, lim.threads)
	case p.Time < 1 || p.Time > lim.time:
		return Params{}, nil, nil, malformed("parameter t=%d is out of range 1..%d", p.Time, lim.time)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > lim.memory:
		// argon2 needs at least 8 KiB per lane.
		return Params{}, nil, nil, malformed("parameter m=%d is out of range %d..%d", p.Memory, 8*uint32(p.Threads), lim.memory)
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil {
		return Params{}, nil, nil, malformed("salt is not unpadded base64")
	}
	if len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return Params{}, nil, nil, malformed("salt length %d is out of range %d..%d", len(salt), minSaltLen, maxSaltLen)
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil {
		return Params{}, nil, nil, malformed("hash is not unpadded base64")
	}
	if len(key) < minKeyLen || len(key) > maxKeyLen {
		return Params{}, nil, nil, malformed("hash length %d is out of range %d..%d", len(key), minKeyLen, maxKeyLen)
	}
	p.SaltLen = uint32(len(salt))
	p.KeyLen = uint32(len(key))
	return p, salt, key, nil
}

// argon2Key is the real work function; Hasher holds it as a field only so a
// test can observe how many computations overlap.
func argon2Key(pw, salt []byte, p Params) []byte {
	return argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}
