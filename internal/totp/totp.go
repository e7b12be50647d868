// Package totp implements time-based one-time passwords (RFC 6238) with the
// parameters every common authenticator app understands: HMAC-SHA1, six
// digits and a 30-second period.
//
// The HMAC is crypto/hmac's. What is written here is the rest of RFC 4226/6238
// (the counter, the dynamic truncation, the window) because Verify sits on the
// sign-in hot path, where it must compare in constant time and look at every
// step of the window without an early exit; the common TOTP libraries format
// codes with fmt, compare strings with == and stop at the first match.
package totp

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
)

const (
	// Digits is the number of decimal digits in a code; six is what
	// authenticator apps show and what SPEC §3 requires.
	Digits = 6
	// Period is the length of one time step in seconds (RFC 6238 §5.2).
	Period = 30
)

// secretSize is 160 bits, the HMAC-SHA1 output size that RFC 4226 §4
// recommends for the shared secret.
const secretSize = 20

// maxWindow bounds how many steps either side of now Verify looks at. More
// than two steps (a minute of clock drift each way) only helps an attacker.
const maxWindow = 2

// NewSecret reads a fresh 20-byte secret from r, which in production is
// crypto/rand.Reader; it is a parameter so tests can be deterministic.
func NewSecret(r io.Reader) ([]byte, error) {
	secret := make([]byte, secretSize)
	if _, err := io.ReadFull(r, secret); err != nil {
		return nil, fmt.Errorf("totp: reading random secret: %w", err)
	}
	return secret, nil
}

// EncodeSecret returns secret in upper-case base32 without padding, the form
// authenticator apps expect both in otpauth URIs and for manual entry.
func EncodeSecret(secret []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
}

// Step returns the RFC 6238 time step of t: floor(unix seconds / Period). It
// works in int64 throughout, so times past 2^31 seconds (2038) are fine, and
// rounds toward minus infinity so times before 1970 stay monotonic.
func Step(t time.Time) int64 {
	unix := t.Unix()
	step := unix / Period
	if unix%Period < 0 {
		step--
	}
	return step
}

// Code returns the six-digit code for secret at step, with leading zeros. It
// is what an authenticator app shows; the server itself only needs Verify.
func Code(secret []byte, step int64) string {
	k := newKey(secret)
	var out [Digits]byte
	k.code(step, &out)
	return string(out[:])
}

// Verify reports whether code is the code for secret at any step from
// Step(now)-window to Step(now)+window, and if so returns that step (the
// greatest one when several match) so that the caller can refuse it and every
// earlier step from then on. window is clamped to 0…2.
//
// code must be exactly six ASCII digits: signs, spaces, other lengths and
// non-ASCII digits are wrong codes, never normalised. Every step in the window
// is computed and compared in constant time without an early exit, so the
// time taken says nothing about which step, if any, matched. One HMAC is keyed
// per call and reset for each step.
func Verify(secret []byte, code string, now time.Time, window int) (step int64, ok bool) {
	// The shape of the code and the presence of a secret are not secret, so
	// refusing them early leaks nothing.
	if len(code) != Digits || len(secret) == 0 {
		return 0, false
	}
	var got [Digits]byte
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, false
		}
		got[i] = code[i]
	}
	window = max(0, min(window, maxWindow))

	k := newKey(secret)
	current := Step(now)
	var matched int64
	found := 0
	var want [Digits]byte
	for s := current - int64(window); s <= current+int64(window); s++ {
		k.code(s, &want)
		eq := subtle.ConstantTimeCompare(want[:], got[:])
		// Steps rise through the loop, so the last match is the greatest;
		// select it with a mask instead of a branch.
		mask := -int64(eq)
		matched = (s & mask) | (matched &^ mask)
		found |= eq
	}
	if found != 1 {
		return 0, false
	}
	return matched, true
}

// URI returns the otpauth:// URI that a QR code carries, in the Key Uri Format
// of Google Authenticator, which the other apps follow:
//
//	otpauth://totp/Issuer:account?secret=…&issuer=Issuer&algorithm=SHA1&digits=6&period=30
//
// The issuer appears both as the label prefix and as a parameter, as that
// format recommends, so that old and new apps both show it.
func URI(issuer, account string, secret []byte) string {
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	b.WriteString(escape(issuer))
	b.WriteByte(':')
	b.WriteString(escape(account))
	b.WriteString("?secret=")
	b.WriteString(EncodeSecret(secret))
	b.WriteString("&issuer=")
	b.WriteString(escape(issuer))
	fmt.Fprintf(&b, "&algorithm=SHA1&digits=%d&period=%d", Digits, Period)
	return b.String()
}

// escape percent-encodes everything but RFC 3986 unreserved characters and
// '@'. Spaces become %20 rather than '+', because several authenticator apps
// decode the label as a path and would show a literal '+'; a ':' inside an
// issuer or account becomes %3A so it cannot be mistaken for the separator;
// '+' becomes %2B so that form decoders do not turn it into a space. '@' stays
// readable because e-mail addresses are the usual account names.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '@' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// key is an HMAC-SHA1 keyed with one secret, with room for the counter and the
// MAC beside it, so that computing a step allocates nothing beyond newKey.
type key struct {
	mac     hash.Hash
	counter [8]byte
	sum     [sha1.Size]byte
}

func newKey(secret []byte) *key {
	return &key{mac: hmac.New(sha1.New, secret)}
}

// code writes the Digits-digit code for step into out: HMAC-SHA1 over the
// big-endian counter, then the dynamic truncation of RFC 4226 §5.3.
func (k *key) code(step int64, out *[Digits]byte) {
	binary.BigEndian.PutUint64(k.counter[:], uint64(step))
	k.mac.Reset()
	k.mac.Write(k.counter[:])
	mac := k.mac.Sum(k.sum[:0])

	offset := mac[sha1.Size-1] & 0x0f
	v := binary.BigEndian.Uint32(mac[offset:offset+4]) & 0x7fffffff
	for i := Digits - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
}
