package e2e

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFlood fires 400 simultaneous sign-ins at a server with the real argon2id
// parameters (19 MiB each): every request gets an HTTP answer, the hashing pool keeps
// memory bounded, and the overflow gets 503 with Retry-After.
func TestFlood(t *testing.T) {
	cfg := testConfig(t, "sqlite:"+t.TempDir()+"/db")
	cfg.ArgonMemory, cfg.ArgonTime = 19456, 2
	s := startServer(t, cfg, nil)
	s.signup(t, "flood", "flood@example.com")

	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 400, MaxConnsPerHost: 0}, Timeout: 2 * time.Minute}
	var noAnswer atomic.Int32
	counts := parallel(t, 400, func(i int) int {
		// Half sign in as the real user; half as unknown users, each with its own
		// account counter, so the hashing pool (not a lock) is what holds the line.
		login, pw := "flood", testPassword
		if i%2 == 1 {
			login, pw = fmt.Sprintf("ghost%d", i), "wrong password"
		}
		resp, err := client.Post(s.URL+"/api/v1/login", "application/json",
			strings.NewReader(fmt.Sprintf(`{"login":%q,"password":%q}`, login, pw)))
		if err != nil {
			noAnswer.Add(1)
			return 0
		}
		defer resp.Body.Close()
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
			return -503
		}
		return resp.StatusCode
	})
	close(stop)
	sampler.Wait()
	t.Logf("answers %v, peak heap in use %d MiB", counts, peak.Load()>>20)
	if noAnswer.Load() != 0 || counts[0] != 0 {
		t.Fatalf("%d requests got no HTTP answer", noAnswer.Load())
	}
	if counts[-503] != 0 {
		t.Fatalf("%d answers were 503 without Retry-After", counts[-503])
	}
	for st := range counts {
		if st != 200 && st != 401 && st != 429 && st != 503 {
			t.Fatalf("unexpected status %d in %v", st, counts)
		}
	}
	if counts[503] == 0 {
		t.Fatalf("no request was shed with 503: %v", counts)
	}
	// GOMAXPROCS hashes at 19 MiB each, plus the server itself: far below 400 × 19 MiB.
	limit := uint64(runtime.GOMAXPROCS(0))*19<<20 + 200<<20
	if peak.Load() > limit {
		t.Fatalf("peak heap %d MiB over the bound %d MiB", peak.Load()>>20, limit>>20)
	}
}
