package password

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"
)

// ErrOverloaded is wrapped when a hash cannot start soon enough, either
// because the waiting queue is full or because the wait exceeded its limit.
// Callers answer 503 with the Retry-After that RetryAfter suggests.
var ErrOverloaded = errors.New("password hashing is overloaded")

// overloadedError says how long a client should wait before trying again.
type overloadedError struct {
	reason     string
	retryAfter time.Duration
}

func (e *overloadedError) Error() string        { return ErrOverloaded.Error() + ": " + e.reason }
func (e *overloadedError) Is(target error) bool { return target == ErrOverloaded }

// RetryAfter returns the wait to suggest to a client refused with
// ErrOverloaded (one or two seconds), or zero for any other error.
func RetryAfter(err error) time.Duration {
	var oe *overloadedError
	if errors.As(err, &oe) {
		return oe.retryAfter
	}
	return 0
}

// DefaultMaxWait is how long a request may wait for a hashing slot before it
// is refused: the spec's 2 s, after which a quick 503 serves the client better
// than a slow answer.
const DefaultMaxWait = 2 * time.Second

// Hasher hashes and verifies passwords through a bounded pool: at most
// workers argon2 computations at once (each takes Params.Memory KiB), and at
// most maxQueue requests waiting for a turn. It is safe for concurrent use.
type Hasher struct {
	params   Params
	limits   limits
	rand     io.Reader
	maxWait  time.Duration
	maxQueue int64

	slots    chan struct{}
	inFlight atomic.Int64
	waiting  atomic.Int64

	// dummy is a well-formed PHC string that matches no password, verified
	// against when the user is unknown so that case costs the same time.
	dummy string
	work  func(pw, salt []byte, p Params) []byte
}

// NewHasher returns a Hasher producing hashes with p. workers <= 0 means
// runtime.GOMAXPROCS(0); maxWait <= 0 means DefaultMaxWait; maxQueue < 0
// means no one may wait. rand supplies salts (crypto/rand.Reader in
// production).
func NewHasher(p Params, workers int, maxWait time.Duration, maxQueue int, rand io.Reader) *Hasher {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	if maxQueue < 0 {
		maxQueue = 0
	}
	// The dummy's salt and key need not be secret or random: it only has to
	// cost one full argon2 computation with the current parameters and never
	// match, and a key of zero bytes is as unreachable as any other.
	dummy := encode(p, make([]byte, max(p.SaltLen, minSaltLen)), make([]byte, max(p.KeyLen, minKeyLen)))
	return &Hasher{
		params:   p,
		limits:   limitsFor(p),
		rand:     rand,
		maxWait:  maxWait,
		maxQueue: int64(maxQueue),
		slots:    make(chan struct{}, workers),
		dummy:    dummy,
		work:     argon2Key,
	}
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Stats reports the computations running and the requests waiting, for
// /metrics.
func (h *Hasher) Stats() (inFlight, waiting int) {
	return int(h.inFlight.Load()), int(h.waiting.Load())
}

// Hash returns the PHC string of pw under a fresh random salt. It does not
// apply the policy; call Validate first for passwords being chosen.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key, err := h.compute(ctx, []byte(pw), salt, h.params)
	if err != nil {
		return "", err
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether pw matches the PHC string phc, using the parameters
// recorded in phc so that old hashes keep working after a cost change.
// A malformed or out-of-bounds phc gives an error wrapping ErrMalformedHash.
func (h *Hasher) Verify(ctx context.Context, pw, phc string) (bool, error) {
	p, salt, want, err := decode(phc, h.limits)
	if err != nil {
		return false, err
	}
	got, err := h.compute(ctx, []byte(pw), salt, p)
	if err != nil {
		return false, err
	}
	// In constant time, so the comparison leaks nothing about how many leading bytes
	// matched.
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// VerifyDummy does the work of one Verify against a hash no password
// matches, so a sign-in for an unknown user takes as long as a wrong
// password and does not reveal which accounts exist. It still answers
// ErrOverloaded or a context error, as Verify would.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	_, err := h.Verify(ctx, pw, h.dummy)
	return err
}

// compute runs one argon2 computation once a slot is free.
func (h *Hasher) compute(ctx context.Context, pw, salt []byte, p Params) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	h.inFlight.Add(1)
	defer func() {
		h.inFlight.Add(-1)
		<-h.slots
	}()
	return h.work(pw, salt, p), nil
}

// acquire takes a slot, waiting at most maxWait in a queue of at most
// maxQueue. Refusing at once when the queue is full keeps memory for waiting
// goroutines bounded and tells clients to back off before they pile up.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > h.maxQueue {
		h.waiting.Add(-1)
		return &overloadedError{reason: "queue is full", retryAfter: time.Second}
	}
	defer h.waiting.Add(-1)
	timer := time.NewTimer(h.maxWait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return &overloadedError{reason: "no hashing slot became free in time", retryAfter: 2 * time.Second}
	}
}
