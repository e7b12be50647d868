// Package bench is the benchmark harness behind cmd/latchkey-bench: it starts a real
// server on loopback, provisions its own accounts and measures the hot paths, each
// beside a reference measured in the same run. It is not part of the shipped binary.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/totp"
)

// benchOptions are the flags of 'latchkey-bench'.
type benchOptions struct {
	duration    time.Duration
	concurrency int
	flood       int
	json        bool
	databaseURL string
	// only, when not empty, names the figures to measure (the rest print zero).
	only map[string]bool
	// cpuProfile, when set, is the file that receives a CPU profile of the measured
	// figures (server and load generator share the process, so both show).
	cpuProfile string
}

// benchFigures are the names --only accepts, in the order they run.
var benchFigures = []string{"session_check", "password_signin", "signin_shared", "mfa_step", "shared_address", "signup_flood", "flood"}

// want reports whether the figure name is to be measured.
func (o benchOptions) want(name string) bool { return len(o.only) == 0 || o.only[name] }

// benchReport is what 'latchkey-bench --json' prints; the text form prints one line per
// figure with the same names.
type benchReport struct {
	Database     string      `json:"database"`
	CPUs         int         `json:"cpus"`
	Duration     string      `json:"duration"`
	Concurrency  int         `json:"concurrency"`
	SessionCheck benchFigure `json:"session_check"`
	Signin       benchFigure `json:"password_signin"`
	MFAStep      benchFigure `json:"mfa_step"`
	// SigninShared is the sign-in of signinSharedClients clients over as many accounts,
	// all from one address (an office, a CI runner), against raw argon2id.
	SigninShared  benchFigure  `json:"signin_shared"`
	SharedAddress burstFigure  `json:"shared_address"`
	SignupFlood   signupFigure `json:"signup_flood"`
	Flood         floodFigure  `json:"flood"`
}

// burstFigure is how a burst of simultaneous requests was answered.
type burstFigure struct {
	Requests int         `json:"requests"`
	Statuses map[int]int `json:"statuses"`
}

// signupFigure is a flood of sign-ups from many addresses while a user signs in: how
// both were answered during it, and the user's first sign-in after it.
type signupFigure struct {
	Signups map[int]int `json:"signups"`
	Signins map[int]int `json:"signins"`
	After   int         `json:"after_status"`
	// AfterMs is how long that sign-in took.
	AfterMs float64 `json:"after_ms"`
}

// benchFigure is one throughput measured beside its reference in the same run, so the
// ratio means something on a noisy machine where the absolute numbers do not.
type benchFigure struct {
	PerS     float64 `json:"per_s"`
	RefPerS  float64 `json:"ref_per_s"`
	Ratio    float64 `json:"ratio"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	RefP50ms float64 `json:"ref_p50_ms"`
	RefP99ms float64 `json:"ref_p99_ms"`
	Errors   int     `json:"errors"` // failed operations, measured and reference
	// StorePerS, for the second-factor step on SQLite only, is the same one-row update
	// through the store's own write path, where concurrent updates share commits, and
	// StoreRatio is PerS over it: the like-for-like ratio beside the raw one.
	StorePerS  float64 `json:"store_per_s,omitempty"`
	StoreRatio float64 `json:"store_ratio,omitempty"`
	// DirectPerS, for the second-factor step, is the same step called on the Service
	// in the bench's process, without HTTP: the same rules and store calls. DirectRatio
	// is it over its own reference, measured beside it: how close the step could come
	// if HTTP cost nothing, so what is left is the database's.
	DirectPerS  float64 `json:"direct_per_s,omitempty"`
	DirectRatio float64 `json:"direct_ratio,omitempty"`
	// TooMany counts 429 answers among the measured requests.
	TooMany int `json:"status_429"`
}

// floodFigure is the answer of a server to a burst of simultaneous sign-ins.
type floodFigure struct {
	Requests   int         `json:"requests"`
	PeakRSSMiB float64     `json:"peak_rss_mib"`
	Answered   int         `json:"answered"`
	Statuses   map[int]int `json:"statuses"`
	NoAnswer   int         `json:"no_answer"`
	// Mode is "child" when the server ran as a child process (its own VmHWM), or
	// "in_process" when it could not (the bench's VmHWM, client included).
	Mode string `json:"mode"`
}

func parseBenchFlags(args []string, stdout io.Writer) (benchOptions, error) {
	o := benchOptions{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	// The flag package would print the whole usage on every mistake; the error alone,
	// on one line, is what Run shows.
	fs.SetOutput(io.Discard)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measurement")
	fs.IntVar(&o.concurrency, "concurrency", 32, "simultaneous clients")
	fs.IntVar(&o.flood, "flood", 400, "simultaneous sign-ins of the flood")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of lines")
	fs.StringVar(&o.databaseURL, "database-url", "", "postgres://… of a scratch database (default: a temporary SQLite file)")
	only := fs.String("only", "", "comma-separated figures to measure: "+strings.Join(benchFigures, ","))
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the measurements to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "Usage: latchkey-bench [--duration 5s] [--concurrency 32] [--flood 400] [--json] [--database-url URL] [--only FIGURES] [--cpuprofile FILE]")
			fs.PrintDefaults()
		}
		return o, err
	}
	if *only != "" {
		o.only = map[string]bool{}
		for _, name := range strings.Split(*only, ",") {
			if !slices.Contains(benchFigures, name) {
				return o, fmt.Errorf("--only: unknown figure %q (known: %s)", name, strings.Join(benchFigures, ","))
			}
			o.only[name] = true
		}
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("bench takes no arguments, got %q", fs.Arg(0))
	case o.duration <= 0 || o.duration > time.Hour:
		return o, fmt.Errorf("--duration must be between 0 and 1h, got %s", o.duration)
	case o.concurrency < 1 || o.concurrency > 4096:
		return o, fmt.Errorf("--concurrency must be between 1 and 4096, got %d", o.concurrency)
	case o.flood < 1 || o.flood > 10000:
		return o, fmt.Errorf("--flood must be between 1 and 10000, got %d", o.flood)
	case o.databaseURL != "" && !strings.HasPrefix(o.databaseURL, "postgres://") && !strings.HasPrefix(o.databaseURL, "postgresql://"):
		return o, errors.New("--database-url must be a postgres:// URL (SQLite runs in a temporary file)")
	}
	return o, nil
}

// bench starts a real server on loopback, provisions its own accounts and measures the
// hot paths, each beside a reference measured in the same run.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBenchFlags(args, stdout)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "latchkey-bench-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	dbURL, dbName := o.databaseURL, "postgres"
	if dbURL == "" {
		dbURL, dbName = "sqlite:"+filepath.Join(dir, "bench.db"), "sqlite"
	}
	// The loopback client stands for many users behind a trusted proxy: each sign-in
	// names its own address in X-Forwarded-For, as real users arrive from their own,
	// so the per-IP password counter measures what it would in production instead
	// of locking one shared address.
	cfgArgs := []string{"--database-url", dbURL, "--secret-key-file", filepath.Join(dir, "secret.key"), "--addr", "127.0.0.1:0",
		"--trusted-proxies", "127.0.0.1/32"}
	cfg, _, err := config.Load("bench", cfgArgs, func(string) string { return "" }, io.Discard, nil)
	if err != nil {
		return err
	}
	b := &benchRun{o: o, cfg: cfg, cfgArgs: cfgArgs, stderr: stderr}
	b.clock.Store(time.Now().UTC().Truncate(time.Second).UnixNano())
	rep := benchReport{Database: dbName, CPUs: runtime.GOMAXPROCS(0), Duration: o.duration.String(), Concurrency: o.concurrency}
	if err := b.run(ctx, &rep); err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "# latchkey bench database=%s cpus=%d duration=%s concurrency=%d\n", rep.Database, rep.CPUs, rep.Duration, rep.Concurrency)
	for _, f := range []struct {
		name string
		f    benchFigure
	}{{"session_check", rep.SessionCheck}, {"password_signin", rep.Signin}, {"signin_shared", rep.SigninShared}, {"mfa_step", rep.MFAStep}} {
		if !o.want(f.name) {
			continue
		}
		fmt.Fprintf(stdout, "%s per_s=%.1f ref_per_s=%.1f ratio=%.3f p50_ms=%.2f p99_ms=%.2f ref_p50_ms=%.2f ref_p99_ms=%.2f errors=%d",
			f.name, f.f.PerS, f.f.RefPerS, f.f.Ratio, f.f.P50ms, f.f.P99ms, f.f.RefP50ms, f.f.RefP99ms, f.f.Errors)
		if f.f.StorePerS > 0 {
			fmt.Fprintf(stdout, " store_per_s=%.1f store_ratio=%.3f", f.f.StorePerS, f.f.StoreRatio)
		}
		if f.f.DirectPerS > 0 {
			fmt.Fprintf(stdout, " direct_per_s=%.1f direct_ratio=%.3f", f.f.DirectPerS, f.f.DirectRatio)
		}
		if f.name == "signin_shared" {
			fmt.Fprintf(stdout, " status_429=%d", f.f.TooMany)
		}
		fmt.Fprintln(stdout)
	}
	if o.want("shared_address") {
		sa := rep.SharedAddress
		fmt.Fprintf(stdout, "shared_address requests=%d status_200=%d status_429=%d status_503=%d other=%d\n",
			sa.Requests, sa.Statuses[200], sa.Statuses[429], sa.Statuses[503], sa.Requests-sa.Statuses[200]-sa.Statuses[429]-sa.Statuses[503])
	}
	if o.want("signup_flood") {
		sf := rep.SignupFlood
		fmt.Fprintf(stdout, "signup_flood signups=%d signup_201=%d signup_503=%d signins=%d signin_200=%d signin_429=%d signin_503=%d after_status=%d after_ms=%.1f\n",
			total(sf.Signups), sf.Signups[201], sf.Signups[503], total(sf.Signins), sf.Signins[200], sf.Signins[429], sf.Signins[503], sf.After, sf.AfterMs)
	}
	if !o.want("flood") {
		return nil
	}
	fl := rep.Flood
	fmt.Fprintf(stdout, "flood requests=%d peak_rss_mib=%.1f answered=%d status_200=%d status_429=%d status_503=%d no_answer=%d mode=%s\n",
		fl.Requests, fl.PeakRSSMiB, fl.Answered, fl.Statuses[200], fl.Statuses[429], fl.Statuses[503], fl.NoAnswer, fl.Mode)
	return nil
}

// benchRun holds one run's state. The server's clock is ours: it stands still, and
// moves only when the second-factor measurement needs a fresh TOTP step.
type benchRun struct {
	o       benchOptions
	cfg     config.Config
	cfgArgs []string
	stderr  io.Writer
	clock   atomic.Int64
	app     *cli.App
	url     string
	client  *http.Client
	prefix  string
}

func (b *benchRun) now() time.Time { return time.Unix(0, b.clock.Load()).UTC() }

const benchPassword = "bench password 1234"

func (b *benchRun) run(ctx context.Context, rep *benchReport) error {
	// Info-level logging to nowhere: the server pays for formatting its log lines, as
	// it would in production, without the bench's output drowning in them.
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: b.cfg.LogLevel}))
	app, err := cli.NewApp(ctx, b.cfg, logger, b.now)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			app.Close()
		}
	}()
	if us, err := app.Store.ListUsers(ctx); err != nil {
		return err
	} else if len(us) > 0 {
		return fmt.Errorf("the bench database already has %d accounts: give it an empty scratch database", len(us))
	}
	b.app = app
	b.prefix = "b" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	sctx, stop := context.WithCancel(ctx)
	url, done, err := serveOn(sctx, app.Serve)
	if err != nil {
		stop()
		return err
	}
	b.url = url
	b.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxIdleConnsPerHost: b.o.concurrency, DisableCompression: true}}

	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"session_check", func(ctx context.Context) (err error) { rep.SessionCheck, err = b.sessionCheck(ctx); return err }},
		{"password_signin", func(ctx context.Context) (err error) { rep.Signin, err = b.signin(ctx); return err }},
		{"signin_shared", func(ctx context.Context) (err error) { rep.SigninShared, err = b.signinShared(ctx); return err }},
		{"mfa_step", func(ctx context.Context) (err error) { rep.MFAStep, err = b.mfaStep(ctx); return err }},
		{"shared_address", func(ctx context.Context) (err error) { rep.SharedAddress, err = b.sharedAddress(ctx); return err }},
		{"signup_flood", func(ctx context.Context) (err error) { rep.SignupFlood, err = b.signupFlood(ctx); return err }},
	}
	stopProfile, err := startCPUProfile(b.o.cpuProfile)
	if err != nil {
		stop()
		<-done
		return err
	}
	for _, s := range steps {
		if !b.o.want(s.name) {
			continue
		}
		if err := s.f(ctx); err != nil {
			stopProfile()
			stop()
			<-done
			// %v, not %w: the CLI shows only the message of a domain error, and here
			// which step failed matters more.
			return fmt.Errorf("bench %s: %v", strings.ReplaceAll(s.name, "_", " "), err)
		}
	}
	if err := stopProfile(); err != nil {
		stop()
		<-done
		return err
	}
	b.client.CloseIdleConnections()
	if !b.o.want("flood") {
		stop()
		return <-done
	}
	if _, err := b.createUsers(ctx, "f", b.o.flood); err != nil {
		stop()
		<-done
		return fmt.Errorf("bench flood: %w", err)
	}

	exe, _ := os.Executable()
	if exe == "" || strings.HasSuffix(exe, ".test") {
		// Under 'go test' the executable is the test binary, which has no 'serve':
		// flood the in-process server and report this process's high-water mark.
		rep.Flood, err = b.flood(ctx, b.url, os.Getpid(), "in_process")
		stop()
		<-done
		return err
	}
	stop()
	if err := <-done; err != nil {
		return err
	}
	app.Close()
	closed = true
	rep.Flood, err = b.floodChild(ctx, exe)
	return err
}

// startCPUProfile starts a CPU profile into the file at path, if path is not empty, and
// returns the function that ends it and closes the file.
func startCPUProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	stopped := false
	return func() error {
		if stopped {
			return nil
		}
		stopped = true
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil
	}, nil
}

// serveOn runs serve on a new loopback listener and returns its URL and a channel
// that yields serve's result.
func serveOn(ctx context.Context, serve func(context.Context, net.Listener) error) (string, <-chan error, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, l) }()
	return "http://" + l.Addr().String(), done, nil
}

// benchToken returns a random bearer secret and its stored form. The Service stores
// SHA-256 of the secret; a bench that got this wrong would fail loudly at the first
// request, never measure something else.
func benchToken() (string, []byte) { return benchTokenFrom(rand.Reader) }

// benchTokenFrom makes a session token as the Service does: 32 random bytes as
// base64url, never starting with auth.TokenPrefix, which would make it a personal
// access token (one random token in 262,144 does; a run makes tens of thousands).
func benchTokenFrom(r io.Reader) (string, []byte) {
	raw := make([]byte, 32)
	for {
		if _, err := io.ReadFull(r, raw); err != nil {
			panic(err) // crypto/rand does not fail
		}
		tok := base64.RawURLEncoding.EncodeToString(raw)
		if !strings.HasPrefix(tok, auth.TokenPrefix) {
			h := sha256.Sum256([]byte(tok))
			return tok, h[:]
		}
	}
}

// createUsers inserts n accounts through the store, all with one precomputed password
// hash: provisioning thousands of accounts through argon2id would take minutes and
// measure nothing of interest.
func (b *benchRun) createUsers(ctx context.Context, tag string, n int) ([]*auth.User, error) {
	hash, err := b.app.Hasher.Hash(ctx, benchPassword)
	if err != nil {
		return nil, err
	}
	us := make([]*auth.User, n)
	err = forEach(ctx, n, b.o.concurrency, func(i int) error {
		name := fmt.Sprintf("%s%s%d", b.prefix, tag, i)
		u := &auth.User{Username: name, Email: name + "@bench.invalid", PasswordHash: hash, CreatedAt: b.now()}
		if err := b.app.Store.CreateUser(ctx, u); err != nil {
			return err
		}
		us[i] = u
		return nil
	})
	return us, err
}

// forEach calls f(0…n-1) on workers goroutines and returns the first error.
func forEach(ctx context.Context, n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// loadResult is one measurement: completed operations, how long, their latencies.
type loadResult struct {
	n       int
	errors  int
	elapsed time.Duration
	lat     []time.Duration
}

func (r loadResult) perS() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r loadResult) pct(p float64) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(r.lat)))) - 1
	return float64(r.lat[max(0, min(i, len(r.lat)-1))]) / float64(time.Millisecond)
}

// errExhausted ends a worker early: it has no unused account left.
var errExhausted = errors.New("exhausted")

// load runs op on workers goroutines for d, or until every worker is exhausted. op
// returns errExhausted when it has nothing left, another error for a failed request.
// Operations in flight at the deadline finish and count, and the elapsed time runs
// until the last one ends: dropping them would bias slow operations (an argon2id hash
// takes a sizeable part of a short window) towards a lower rate.
func load(ctx context.Context, workers int, d time.Duration, op func(worker, i int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lats := make([][]time.Duration, workers)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				t := time.Now()
				err := op(w, i)
				if errors.Is(err, errExhausted) {
					return
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				lats[w] = append(lats[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	r := loadResult{errors: int(errs.Load()), elapsed: time.Since(start)}
	for _, l := range lats {
		r.lat = append(r.lat, l...)
	}
	r.n = len(r.lat)
	slices.Sort(r.lat)
	return r
}

// merge joins two measurements of the same thing into one.
func merge(a, b loadResult) loadResult {
	r := loadResult{n: a.n + b.n, errors: a.errors + b.errors, elapsed: a.elapsed + b.elapsed,
		lat: append(slices.Clone(a.lat), b.lat...)}
	slices.Sort(r.lat)
	return r
}

// bracketRounds is how many slices of the measurement alternate with the reference.
const bracketRounds = 2

// bracket alternates the reference and the measurement, each for d in all: the
// reference for d/4, the measurement for d/2, the reference for d/2, the measurement
// for d/2, the reference for d/4, and merges the slices of each. On a shared machine
// whose speed drifts by tens of percent within seconds (other tenants), both sides
// then see the same machine on average, and the ratio measures Latchkey rather than
// the moment. (Measured one after the other, the same build's sign-in ratio ranged
// 0.72–0.95; its reference alone moved 51–81 hashes/s within one run.)
//
// In a --cpuprofile, the reference's samples carry the label side=ref, and those of
// the measurement's clients side=measure; the server's own goroutines, and the
// runtime's, carry none. So `go tool pprof -tagignore side=ref` leaves out the
// reference's own work, whatever it spawned: all of it for the sign-in's argon2id and
// the second-factor step's updates, but only the clients for the session check, whose
// bare reference handler runs in server goroutines (labelling those per request would
// slow the reference).
func bracket(ref, measure func(d time.Duration) loadResult, d time.Duration) (got, r loadResult) {
	slice := d / bracketRounds
	side := func(name string, f func(time.Duration) loadResult, d time.Duration) (res loadResult) {
		pprof.Do(context.Background(), pprof.Labels("side", name), func(context.Context) { res = f(d) })
		return res
	}
	r = side("ref", ref, slice/2)
	for i := range bracketRounds {
		got = merge(got, side("measure", measure, slice))
		end := slice
		if i == bracketRounds-1 {
			end = slice / 2
		}
		r = merge(r, side("ref", ref, end))
	}
	return got, r
}

func figure(got, ref loadResult) benchFigure {
	f := benchFigure{PerS: got.perS(), RefPerS: ref.perS(), P50ms: got.pct(0.50), P99ms: got.pct(0.99),
		RefP50ms: ref.pct(0.50), RefP99ms: ref.pct(0.99), Errors: got.errors + ref.errors}
	if f.RefPerS > 0 {
		f.Ratio = f.PerS / f.RefPerS
	}
	return f
}

// do sends one request and reads the whole answer; any status but want is an error.
func (b *benchRun) do(method, url, token string, body []byte, want int, out any) error {
	return b.doFrom("", method, url, token, body, want, out)
}

// doFrom is do for a client at ip (X-Forwarded-For; "" for none).
func (b *benchRun) doFrom(ip, method, url, token string, body []byte, want int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == want {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", method, url, resp.StatusCode, want)
	}
	return nil
}

// sessionCheck measures GET /api/v1/me with bearer sessions against a bare net/http
// handler that encodes a JSON object of the same shape, with the same client.
func (b *benchRun) sessionCheck(ctx context.Context) (benchFigure, error) {
	us, err := b.createUsers(ctx, "s", b.o.concurrency)
	if err != nil {
		return benchFigure{}, err
	}
	tokens := make([]string, len(us))
	for i, u := range us {
		tok, hash := benchToken()
		now := b.now()
		s := &auth.Session{UserID: u.ID, TokenHash: hash, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour),
			ReauthAt: now, IP: "127.0.0.1", UserAgent: "latchkey bench"}
		if err := b.app.Store.CreateSession(ctx, s); err != nil {
			return benchFigure{}, err
		}
		tokens[i] = tok
	}
	if err := b.do("GET", b.url+"/api/v1/me", tokens[0], nil, 200, nil); err != nil {
		return benchFigure{}, err
	}

	payload := map[string]any{
		"user": map[string]any{"id": 1, "username": "reference", "email": "reference@bench.invalid",
			"email_verified": false, "is_admin": false, "created_at": b.now()},
		"mfa": map[string]any{"enabled": false, "methods": []string{}, "recovery_codes_remaining": nil},
	}
	rctx, rstop := context.WithCancel(ctx)
	refURL, refDone, err := serveOn(rctx, func(ctx context.Context, l net.Listener) error {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(payload)
		})}
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if err != nil {
		rstop()
		return benchFigure{}, err
	}
	got, ref := bracket(func(d time.Duration) loadResult {
		return load(ctx, b.o.concurrency, d, func(w, i int) error {
			return b.do("GET", refURL+"/", tokens[w], nil, 200, nil)
		})
	}, func(d time.Duration) loadResult {
		return load(ctx, b.o.concurrency, d, func(w, i int) error {
			return b.do("GET", b.url+"/api/v1/me", tokens[w], nil, 200, nil)
		})
	}, b.o.duration)
	rstop()
	<-refDone
	return figure(got, ref), nil
}

// signin measures POST /api/v1/login (accounts without MFA, each worker with its own
// accounts so the per-account counters never meet) against GOMAXPROCS goroutines
// computing argon2id with the server's parameters for as long.
func (b *benchRun) signin(ctx context.Context) (benchFigure, error) {
	const perWorker = 4
	us, err := b.createUsers(ctx, "p", b.o.concurrency*perWorker)
	if err != nil {
		return benchFigure{}, err
	}
	bodies := make([][]byte, len(us))
	for i, u := range us {
		bodies[i], _ = json.Marshal(map[string]string{"login": u.Username, "password": benchPassword})
	}

	// A cold process hashes far slower while its heap grows to hold the 19 MiB blocks
	// (fresh pages fault in): warm up untimed, so neither side pays for it.
	signin := func(w, i int) error {
		k := w*perWorker + i%perWorker
		return b.doFrom(benchIP(k), "POST", b.url+"/api/v1/login", "", bodies[k], 200, nil)
	}
	load(ctx, b.o.concurrency, b.o.duration/4, signin)
	p := b.app.Hasher.Params()
	salt := make([]byte, p.SaltLen)
	got, ref := bracket(func(d time.Duration) loadResult {
		return load(ctx, runtime.GOMAXPROCS(0), d, func(w, i int) error {
			argon2.IDKey([]byte(benchPassword), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
			return nil
		})
	}, func(d time.Duration) loadResult { return load(ctx, b.o.concurrency, d, signin) }, b.o.duration)
	return figure(got, ref), nil
}

// signinSharedClients is how many clients sign in at once from one address in the
// signin_shared figure.
const signinSharedClients = 8

// sharedIP is the one address of the shared-address figures.
const sharedIP = "198.51.100.77"

// signinShared measures sign-ins of 8 clients over 8 accounts, all from one address,
// against raw argon2id: the per-address limit counts failures only, and parallel
// right passwords are never refused, so it should cost nothing beside the hashes. A
// 429 is counted, not retried.
func (b *benchRun) signinShared(ctx context.Context) (benchFigure, error) {
	us, err := b.createUsers(ctx, "o", signinSharedClients)
	if err != nil {
		return benchFigure{}, err
	}
	bodies := make([][]byte, len(us))
	for i, u := range us {
		bodies[i], _ = json.Marshal(map[string]string{"login": u.Username, "password": benchPassword})
	}
	var tooMany atomic.Int64
	signin := func(w, i int) error {
		st, err := b.status(sharedIP, "/api/v1/login", bodies[w%len(bodies)])
		if st == http.StatusTooManyRequests {
			tooMany.Add(1)
		}
		if err == nil && st != 200 {
			err = fmt.Errorf("sign-in: status %d", st)
		}
		return err
	}
	load(ctx, signinSharedClients, b.o.duration/4, signin)
	tooMany.Store(0)
	p := b.app.Hasher.Params()
	salt := make([]byte, p.SaltLen)
	got, ref := bracket(func(d time.Duration) loadResult {
		return load(ctx, runtime.GOMAXPROCS(0), d, func(w, i int) error {
			argon2.IDKey([]byte(benchPassword), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
			return nil
		})
	}, func(d time.Duration) loadResult { return load(ctx, signinSharedClients, d, signin) }, b.o.duration)
	f := figure(got, ref)
	f.TooMany = int(tooMany.Load())
	return f, nil
}

// status posts body to path as a client at ip and returns the answer's status.
func (b *benchRun) status(ip, path string, body []byte) (int, error) {
	req, err := http.NewRequest("POST", b.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// sharedAddress sends --flood simultaneous right-password sign-ins to as many
// accounts, all from one address: each should get 200 or 503, never 429.
func (b *benchRun) sharedAddress(ctx context.Context) (burstFigure, error) {
	us, err := b.createUsers(ctx, "a", b.o.flood)
	if err != nil {
		return burstFigure{}, err
	}
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: b.o.flood}}
	defer client.CloseIdleConnections()
	f := burstFigure{Requests: len(us), Statuses: map[int]int{}}
	var mu sync.Mutex
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, u := range us {
		body := fmt.Sprintf(`{"login":%q,"password":%q}`, u.Username, benchPassword)
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest("POST", b.url+"/api/v1/login", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", sharedIP)
			st := 0
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				st = resp.StatusCode
			}
			mu.Lock()
			f.Statuses[st]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return f, ctx.Err()
}

// signupFlood floods sign-ups from many addresses (a botnet: no per-address limit
// holds it), from --flood/2 clients for --duration, while one user signs in again and again from their own
// address, then signs that user in once more: the flood's 503s must not have counted,
// so that sign-in is answered 200 at once.
func (b *benchRun) signupFlood(ctx context.Context) (signupFigure, error) {
	us, err := b.createUsers(ctx, "v", 1)
	if err != nil {
		return signupFigure{}, err
	}
	body, _ := json.Marshal(map[string]string{"login": us[0].Username, "password": benchPassword})
	const userIP = "198.51.100.99"
	f := signupFigure{Signups: map[int]int{}, Signins: map[int]int{}}
	var mu sync.Mutex
	fctx, stop := context.WithTimeout(ctx, b.o.duration)
	defer stop()
	var wg sync.WaitGroup
	var seq atomic.Int64
	// Half the flood's size in clients: enough to keep the hashing queue's waits past
	// its limit, so the pool sheds with 503, as a real flood would make it.
	for range max(b.o.flood/2, 1) {
		wg.Go(func() {
			for fctx.Err() == nil {
				n := seq.Add(1)
				name := fmt.Sprintf("%sflood%d", b.prefix, n)
				sb, _ := json.Marshal(map[string]string{"username": name, "email": name + "@bench.invalid",
					"password": "pw-" + name + "-correct-horse"})
				st, _ := b.status(benchIP(int(n)+1<<20), "/api/v1/signup", sb)
				mu.Lock()
				f.Signups[st]++
				mu.Unlock()
			}
		})
	}
	for fctx.Err() == nil {
		st, _ := b.status(userIP, "/api/v1/login", body)
		mu.Lock()
		f.Signins[st]++
		mu.Unlock()
	}
	wg.Wait()
	t := time.Now()
	f.After, err = b.status(userIP, "/api/v1/login", body)
	f.AfterMs = float64(time.Since(t)) / float64(time.Millisecond)
	return f, err
}

func total(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// mfaAccount is an enrolled account with a pending login awaiting its code.
type mfaAccount struct {
	id          auth.UserID
	secret      []byte
	body        []byte
	token, code string
}

// enrol creates n accounts and turns TOTP on for each through the Service at the
// current (frozen) time, so each has accepted exactly the current step.
func (b *benchRun) enrol(ctx context.Context, tag string, n int) ([]mfaAccount, error) {
	us, err := b.createUsers(ctx, tag, n)
	if err != nil {
		return nil, err
	}
	out := make([]mfaAccount, n)
	c := auth.Client{IP: "127.0.0.1", UserAgent: "latchkey bench"}
	err = forEach(ctx, n, b.o.concurrency, func(i int) error {
		tok, hash := benchToken()
		now := b.now()
		s := &auth.Session{UserID: us[i].ID, TokenHash: hash, CreatedAt: now, LastSeenAt: now,
			ExpiresAt: now.Add(24 * time.Hour), ReauthAt: now, IP: c.IP, UserAgent: c.UserAgent}
		if err := b.app.Store.CreateSession(ctx, s); err != nil {
			return err
		}
		p, err := b.app.Service.Authenticate(ctx, tok)
		if err != nil {
			return err
		}
		setup, err := b.app.Service.SetupTOTP(ctx, c, p)
		if err != nil {
			return err
		}
		if _, err := b.app.Service.ConfirmTOTP(ctx, c, p, totp.Code(setup.Secret, totp.Step(now))); err != nil {
			return err
		}
		out[i] = mfaAccount{id: us[i].ID, secret: setup.Secret}
		return nil
	})
	b.app.Service.Wait() // the "MFA is on" mails, so they do not land in the measurement
	return out, err
}

// pend stores a pending login for every account and the request that answers it with
// the code of the step after enrolment.
func (b *benchRun) pend(ctx context.Context, as []mfaAccount) error {
	return forEach(ctx, len(as), b.o.concurrency, func(i int) error {
		tok, hash := benchToken()
		now := b.now()
		// Enrolment moved the account's credentials epoch; a pending login must carry the
		// current one, as the password step's would.
		u, err := b.app.Store.UserByID(ctx, as[i].id)
		if err != nil {
			return err
		}
		p := &auth.PendingLogin{TokenHash: hash, UserID: as[i].id, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			IP: "127.0.0.1", UserAgent: "latchkey bench", CredEpoch: u.CredEpoch}
		if err := b.app.Store.CreatePendingLogin(ctx, p); err != nil {
			return err
		}
		as[i].token, as[i].code = tok, totp.Code(as[i].secret, totp.Step(now))
		as[i].body, _ = json.Marshal(map[string]string{"mfa_token": as[i].token, "code": as[i].code})
		return nil
	})
}

// prepare enrols n accounts at the frozen time t and, at t+30 s, stores a pending
// login for each with the code of that next step; the clock stays at t+30 s.
func (b *benchRun) prepare(ctx context.Context, tag string, n int, t time.Time) ([]mfaAccount, error) {
	b.clock.Store(t.UnixNano())
	as, err := b.enrol(ctx, tag, n)
	if err != nil {
		return nil, err
	}
	b.clock.Store(t.Add(totp.Period * time.Second).UnixNano())
	return as, b.pend(ctx, as)
}

// runMFA answers pending logins for d, each account's once, taking the next unused
// account from next, so that several runs share one prepared set.
func (b *benchRun) runMFA(ctx context.Context, as []mfaAccount, next *atomic.Int64, d time.Duration) loadResult {
	return load(ctx, b.o.concurrency, d, func(worker, i int) error {
		k := int(next.Add(1)) - 1
		if k >= len(as) {
			return errExhausted
		}
		return b.do("POST", b.url+"/api/v1/login/mfa", "", as[k].body, 200, nil)
	})
}

// runMFADirect is runMFA through the Service's LoginMFA in this process, without HTTP.
func (b *benchRun) runMFADirect(ctx context.Context, as []mfaAccount, next *atomic.Int64, d time.Duration) loadResult {
	c := auth.Client{IP: "127.0.0.1", UserAgent: "latchkey bench"}
	return load(ctx, b.o.concurrency, d, func(worker, i int) error {
		k := int(next.Add(1)) - 1
		if k >= len(as) {
			return errExhausted
		}
		res, err := b.app.Service.LoginMFA(ctx, c, as[k].token, as[k].code, "")
		if err == nil && res.Status != auth.StatusAuthenticated {
			err = fmt.Errorf("LoginMFA status %q, want %q", res.Status, auth.StatusAuthenticated)
		}
		return err
	})
}

// mfaStep measures POST /api/v1/login/mfa with right, never-used codes against the
// database's raw rate of one-row committed updates: AdvanceTOTPStep's statement on
// distinct rows, each its own transaction and commit. On SQLite that runs on the
// bench's own connections (reference.go), since the store's own writes share commits
// (see sqlite/writer.go); the rate through the store is reported beside it as
// store_per_s. On PostgreSQL the store's AdvanceTOTPStep is already one autocommitted
// statement.
//
// Enrolment happens at the frozen time T; the measurement at T+30 s, where every
// account has exactly one fresh step. How many accounts the window needs is learnt from
// a pilot on a few hundred accounts, which then serve as the reference's rows.
func (b *benchRun) mfaStep(ctx context.Context) (benchFigure, error) {
	t := b.now()
	pilot, err := b.prepare(ctx, "pilot", 8*b.o.concurrency, t)
	if err != nil {
		return benchFigure{}, err
	}
	pr := b.runMFA(ctx, pilot, new(atomic.Int64), b.o.duration)
	if pr.n == 0 {
		return benchFigure{}, fmt.Errorf("no second-factor step succeeded in the pilot (%d errors)", pr.errors)
	}

	// The reference: each worker advances its own rows, one step further each round,
	// so every update wins and no two workers touch one row.
	advance := b.app.Store.AdvanceTOTPStep
	driver, path, err := b.cfg.Database()
	if err != nil {
		return benchFigure{}, err
	}
	unbatched := driver == "sqlite"
	if unbatched {
		raw, err := openUnbatchedSQLite(ctx, path, b.o.concurrency)
		if err != nil {
			return benchFigure{}, err
		}
		defer raw.close()
		advance = raw.advance
	}
	base := totp.Step(b.now()) + 10
	w := b.o.concurrency
	rows := len(pilot) / w
	updates := func(advance func(context.Context, auth.UserID, int64) (bool, error), d time.Duration) loadResult {
		r := load(ctx, w, d, func(worker, i int) error {
			a := pilot[worker+(i%rows)*w]
			won, err := advance(ctx, a.id, base+int64(i/rows))
			if err == nil && !won {
				err = errors.New("AdvanceTOTPStep lost on a row of its own")
			}
			return err
		})
		base += int64(r.n/rows) + 10 // the next run starts past every step this one wrote
		return r
	}
	var store loadResult
	if unbatched {
		store = updates(b.app.Store.AdvanceTOTPStep, b.o.duration)
	}

	n := int(pr.perS()*b.o.duration.Seconds()*1.3) + 2*w
	n = min(n, 200000)
	as, err := b.prepare(ctx, "m", n, t)
	if err != nil {
		return benchFigure{}, err
	}
	var next atomic.Int64
	got, ref := bracket(func(d time.Duration) loadResult { return updates(advance, d) },
		func(d time.Duration) loadResult { return b.runMFA(ctx, as, &next, d) }, b.o.duration)
	f := figure(got, ref)
	if unbatched {
		f.StorePerS = store.perS()
		if f.StorePerS > 0 {
			f.StoreRatio = f.PerS / f.StorePerS
		}
		f.Errors += store.errors
	}

	// The same step without HTTP, beside its own reference, for half as long: n
	// accounts again, enough for twice the pilot's rate over that half.
	ds, err := b.prepare(ctx, "d", n, t)
	if err != nil {
		return benchFigure{}, err
	}
	next.Store(0)
	dgot, dref := bracket(func(d time.Duration) loadResult { return updates(advance, d) },
		func(d time.Duration) loadResult { return b.runMFADirect(ctx, ds, &next, d) }, b.o.duration/2)
	direct := figure(dgot, dref)
	f.DirectPerS, f.DirectRatio = direct.PerS, direct.Ratio
	f.Errors += direct.Errors
	return f, nil
}

// flood fires o.flood simultaneous sign-ins, each for its own account with the right
// password, at the server at url, and reads the high-water mark of pid's memory.
func (b *benchRun) flood(ctx context.Context, url string, pid int, mode string) (floodFigure, error) {
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: b.o.flood}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	f := floodFigure{Requests: b.o.flood, Statuses: map[int]int{}, Mode: mode}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range b.o.flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"login":"%sf%d","password":%q}`, b.prefix, i, benchPassword)
			<-start
			req, err := http.NewRequest("POST", url+"/api/v1/login", strings.NewReader(body))
			if err != nil {
				panic(err) // a constant method and a parsed URL: cannot fail
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", benchIP(i))
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				f.NoAnswer++
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			f.Answered++
			f.Statuses[resp.StatusCode]++
		}()
	}
	close(start)
	wg.Wait()
	hwm, err := vmHWM(pid)
	if err != nil {
		return f, err
	}
	f.PeakRSSMiB = float64(hwm) / 1024
	return f, ctx.Err()
}

// floodChild runs the flood against 'latchkey serve' started as a child process on the
// same database, so the peak memory is the server's own.
func (b *benchRun) floodChild(ctx context.Context, exe string) (floodFigure, error) {
	args := append([]string{"serve"}, b.cfgArgs...)
	cmd := exec.CommandContext(ctx, exe, append(args, "--log-level", "info", "--log-format", "text")...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return floodFigure{}, err
	}
	if err := cmd.Start(); err != nil {
		return floodFigure{}, fmt.Errorf("starting %s serve: %w", exe, err)
	}
	urlc := make(chan string, 1)
	go func() {
		// Read every line, not only up to the URL: a full pipe would stall the server.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			// "msg=listening": the start-up line also holds public_url=http://….
			if _, u, ok := strings.Cut(sc.Text(), "msg=listening url=http://"); ok {
				select {
				case urlc <- "http://" + strings.Fields(u)[0]:
				default:
				}
			}
		}
		close(urlc)
	}()
	var f floodFigure
	select {
	case u, ok := <-urlc:
		if !ok {
			err = errors.New("the child server exited before listening")
			break
		}
		f, err = b.flood(ctx, u, cmd.Process.Pid, "child")
	case <-time.After(30 * time.Second):
		err = errors.New("the child server did not start listening within 30s")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("child server: %w", werr)
	}
	return f, err
}

// benchIP is the address of simulated client k, in the private 10.0.0.0/8 range.
func benchIP(k int) string {
	return fmt.Sprintf("10.%d.%d.%d", (k>>16)&0xff, (k>>8)&0xff, k&0xff)
}

// vmHWM reads the peak resident set size of pid in KiB from /proc.
func vmHWM(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading peak memory: %w", err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}
