package recovery_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/latchkey/latchkey/internal/recovery"
)

var formatted = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$`)

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

func TestGenerate(t *testing.T) {
	seen := make(map[string]bool)
	used := make(map[rune]bool)
	for range 200 {
		codes, err := recovery.Generate(rand.Reader, recovery.Count)
		if err != nil {
			t.Fatalf("Generate(rand, %d) error = %v", recovery.Count, err)
		}
		if len(codes) != recovery.Count {
			t.Fatalf("Generate(rand, %d) returned %d codes", recovery.Count, len(codes))
		}
		for _, c := range codes {
			if !formatted.MatchString(c) {
				t.Fatalf("Generate code %q does not match %v", c, formatted)
			}
			if seen[c] {
				t.Fatalf("Generate returned %q twice", c)
			}
			seen[c] = true
			canonical, ok := recovery.Normalize(c)
			if !ok || recovery.Format(canonical) != c {
				t.Fatalf("Normalize(%q) = %q, %v, want it to round-trip through Format", c, canonical, ok)
			}
			for _, r := range canonical {
				used[r] = true
			}
		}
	}
	// 3,200 codes of 16 characters: every letter of the alphabet must show
	// up, or the encoding is not using all 5 bits.
	for _, r := range alphabet {
		if !used[r] {
			t.Errorf("Generate never used %q in 3200 codes", r)
		}
	}
}

func TestGenerateEncoding(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"zeros", make([]byte, 10), "0000-0000-0000-0000"},
		{"ones", bytes.Repeat([]byte{0xff}, 10), "zzzz-zzzz-zzzz-zzzz"},
		// 0x00 0x44 0x32 0x14 0xc7 0x42 0x54 0xb6 0x35 0xcf is 0,1,2…31 in
		// five-bit groups, most significant first.
		{"counting", []byte{0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf}, "0123-4567-89ab-cdef"},
		{"high half", []byte{0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf}, "ghjk-mnpq-rstv-wxyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, err := recovery.Generate(bytes.NewReader(tt.raw), 1)
			if err != nil || len(codes) != 1 || codes[0] != tt.want {
				t.Errorf("Generate(%x, 1) = %q, %v, want [%q]", tt.raw, codes, err, tt.want)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name string
		r    func() *bytes.Reader
		n    int
	}{
		{"zero codes", func() *bytes.Reader { return bytes.NewReader(make([]byte, 100)) }, 0},
		{"negative", func() *bytes.Reader { return bytes.NewReader(make([]byte, 100)) }, -1},
		{"too many", func() *bytes.Reader { return bytes.NewReader(make([]byte, 100)) }, 1001},
		{"short reader", func() *bytes.Reader { return bytes.NewReader(make([]byte, 15)) }, 2},
		{"repeating reader", func() *bytes.Reader { return bytes.NewReader(make([]byte, 20)) }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if codes, err := recovery.Generate(tt.r(), tt.n); err == nil {
				t.Errorf("Generate(%s, %d) = %q, nil, want an error", tt.name, tt.n, codes)
			}
		})
	}
	errRead := errors.New("entropy gone")
	if _, err := recovery.Generate(iotest.ErrReader(errRead), 1); !errors.Is(err, errRead) {
		t.Errorf("Generate(failing reader) error = %v, want it to wrap %v", err, errRead)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		input string
		want  string // "" means refused
	}{
		{"abcd-efgh-jkmn-pqrs", "abcdefghjkmnpqrs"},
		{"abcdefghjkmnpqrs", "abcdefghjkmnpqrs"},
		{"ABCD EFGH-JKMN PQRS", "abcdefghjkmnpqrs"},
		{"  abcd-efgh-jkmn-pqrs  ", "abcdefghjkmnpqrs"},
		{"a-b-c-d-e-f-g-h-j-k-m-n-p-q-r-s", "abcdefghjkmnpqrs"},
		{"iIlL-oO00-1111-0000", "11110000" + "11110000"},
		{"vwxy-z012-3456-789a", "vwxyz0123456789a"},
		{"abcd-efgh-jkmn-pqru", ""},   // u is not in the alphabet
		{"abcd-efgh-jkmn-pqrU", ""},   // nor is U
		{"abcd-efgh-jkmn-pqr", ""},    // 15 characters
		{"abcd-efgh-jkmn-pqrst", ""},  // 17 characters
		{"", ""},                      // empty
		{"----", ""},                  // only separators
		{"abcd_efgh_jkmn_pqrs", ""},   // underscores are not separators
		{"abcd\tefgh-jkmn-pqrs", ""},  // nor are tabs
		{"abcd-efgh-jkmn-pqrs\n", ""}, // nor newlines
		{"abcd–efgh–jkmn–pqrs", ""},   // en dashes are not '-'
		{"аbcd-efgh-jkmn-pqrs", ""},   // Cyrillic а
		{"abcd-efgh-jkmn-pqrſ", ""},   // long s
		{"ａｂｃｄ-ｅｆｇｈ-ｊｋｍｎ-ｐｑｒｓ", ""},   // fullwidth
		{"０１２３-４５６７-８９ab-cdef", ""},   // fullwidth digits
		{"abcd-efgh-jkmn-pqrK", "abcdefghjkmnpqrk"},
		{"abcd-efgh-jkmn-pqr\u212a", ""}, // Kelvin sign K
		{strings.Repeat(" ", 100) + "abcdefghjkmnpqrs", ""},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			got, ok := recovery.Normalize(tt.input)
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("Normalize(%q) = %q, %v, want %q, %v", tt.input, got, ok, tt.want, tt.want != "")
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abcdefghjkmnpqrs", "abcd-efgh-jkmn-pqrs"},
		{"", ""},
		{"abcde", "abcd-e"},
	}
	for _, tt := range tests {
		if got := recovery.Format(tt.in); got != tt.want {
			t.Errorf("Format(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFileName(t *testing.T) {
	tests := []struct{ site, want string }{
		{"Latchkey", "latchkey-recovery-codes.txt"},
		{"Hugging Face", "huggingface-recovery-codes.txt"},
		{"GitHub, Inc.", "githubinc-recovery-codes.txt"},
		{"Site 2.0!", "site20-recovery-codes.txt"},
		{"", "latchkey-recovery-codes.txt"},
		{"日本語", "latchkey-recovery-codes.txt"},
		{"Café Ünïcode", "cafncode-recovery-codes.txt"},
		{"../../etc/passwd", "etcpasswd-recovery-codes.txt"},
		{"a\"b\r\nc", "abc-recovery-codes.txt"},
		{strings.Repeat("x", 500), strings.Repeat("x", 64) + "-recovery-codes.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.site, func(t *testing.T) {
			if got := recovery.FileName(tt.site); got != tt.want {
				t.Errorf("FileName(%q) = %q, want %q", tt.site, got, tt.want)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add("abcd-efgh-jkmn-pqrs")
	f.Add("ABCD EFGH-JKMN PQRS")
	f.Add("iIlL-oO00-1111-0000")
	f.Add("ａｂｃｄ-ｅｆｇｈ-ｊｋｍｎ-ｐｑｒｓ")
	f.Add("uuuu-uuuu-uuuu-uuuu")
	f.Fuzz(func(t *testing.T, input string) {
		c, ok := recovery.Normalize(input)
		if !ok {
			if c != "" {
				t.Fatalf("Normalize(%q) = %q, false, want an empty string when refused", input, c)
			}
			return
		}
		if len(c) != 16 {
			t.Fatalf("Normalize(%q) = %q, want 16 characters", input, c)
		}
		for i := 0; i < len(c); i++ {
			if !strings.Contains(alphabet, c[i:i+1]) {
				t.Fatalf("Normalize(%q) = %q, character %q not in the alphabet", input, c, c[i])
			}
		}
		if again, ok := recovery.Normalize(recovery.Format(c)); !ok || again != c {
			t.Fatalf("Normalize(Format(%q)) = %q, %v, want %q, true", c, again, ok, c)
		}
	})
}
