package bench

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkForgotPassword times POST /api/v1/password/forgot through the whole
// handler for a known and an unknown address, on both stores, alternating the two so
// that the machine's drift falls on both alike. Each answer is timed alone, as a prober
// sending one request at a time sees it: the previous request's queued work is done
// before the next starts. It reports the median of each and their ratio, which stays
// near 1 since the answer comes before any work on the address:
//
//	go test -run '^$' -bench ForgotPassword ./internal/bench
func BenchmarkForgotPassword(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchForgot(b, "sqlite:"+filepath.Join(b.TempDir(), "latchkey.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		server := os.Getenv("LATCHKEY_TEST_POSTGRES")
		if server == "" {
			b.Skip("PostgreSQL benchmarks need LATCHKEY_TEST_POSTGRES=postgres://…")
		}
		benchForgot(b, scratchPostgres(b, server))
	})
}

func benchForgot(b *testing.B, dbURL string) {
	app, _ := benchApp(b, dbURL) // its user is bench@example.com
	bodies := [2]string{`{"email":"bench@example.com"}`, `{"email":"nobody@example.com"}`}
	var took [2][]time.Duration
	i := 0
	for b.Loop() {
		req := httptest.NewRequest("POST", "/api/v1/password/forgot", strings.NewReader(bodies[i%2]))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		start := time.Now()
		app.Handler.ServeHTTP(rec, req)
		took[i%2] = append(took[i%2], time.Since(start))
		if rec.Code != http.StatusAccepted {
			b.Fatalf("POST /api/v1/password/forgot = %d, want 202", rec.Code)
		}
		b.StopTimer()
		app.Service.Wait()
		b.StartTimer()
		i++
	}
	median := func(d []time.Duration) float64 {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds())
	}
	known, unknown := median(took[0]), median(took[1])
	b.ReportMetric(known, "known-ns/req")
	b.ReportMetric(unknown, "unknown-ns/req")
	if unknown > 0 {
		b.ReportMetric(known/unknown, "known/unknown")
	}
}
