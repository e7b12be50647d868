// Package recovery holds the pure parts of account recovery: single-use
// recovery codes (generation, normalisation of what people type, keyed
// hashing for storage), the SSH public keys users register, and verification
// of SSHSIG signatures made with those keys when every other factor is lost.
//
// Nothing here touches storage or HTTP; the auth service decides when a code
// or a signature counts. The SSHSIG format is parsed here by hand because
// golang.org/x/crypto/ssh provides the key and signature primitives but no
// SSHSIG verifier; only the envelope and the policy are ours.
package recovery

import (
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Count is how many recovery codes a user gets at once (SPEC §3).
const Count = 16

// alphabet is Crockford's base32 in lower case: no i, l, o or u, so that codes
// read aloud or copied by hand cannot be confused (1/l/i, 0/o) and cannot spell
// common obscenities by accident (u).
const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// codeBytes is 80 bits of entropy, far beyond online guessing and enough that
// a copy of the hashes cannot be brute-forced without the key either.
const codeBytes = 10

// codeLen is the number of base32 characters in a code: 80 bits / 5.
const codeLen = codeBytes * 8 / 5

// maxGenerate bounds n in Generate; nothing in Latchkey needs more and a
// mistaken huge n should fail rather than exhaust memory.
const maxGenerate = 1000

// maxInput bounds what Normalize will look at. A code with generous spacing is
// well under this; anything longer is not a code and need not be scanned.
const maxInput = 64

// Generate returns n fresh recovery codes formatted "xxxx-xxxx-xxxx-xxxx",
// each from 80 bits read from r (crypto/rand.Reader in production). It fails
// if r fails or repeats itself within the set, since two equal codes would
// mean a broken randomness source, not bad luck.
func Generate(r io.Reader, n int) ([]string, error) {
	if n < 1 || n > maxGenerate {
		return nil, fmt.Errorf("recovery: cannot generate %d codes, want 1 to %d", n, maxGenerate)
	}
	codes := make([]string, 0, n)
	seen := make(map[string]bool, n)
	var raw [codeBytes]byte
	for range n {
		if _, err := io.ReadFull(r, raw[:]); err != nil {
			return nil, fmt.Errorf("recovery: reading random code: %w", err)
		}
		canonical := encoding.EncodeToString(raw[:])
		if seen[canonical] {
			return nil, errors.New("recovery: randomness source repeated a code")
		}
		seen[canonical] = true
		codes = append(codes, Format(canonical))
	}
	return codes, nil
}

// encoding writes 80 bits as 16 base32 characters of the alphabet, most
// significant bits first; 80 is a multiple of 5, so there is never padding.
var encoding = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

// Normalize turns what a person typed into the canonical code: 16 lower-case
// characters of the alphabet without dashes. It ignores case, spaces and
// dashes and reads i and l as 1 and o as 0, the Crockford rules, so a code
// copied by hand still works. Everything else is refused, including u and
// every non-ASCII character: full-width or other look-alike letters are not
// folded, because a recovery code is compared as bytes and silent folding of
// Unicode would make "the same code" ambiguous. The folding is Crockford's and
// not encoding/base32's, which is why this loop is written here.
func Normalize(input string) (canonical string, ok bool) {
	if len(input) > maxInput {
		return "", false
	}
	var out [codeLen]byte
	n := 0
	for i := 0; i < len(input); i++ {
		c := input[i]
		switch {
		case c == ' ' || c == '-':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		switch c {
		case 'i', 'l':
			c = '1'
		case 'o':
			c = '0'
		}
		if strings.IndexByte(alphabet, c) < 0 {
			return "", false
		}
		if n == codeLen {
			return "", false
		}
		out[n] = c
		n++
	}
	if n != codeLen {
		return "", false
	}
	return string(out[:]), true
}

// Format groups a canonical code as "xxxx-xxxx-xxxx-xxxx", the form shown to
// users and written to the downloaded file. Input of another length is
// grouped the same way, four characters at a time.
func Format(canonical string) string {
	var b strings.Builder
	b.Grow(len(canonical) + len(canonical)/4)
	for i := 0; i < len(canonical); i++ {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(canonical[i])
	}
	return b.String()
}

// maxSlug keeps a file name derived from a long site name comfortably within
// every file system's limit.
const maxSlug = 64

// Slug reduces a site name to lower-case ASCII letters and digits, e.g.
// "Hugging Face" → "huggingface", for use in a download file name. It keeps
// ASCII only so the name is safe in a Content-Disposition header and on every
// file system; a name with nothing usable left becomes "latchkey".
func Slug(siteName string) string {
	var b strings.Builder
	for i := 0; i < len(siteName) && b.Len() < maxSlug; i++ {
		c := siteName[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b.WriteByte(c)
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		}
	}
	if b.Len() == 0 {
		return "latchkey"
	}
	return b.String()
}

// FileName is the name of the recovery-codes download, "<slug>-recovery-codes.txt"
// (SPEC §2.3), so that a user with accounts on several sites can tell the
// files apart.
func FileName(siteName string) string {
	return Slug(siteName) + "-recovery-codes.txt"
}
