package password

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cheap keeps unit tests fast; the real cost is measured in the benchmarks.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newTestHasher(t testing.TB, p Params) *Hasher {
	t.Helper()
	return NewHasher(p, 2, time.Minute, 16, rand.Reader)
}

func TestDefaultParams(t *testing.T) {
	got := DefaultParams()
	want := Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	if got != want {
		t.Errorf("DefaultParams() = %+v, want %+v", got, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		ok   bool
		msg  string
	}{
		{"empty", "", false, "at least 8"},
		{"7 chars", "abcdefg", false, "at least 8"},
		{"8 chars", "abcdefgh", true, ""},
		{"128 chars", strings.Repeat("a", 128), true, ""},
		{"129 chars", strings.Repeat("a", 129), false, "at most 128"},
		{"128 multi-byte runes", strings.Repeat("é", 128), true, ""},
		{"128 four-byte runes", strings.Repeat("🔑", 128), true, ""},
		{"129 multi-byte runes", strings.Repeat("é", 129), false, "at most 128"},
		{"7 multi-byte runes is short despite 14 bytes", strings.Repeat("é", 7), false, "at least 8"},
		{"invalid UTF-8", "abcdefgh\xff", false, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.pw)
			if tt.ok {
				if err != nil {
					t.Errorf("Validate(%q) = %v, want nil", tt.pw, err)
				}
				return
			}
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("Validate(%q) = %v, want an error wrapping ErrPolicy", tt.pw, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Validate(%q) = %q, want a message containing %q", tt.pw, err, tt.msg)
			}
		})
	}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	h := newTestHasher(t, cheap)
	ctx := context.Background()
	tests := []struct {
		name, pw, try string
		want          bool
	}{
		{"same", "correct horse battery", "correct horse battery", true},
		{"wrong", "correct horse battery", "correct horse battery!", false},
		{"case differs", "Password1", "password1", false},
		{"unicode", "pässwörd-🔑", "pässwörd-🔑", true},
		{"empty try", "something long", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phc, err := h.Hash(ctx, tt.pw)
			if err != nil {
				t.Fatalf("Hash(%q) error: %v", tt.pw, err)
			}
			got, err := h.Verify(ctx, tt.try, phc)
			if err != nil {
				t.Fatalf("Verify(%q, %q) error: %v", tt.try, phc, err)
			}
			if got != tt.want {
				t.Errorf("Verify(%q, %q) = %v, want %v", tt.try, phc, got, tt.want)
			}
		})
	}
}

func TestHashFormat(t *testing.T) {
	h := newTestHasher(t, DefaultParams())
	phc, err := h.Hash(context.Background(), "correct horse battery")
	if err != nil {
		t.Fatalf("Hash error: %v", err)
	}
	const prefix = "$argon2id$v=19$m=19456,t=2,p=1$"
	if !strings.HasPrefix(phc, prefix) {
		t.Errorf("Hash() = %q, want prefix %q", phc, prefix)
	}
	parts := strings.Split(phc, "$")
	// 16 bytes and 32 bytes in unpadded base64.
	if len(parts) != 6 || len(parts[4]) != 22 || len(parts[5]) != 43 {
		t.Errorf("Hash() = %q, want a 22-character salt and a 43-character hash", phc)
	}
	other, err := h.Hash(context.Background(), "correct horse battery")
	if err != nil {
		t.Fatalf("Hash error: %v", err)
	}
	if other == phc {
		t.Errorf("Hash() twice = %q both times, want different salts", phc)
	}
}

// TestVerifyReadsParamsFromPHC shows that hashes made with other parameters
// still verify, which is what lets the cost be raised later.
func TestVerifyReadsParamsFromPHC(t *testing.T) {
	ctx := context.Background()
	old := newTestHasher(t, Params{Memory: 32, Time: 3, Threads: 2, SaltLen: 8, KeyLen: 16})
	phc, err := old.Hash(ctx, "password123")
	if err != nil {
		t.Fatalf("Hash error: %v", err)
	}
	h := newTestHasher(t, cheap)
	if got, err := h.Verify(ctx, "password123", phc); !got || err != nil {
		t.Errorf("Verify(%q, %q) = %v, %v, want true, nil", "password123", phc, got, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := newTestHasher(t, cheap)
	const salt = "c2FsdHNhbHRzYWx0c2FsdA"                     // 16 bytes
	const key = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U" // 32 bytes
	ok := "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key
	tests := []struct {
		name, phc, msg string
	}{
		{"empty", "", "fields"},
		{"garbage", "not a hash", "fields"},
		{"too few fields", "$argon2id$v=19$m=64,t=1,p=1$" + salt, "fields"},
		{"too many fields", ok + "$", "fields"},
		{"no leading dollar", "argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$x", "fields"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, "algorithm"},
		{"bcrypt", "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "fields"},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, "version"},
		{"params reordered", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, "is not m"},
		{"params missing", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key, "parameters"},
		{"param not a number", "$argon2id$v=19$m=x,t=1,p=1$" + salt + "$" + key, "canonical number"},
		{"param signed", "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key, "canonical number"},
		{"param leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key, "not a canonical number"},
		{"param negative", "$argon2id$v=19$m=64,t=-1,p=1$" + salt + "$" + key, "canonical number"},
		{"param overflows uint32", "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key, "canonical number"},
		{"zero threads", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, "p=0"},
		{"threads over uint8", "$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key, "p=256"},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, "t=0"},
		{"memory below 8 per lane", "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key, "m=15"},
		{"salt not base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key, "salt"},
		{"salt padded", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, "salt"},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$YWJj$" + key, "salt length"},
		{"hash not base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$@@@@", "hash"},
		{"hash too short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$YWJj", "hash length"},
		{"hash empty", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$", "hash length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(context.Background(), "password123", tt.phc)
			if got || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify(%q) = %v, %v, want false and ErrMalformedHash", tt.phc, got, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Verify(%q) error = %q, want it to mention %q", tt.phc, err, tt.msg)
			}
		})
	}
	if _, err := h.Verify(context.Background(), "password123", ok); err != nil {
		t.Errorf("Verify(%q) error = %v, want the well-formed control to parse", ok, err)
	}
}

// TestVerifyParamBounds makes sure a stored hash cannot make the server do
// more than four times the default work, whatever a database row says.
func TestVerifyParamBounds(t *testing.T) {
	d := DefaultParams()
	lim := limitsFor(cheap)
	tests := []struct {
		name   string
		params string
		ok     bool
	}{
		{"defaults", "m=19456,t=2,p=1", true},
		{"4x memory", "m=77824,t=1,p=1", true},
		{"4x memory plus one", "m=77825,t=1,p=1", false},
		{"4x time", "m=64,t=8,p=1", true},
		{"4x time plus one", "m=64,t=9,p=1", false},
		{"4x threads", "m=64,t=1,p=4", true},
		{"4x threads plus one", "m=64,t=1,p=5", false},
		{"absurd memory", "m=4294967295,t=1,p=1", false},
		{"absurd time", "m=64,t=4294967295,p=1", false},
	}
	if lim.memory != 4*d.Memory || lim.time != 4*d.Time || lim.threads != 4*d.Threads {
		t.Fatalf("limitsFor(%+v) = %+v, want four times the defaults", cheap, lim)
	}
	salt := b64.EncodeToString(make([]byte, 16))
	key := b64.EncodeToString(make([]byte, 32))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phc := "$argon2id$v=19$" + tt.params + "$" + salt + "$" + key
			// decode alone, so the accepted cases cost nothing to test.
			_, _, _, err := decode(phc, lim)
			if (err == nil) != tt.ok {
				t.Errorf("decode(%q) = %v, want ok=%v", phc, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformedHash) {
				t.Errorf("decode(%q) = %v, want ErrMalformedHash", phc, err)
			}
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	h := newTestHasher(t, cheap)
	for _, pw := range []string{"", "password123", strings.Repeat("x", 128)} {
		if err := h.VerifyDummy(context.Background(), pw); err != nil {
			t.Errorf("VerifyDummy(%q) = %v, want nil", pw, err)
		}
	}
	// The dummy must be parseable with the hasher's own parameters, or
	// VerifyDummy would return early and be faster than a real Verify.
	p, _, _, err := decode(h.dummy, h.limits)
	if err != nil {
		t.Fatalf("decode(dummy %q) = %v, want nil", h.dummy, err)
	}
	if p != cheap {
		t.Errorf("dummy params = %+v, want %+v", p, cheap)
	}
}

func TestHashRandFailure(t *testing.T) {
	h := NewHasher(cheap, 1, time.Minute, 1, strings.NewReader("short"))
	if _, err := h.Hash(context.Background(), "password123"); err == nil {
		t.Errorf("Hash with an exhausted rand = nil error, want one")
	}
}

// blockingWork replaces argon2 with a computation the test controls, and
// counts how many run at once independently of the Hasher's own counters.
type blockingWork struct {
	started chan struct{}
	release chan struct{}
	running atomic.Int64
	peak    atomic.Int64
}

func newBlockingWork() *blockingWork {
	return &blockingWork{started: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (b *blockingWork) work(pw, salt []byte, p Params) []byte {
	n := b.running.Add(1)
	for {
		peak := b.peak.Load()
		if n <= peak || b.peak.CompareAndSwap(peak, n) {
			break
		}
	}
	b.started <- struct{}{}
	<-b.release
	b.running.Add(-1)
	return argon2Key(pw, salt, p)
}

func TestOverload(t *testing.T) {
	h := NewHasher(cheap, 1, time.Millisecond, 1, rand.Reader)
	bw := newBlockingWork()
	h.work = bw.work
	ctx := context.Background()

	// Occupy the only worker so every further request must queue or be
	// refused; the outcome then depends on no timing.
	first := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "password123")
		first <- err
	}()
	<-bw.started
	if inFlight, _ := h.Stats(); inFlight != 1 {
		t.Fatalf("Stats() inFlight = %d while one hash runs, want 1", inFlight)
	}

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := h.Hash(ctx, "password123")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	overloaded := 0
	for err := range errs {
		switch {
		case errors.Is(err, ErrOverloaded):
			overloaded++
			if ra := RetryAfter(err); ra < time.Second || ra > 2*time.Second {
				t.Errorf("RetryAfter(%v) = %v, want 1s to 2s", err, ra)
			}
		case err != nil:
			t.Errorf("Hash() error = %v, want nil or ErrOverloaded", err)
		}
	}
	// The worker stays busy until release, so nobody else can have run.
	if overloaded != n {
		t.Errorf("Hash() overloaded %d of %d while the worker was busy, want all", overloaded, n)
	}
	close(bw.release)
	if err := <-first; err != nil {
		t.Errorf("first Hash() = %v, want nil", err)
	}
	if peak := bw.peak.Load(); peak != 1 {
		t.Errorf("peak concurrent computations = %d, want 1", peak)
	}
	if inFlight, waiting := h.Stats(); inFlight != 0 || waiting != 0 {
		t.Errorf("Stats() after the burst = %d, %d, want 0, 0", inFlight, waiting)
	}
}

// TestBoundedConcurrency lets a burst through a two-worker pool and checks
// that no more than two computations ever overlapped.
func TestBoundedConcurrency(t *testing.T) {
	const workers, n = 2, 30
	h := NewHasher(cheap, workers, time.Hour, n, rand.Reader)
	bw := newBlockingWork()
	h.work = bw.work
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := h.Hash(context.Background(), "password123"); err != nil {
				t.Errorf("Hash() = %v, want nil", err)
			}
		})
	}
	go func() {
		for range n {
			<-bw.started
			if inFlight, _ := h.Stats(); inFlight > workers {
				t.Errorf("Stats() inFlight = %d, want at most %d", inFlight, workers)
			}
			bw.release <- struct{}{}
		}
	}()
	wg.Wait()
	if peak := bw.peak.Load(); peak < 1 || peak > workers {
		t.Errorf("peak concurrent computations = %d, want 1..%d", peak, workers)
	}
}

func TestQueueFullRefusesAtOnce(t *testing.T) {
	// maxQueue 0: with the worker busy, a request is refused without waiting
	// even though maxWait is an hour.
	h := NewHasher(cheap, 1, time.Hour, 0, rand.Reader)
	bw := newBlockingWork()
	h.work = bw.work
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Hash(context.Background(), "password123")
	}()
	<-bw.started
	_, err := h.Hash(context.Background(), "password123")
	if !errors.Is(err, ErrOverloaded) {
		t.Errorf("Hash() with a full queue = %v, want ErrOverloaded", err)
	}
	close(bw.release)
	<-done
}

func TestCancelWhileWaiting(t *testing.T) {
	h := NewHasher(cheap, 1, time.Hour, 4, rand.Reader)
	bw := newBlockingWork()
	h.work = bw.work
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Hash(context.Background(), "password123")
	}()
	<-bw.started

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Verify(ctx, "password123", h.dummy)
		errc <- err
	}()
	waitFor(t, func() bool { _, waiting := h.Stats(); return waiting == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Verify() after cancel = %v, want context.Canceled", err)
	}
	if _, waiting := h.Stats(); waiting != 0 {
		t.Errorf("Stats() waiting after cancel = %d, want 0", waiting)
	}
	close(bw.release)
	<-done
}

func TestRetryAfterOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("x"), context.Canceled, ErrMalformedHash} {
		if got := RetryAfter(err); got != 0 {
			t.Errorf("RetryAfter(%v) = %v, want 0", err, got)
		}
	}
}

// waitFor polls until cond holds; it asserts a state, never a duration, and
// the test's own deadline bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}

func FuzzVerifyPHC(f *testing.F) {
	h := NewHasher(cheap, 2, time.Minute, 16, rand.Reader)
	// The only hash in the corpus is of a random password the fuzzer cannot
	// guess, so any true answer is a bug however the string is mutated.
	good, err := h.Hash(context.Background(), rand.Text())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		good, "", "$", "$$$$$", "$argon2id$v=19$m=64,t=1,p=1$$",
		"$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
	} {
		f.Add("password123", s)
	}
	f.Fuzz(func(t *testing.T, pw, phc string) {
		ok, err := h.Verify(context.Background(), pw, phc)
		if ok {
			t.Errorf("Verify(%q, %q) = true, want false", pw, phc)
		}
		if ok && err != nil {
			t.Errorf("Verify(%q, %q) = true with error %v", pw, phc, err)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultParams(), 0, 0, 256, rand.Reader)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := NewHasher(DefaultParams(), 0, 0, 256, rand.Reader)
	ctx := context.Background()
	phc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := h.Verify(ctx, "correct horse battery staple", phc); !ok || err != nil {
			b.Fatalf("Verify() = %v, %v", ok, err)
		}
	}
}

func BenchmarkVerifyDummy(b *testing.B) {
	h := NewHasher(DefaultParams(), 0, 0, 256, rand.Reader)
	ctx := context.Background()
	for b.Loop() {
		if err := h.VerifyDummy(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
