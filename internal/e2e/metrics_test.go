package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/cli"
)

// TestMetricsOwnListener: /metrics is served on metrics-addr and nowhere else; the
// public listener answers it like any unknown path, and the metrics listener serves
// nothing but /metrics.
func TestMetricsOwnListener(t *testing.T) {
	cfg := testConfig(t, "sqlite:"+t.TempDir()+"/db")
	ctx, cancel := context.WithCancel(context.Background())
	app, err := cli.NewApp(ctx, cfg, slog.New(slog.DiscardHandler), newClock().Now)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.ServeWithMetrics(ctx, l, ml) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		app.Close()
	})
	s := &testServer{URL: "http://" + l.Addr().String(), App: app}
	metrics := &testServer{URL: "http://" + ml.Addr().String()}

	s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "x", "password": "wrong password"}).want(t, 401)
	for _, path := range []string{"/metrics", "/metrics/", "/metrics?format=text"} {
		r := s.call(t, "GET", path, "", nil).want(t, 404)
		if strings.Contains(string(r.Raw), "latchkey_http_requests_total") || strings.Contains(string(r.Raw), "go_goroutines") {
			t.Fatalf("public GET %s shows metrics: %s", path, r.Raw)
		}
	}
	m := metrics.call(t, "GET", "/metrics", "", nil).want(t, 200)
	for _, series := range []string{`latchkey_http_requests_total{route="POST /api/v1/login",status="401"} 1`,
		"latchkey_http_request_duration_seconds_bucket", `latchkey_signin_outcomes_total{outcome="failure",step="login"} 1`,
		"latchkey_password_hash_queue_depth", "go_goroutines"} {
		if !strings.Contains(string(m.Raw), series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	// The public 404s above were counted as unmatched requests, not as a metrics route.
	if !strings.Contains(string(m.Raw), `latchkey_http_requests_total{route="/",status="404"} 3`) {
		t.Errorf("/metrics does not count the public /metrics probes as 404s of the catch-all:\n%s", grepLines(string(m.Raw), "latchkey_http_requests_total"))
	}
	// The metrics listener is not a second way into the application.
	for _, path := range []string{"/", "/healthz", "/api/v1/me", "/login"} {
		metrics.call(t, "GET", path, "", nil).want(t, 404)
	}
	metrics.call(t, "POST", "/metrics", "", nil).want(t, 405)
}

// TestServeMetricsAddr runs the binary with --metrics-addr: the start-up log names the
// metrics URL, which serves Prometheus text, while the public URL does not.
func TestServeMetricsAddr(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, []string{"LATCHKEY_METRICS_ADDR=127.0.0.1:0"}, "--database-url", "sqlite:"+dir+"/latchkey.db",
		"--secret-key-file", dir+"/secret.key")
	m := regexp.MustCompile(`msg="serving Prometheus metrics" url=(http://127\.0\.0\.1:\d+)/metrics`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no metrics URL in the start-up log:\n%s", p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "metrics_addr=127.0.0.1:0") {
		t.Errorf("the effective configuration does not show metrics_addr:\n%s", p.stderr.String())
	}
	p.server().call(t, "GET", "/metrics", "", nil).want(t, 404)
	resp, err := http.Get(m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "latchkey_http_requests_total") {
		t.Fatalf("GET %s/metrics = %d %.300s", m[1], resp.StatusCode, body)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
