// Package server assembles Latchkey's HTTP handler: every route in routes.go, the
// middleware around them and /healthz; and, for its own listener, /metrics.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey/latchkey/internal/api"
	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/authz"
	"github.com/latchkey/latchkey/internal/oidc"
	"github.com/latchkey/latchkey/internal/web"
)

// Options configure the handler.
type Options struct {
	TrustedProxies []netip.Prefix
	MaxBodyBytes   int64
	SecureCookies  bool
	// HashStats reports the password-hashing pool (in flight, waiting) for /metrics.
	HashStats func() (inFlight, waiting int)
	// SiteName and PublicURL are shown and linked by the pages.
	SiteName  string
	PublicURL string
	// CookieDomain, ForwardAuthRules and ForwardAuthMFAMaxAge are the forward-auth
	// settings (see config.Config).
	CookieDomain         string
	ForwardAuthRules     authz.Rules
	ForwardAuthMFAMaxAge time.Duration
}

// Deps are what the handler serves.
type Deps struct {
	Service  *auth.Service
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil: a new one
	Metrics  *Metrics             // nil: created on Registry
	OIDC     *oidc.Provider       // nil: no OpenID Connect provider
}

// Server is the assembled handler with its metrics.
type Server struct {
	opts    Options
	svc     *auth.Service
	log     *slog.Logger
	api     *api.Handler
	web     *web.Handler
	metrics *Metrics
	oidc    *oidc.Provider
	reg     *prometheus.Registry
	handler http.Handler
}

// New builds the handler.
func New(opts Options, d Deps) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	reg := d.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := d.Metrics
	if m == nil {
		m = NewMetrics(reg, opts.HashStats)
	}
	s := &Server{opts: opts, svc: d.Service, log: d.Logger, api: api.New(d.Service, d.Logger), metrics: m, reg: reg,
		web: web.New(d.Service, d.Logger, web.Options{SiteName: opts.SiteName, PublicURL: opts.PublicURL,
			CookieDomain: opts.CookieDomain, MFAMaxAge: opts.ForwardAuthMFAMaxAge,
			SecureCookies: opts.SecureCookies}),
		oidc: d.OIDC}
	mux := http.NewServeMux()
	s.routes(mux)
	s.handler = s.middleware(mux)
	return s
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Metrics returns the metrics, so the service can report sign-in outcomes.
func (s *Server) Metrics() *Metrics { return s.metrics }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	if err := s.svc.Store().Ping(ctx); err != nil {
		s.log.Error("health check: database", "err", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable","database":"down"}` + "\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok","database":"ok"}` + "\n"))
}

// MetricsHandler serves GET /metrics for the metrics-addr listener. It is never mounted
// on the public handler: request counts, sign-in outcomes and the hashing queue tell an
// attacker how a guessing or flooding campaign is going.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	return mux
}

// HTTPServer wraps the handler in an http.Server with every timeout set, so slow
// clients cannot hold connections.
func HTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
