package totp_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"github.com/latchkey/latchkey/internal/testenv"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/totp"
)

// rfcSeed is the SHA-1 seed of RFC 6238 appendix B.
var rfcSeed = []byte("12345678901234567890")

// hmacCode is an independent reference built on crypto/hmac, used to check
// the hand-written HMAC, including the pre-hashing of keys over 64 bytes.
func hmacCode(t *testing.T, secret []byte, step int64) string {
	t.Helper()
	mac := hmac.New(sha1.New, secret)
	var counter [8]byte
	binary.BigEndian.PutUint64(counter[:], uint64(step))
	mac.Write(counter[:])
	sum := mac.Sum(nil)
	offset := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[offset:]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1000000)
}

func TestKnownAnswers(t *testing.T) {
	tests := []struct {
		unix int64
		want string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.unix), func(t *testing.T) {
			now := time.Unix(tt.unix, 0)
			if got := totp.Code(rfcSeed, totp.Step(now)); got != tt.want {
				t.Errorf("Code(seed, Step(%d)) = %q, want %q", tt.unix, got, tt.want)
			}
			step, ok := totp.Verify(rfcSeed, tt.want, now, 0)
			if !ok || step != totp.Step(now) {
				t.Errorf("Verify(%q) at %d = %d, %v, want %d, true", tt.want, tt.unix, step, ok, totp.Step(now))
			}
		})
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		unix int64
		want int64
	}{
		{0, 0},
		{29, 0},
		{30, 1},
		{59, 1},
		{1 << 31, (1 << 31) / 30},
		{20000000000, 666666666},
		{-1, -1},
		{-30, -1},
		{-31, -2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.unix), func(t *testing.T) {
			if got := totp.Step(time.Unix(tt.unix, 0)); got != tt.want {
				t.Errorf("Step(%d) = %d, want %d", tt.unix, got, tt.want)
			}
		})
	}
}

func TestCodeMatchesCryptoHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Lengths around the 64-byte block size matter most: up to 64 the key is
	// padded, beyond it RFC 2104 hashes it first.
	for _, n := range []int{0, 1, 10, 16, 20, 32, 63, 64, 65, 100, 128, 200} {
		t.Run(fmt.Sprintf("len%d", n), func(t *testing.T) {
			for range 50 {
				secret := make([]byte, n)
				for i := range secret {
					secret[i] = byte(rng.Uint32())
				}
				step := rng.Int64N(1 << 40)
				if got, want := totp.Code(secret, step), hmacCode(t, secret, step); got != want {
					t.Fatalf("Code(%x, %d) = %q, want %q", secret, step, got, want)
				}
			}
		})
	}
}

func TestVerifyWindow(t *testing.T) {
	now := time.Unix(1111111109, 0)
	current := totp.Step(now)
	tests := []struct {
		name   string
		offset int64
		window int
		ok     bool
	}{
		{"current window 0", 0, 0, true},
		{"previous window 0", -1, 0, false},
		{"previous window 1", -1, 1, true},
		{"next window 1", 1, 1, true},
		{"two back window 1", -2, 1, false},
		{"two ahead window 1", 2, 1, false},
		{"two back window 2", -2, 2, true},
		{"two ahead window 2", 2, 2, true},
		{"three back window 2", -3, 2, false},
		{"three back window 5 clamps to 2", -3, 5, false},
		{"two back window 5 clamps to 2", -2, 5, true},
		{"previous window -1 clamps to 0", -1, -1, false},
		{"current window -1 clamps to 0", 0, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := totp.Code(rfcSeed, current+tt.offset)
			step, ok := totp.Verify(rfcSeed, code, now, tt.window)
			if ok != tt.ok {
				t.Fatalf("Verify(%q, window %d) ok = %v, want %v", code, tt.window, ok, tt.ok)
			}
			if ok && step != current+tt.offset {
				t.Errorf("Verify(%q, window %d) step = %d, want %d", code, tt.window, step, current+tt.offset)
			}
			if !ok && step != 0 {
				t.Errorf("Verify(%q, window %d) step = %d on failure, want 0", code, tt.window, step)
			}
		})
	}
}

// TestVerifyGreatestStep uses secrets whose codes collide on neighbouring
// steps and checks that the later step is reported, so that the caller's
// replay rule (accept only later steps) errs on the side of refusing. The
// secrets are twelve zero bytes and a big-endian counter, found by searching
// counters until two of the three codes around now were equal.
func TestVerifyGreatestStep(t *testing.T) {
	now := time.Unix(1700000000, 0)
	current := totp.Step(now)
	tests := []struct {
		name    string
		counter uint64
		equal   [2]int64 // the colliding step offsets
		want    int64    // offset Verify must report
	}{
		{"previous and current", 239788, [2]int64{-1, 0}, 0},
		{"previous and next", 1503716, [2]int64{-1, 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := binary.BigEndian.AppendUint64(make([]byte, 12), tt.counter)
			code := totp.Code(secret, current+tt.equal[0])
			if other := totp.Code(secret, current+tt.equal[1]); other != code {
				t.Fatalf("fixture: codes at offsets %v are %q and %q, want a collision", tt.equal, code, other)
			}
			step, ok := totp.Verify(secret, code, now, 1)
			if !ok || step != current+tt.want {
				t.Errorf("Verify(%q) = %d, %v, want %d, true", code, step, ok, current+tt.want)
			}
		})
	}
}

func TestVerifyRefusesMalformedCodes(t *testing.T) {
	now := time.Unix(1111111109, 0) // the code here is 081804
	tests := []struct {
		name string
		code string
	}{
		{"empty", ""},
		{"plus sign", "+81804"},
		{"five digits", "81804"},
		{"seven digits", "0081804"},
		{"leading zero added", "0081804"},
		{"arabic-indic", "٠٨١٨٠٤"},
		{"fullwidth", "０８１８０４"},
		{"inner space", "081 804"},
		{"leading space", " 081804"},
		{"trailing space", "081804 "},
		{"trailing newline", "081804\n"},
		{"minus sign", "-81804"},
		{"letters", "O81804"},
		{"nul", "081804\x00"},
		{"wrong code", "081805"},
		{"all zero", "000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if step, ok := totp.Verify(rfcSeed, tt.code, now, 2); ok {
				t.Errorf("Verify(%q) = %d, %v, want 0, false", tt.code, step, ok)
			}
		})
	}
	if _, ok := totp.Verify(rfcSeed, "081804", now, 0); !ok {
		t.Errorf("Verify(%q) = false, want true (control)", "081804")
	}
	if _, ok := totp.Verify(nil, totp.Code(nil, totp.Step(now)), now, 1); ok {
		t.Errorf("Verify with an empty secret = true, want false")
	}
}

// TestVerifyAllocations: Verify keys one HMAC per call, so its allocations are a
// small constant: the same for a right and a wrong code (they say nothing about the
// answer) and for every window (the HMAC is reset, not rebuilt, per step).
func TestVerifyAllocations(t *testing.T) {
	now := time.Unix(2000000000, 0)
	allocs := func(secret []byte, code string, window int) float64 {
		return testing.AllocsPerRun(100, func() { totp.Verify(secret, code, now, window) })
	}
	base := allocs(rfcSeed, "279037", 0)
	if base > 10 {
		t.Errorf("Verify allocates %v times per run, want at most 10", base)
	}
	longSecret := bytes.Repeat([]byte{7}, 100)
	tests := []struct {
		name   string
		secret []byte
		code   string
		window int
	}{
		{"right code, window 2", rfcSeed, "279037", 2},
		{"wrong code, window 0", rfcSeed, "123456", 0},
		{"wrong code, window 2", rfcSeed, "123456", 2},
	}
	for _, tt := range tests {
		if got := allocs(tt.secret, tt.code, tt.window); got != base {
			t.Errorf("%s: Verify allocates %v times per run, want %v as for a right code", tt.name, got, base)
		}
	}
	// A key longer than SHA-1's block is hashed first, which may cost one more.
	if got := allocs(longSecret, totp.Code(longSecret, totp.Step(now)), 2); got > base+1 {
		t.Errorf("long key: Verify allocates %v times per run, want at most %v", got, base+1)
	}
	if got := allocs(rfcSeed, "12345", 2); got != 0 {
		t.Errorf("malformed code: Verify allocates %v times per run, want 0 (refused before the HMAC)", got)
	}
}

func BenchmarkVerify(b *testing.B) {
	now := time.Unix(2000000000, 0)
	b.ReportAllocs()
	for b.Loop() {
		totp.Verify(rfcSeed, "279037", now, 1)
	}
}

func TestSecretEncoding(t *testing.T) {
	if got, want := totp.EncodeSecret(rfcSeed), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; got != want {
		t.Errorf("EncodeSecret(seed) = %q, want %q", got, want)
	}
	secret, err := totp.NewSecret(strings.NewReader(strings.Repeat("x", 20)))
	if err != nil || len(secret) != 20 {
		t.Fatalf("NewSecret = %x, %v, want 20 bytes", secret, err)
	}
	if _, err := totp.NewSecret(strings.NewReader("short")); err == nil {
		t.Errorf("NewSecret(short reader) error = nil, want an error")
	}
	if enc := totp.EncodeSecret(secret); strings.ContainsAny(enc, "=abcdefghijklmnopqrstuvwxyz") || len(enc) != 32 {
		t.Errorf("EncodeSecret(%x) = %q, want 32 upper-case characters without padding", secret, enc)
	}

}

func TestURI(t *testing.T) {
	tests := []struct {
		name, issuer, account string
		wantRaw               string
	}{
		{
			name:    "plain",
			issuer:  "Latchkey",
			account: "alice",
			wantRaw: "otpauth://totp/Latchkey:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Latchkey&algorithm=SHA1&digits=6&period=30",
		},
		{
			name:    "space, at and plus",
			issuer:  "Hugging Face",
			account: "alice+2fa@example.com",
			wantRaw: "otpauth://totp/Hugging%20Face:alice%2B2fa@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Hugging%20Face&algorithm=SHA1&digits=6&period=30",
		},
		{
			name:    "colons escaped",
			issuer:  "A:B",
			account: "c:d",
			wantRaw: "otpauth://totp/A%3AB:c%3Ad?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=A%3AB&algorithm=SHA1&digits=6&period=30",
		},
		{
			name:    "query characters escaped",
			issuer:  "X&Y=Z?",
			account: "a/b#c",
			wantRaw: "otpauth://totp/X%26Y%3DZ%3F:a%2Fb%23c?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=X%26Y%3DZ%3F&algorithm=SHA1&digits=6&period=30",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := totp.URI(tt.issuer, tt.account, rfcSeed)
			if raw != tt.wantRaw {
				t.Errorf("URI(%q, %q) = %q, want %q", tt.issuer, tt.account, raw, tt.wantRaw)
			}
			// Whatever the escaping, a standard parser must get back exactly
			// the issuer, account and parameters that went in.
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("url.Parse(%q) = %v", raw, err)
			}
			if u.Scheme != "otpauth" || u.Host != "totp" {
				t.Errorf("URI(%q, %q) scheme/host = %q/%q, want otpauth/totp", tt.issuer, tt.account, u.Scheme, u.Host)
			}
			label := strings.TrimPrefix(u.EscapedPath(), "/")
			escIssuer, escAccount, found := strings.Cut(label, ":")
			if !found {
				t.Fatalf("URI(%q, %q) label %q has no ':'", tt.issuer, tt.account, label)
			}
			if got, _ := url.PathUnescape(escIssuer); got != tt.issuer {
				t.Errorf("label issuer = %q, want %q", got, tt.issuer)
			}
			if got, _ := url.PathUnescape(escAccount); got != tt.account {
				t.Errorf("label account = %q, want %q", got, tt.account)
			}
			q := u.Query()
			want := url.Values{
				"secret":    {"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"},
				"issuer":    {tt.issuer},
				"algorithm": {"SHA1"},
				"digits":    {"6"},
				"period":    {"30"},
			}
			if q.Encode() != want.Encode() {
				t.Errorf("URI(%q, %q) query = %v, want %v", tt.issuer, tt.account, q, want)
			}
		})
	}
}

// TestOathtool checks Code and Verify against the reference implementation
// from OATH Toolkit over random secrets and times, including times past 2^31.
func TestOathtool(t *testing.T) {
	oathtool := testenv.Tool(t, "oathtool", "oathtool")
	rng := rand.New(rand.NewPCG(42, 6238))
	const runs = 240
	for i := range runs {
		secret := make([]byte, 20)
		for j := range secret {
			secret[j] = byte(rng.Uint32())
		}
		var unix int64
		switch i % 3 {
		case 0:
			unix = rng.Int64N(1 << 31)
		case 1:
			unix = 1<<31 + rng.Int64N(1<<33) // past 2038
		default:
			unix = time.Now().Unix() + rng.Int64N(1<<20)
		}
		b32 := totp.EncodeSecret(secret)
		out, err := exec.Command(oathtool, "--totp", "-b", b32, "-N", fmt.Sprintf("@%d", unix)).Output()
		if err != nil {
			t.Fatalf("oathtool --totp -b %s -N @%d: %v", b32, unix, err)
		}
		want := strings.TrimSpace(string(out))
		now := time.Unix(unix, 0)
		if got := totp.Code(secret, totp.Step(now)); got != want {
			t.Errorf("Code(%s, Step(@%d)) = %q, oathtool says %q", b32, unix, got, want)
		}
		if step, ok := totp.Verify(secret, want, now, 0); !ok || step != totp.Step(now) {
			t.Errorf("Verify(%q) for %s at @%d = %d, %v, want %d, true", want, b32, unix, step, ok, totp.Step(now))
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(rfcSeed, "081804", int64(1111111109), 1)
	f.Add(rfcSeed, "+81804", int64(1111111109), 1)
	f.Add(rfcSeed, "٠٨١٨٠٤", int64(1111111109), 1)
	f.Add([]byte{}, "000000", int64(0), 0)
	f.Add(bytes.Repeat([]byte{1}, 100), "123456", int64(-5), 7)
	f.Fuzz(func(t *testing.T, secret []byte, code string, unix int64, window int) {
		now := time.Unix(unix, 0)
		step, ok := totp.Verify(secret, code, now, window)
		if !ok {
			return
		}
		if len(code) != 6 {
			t.Fatalf("Verify(%q) = true, want false for a code that is not six bytes", code)
		}
		for i := 0; i < len(code); i++ {
			if code[i] < '0' || code[i] > '9' {
				t.Fatalf("Verify(%q) = true, want false for a code that is not six ASCII digits", code)
			}
		}
		if d := step - totp.Step(now); d < -2 || d > 2 {
			t.Fatalf("Verify(%q) step %d is %d steps from now, want at most 2", code, step, d)
		}
		if got := totp.Code(secret, step); got != code {
			t.Fatalf("Verify(%q) step %d, but Code at that step = %q", code, step, got)
		}
	})
}
