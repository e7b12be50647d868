package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/keys"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/oidc"
	"github.com/latchkey/latchkey/internal/password"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/server"
	"github.com/latchkey/latchkey/internal/sqlite"
)

// store is an auth.Store that can migrate itself.
type store interface {
	auth.Store
	Migrate(ctx context.Context) error
}

// openStore opens the configured database and applies migrations.
func openStore(ctx context.Context, cfg *config.Config) (store, error) {
	driver, target, err := cfg.Database()
	if err != nil {
		return nil, err
	}
	var st store
	switch driver {
	case "sqlite":
		if err := config.EnsureDir(filepath.Dir(target)); err != nil {
			return nil, err
		}
		st, err = sqlite.Open(ctx, target)
	case "postgres":
		st, err = postgres.Open(ctx, target)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s database: %w", driver, err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrating %s database: %w", driver, err)
	}
	return st, nil
}

// App is a configured Latchkey: store, service and HTTP handler.
type App struct {
	Config  config.Config
	Store   auth.Store
	Service *auth.Service
	Hasher  *password.Hasher
	Handler *server.Server
	Logger  *slog.Logger
	OIDC    *oidc.Provider
}

// NewApp builds everything from the configuration. clock may be nil (time.Now).
func NewApp(ctx context.Context, cfg config.Config, logger *slog.Logger, clock func() time.Time) (*App, error) {
	master, created, err := keys.LoadOrCreate(cfg.SecretKeyFile, cfg.SecretKey, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if created {
		logger.Info("generated a new secret key; keep it safe and out of database backups", "file", cfg.SecretKeyFile)
	}
	ring, err := keys.New(master)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	st, err := openStore(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	params := password.Params{Memory: cfg.ArgonMemory, Time: cfg.ArgonTime, Threads: cfg.ArgonThreads, SaltLen: 16, KeyLen: 32}
	hasher := password.NewHasher(params, cfg.HashWorkers, cfg.HashMaxWait, cfg.HashQueue, rand.Reader)
	var mailer auth.Mailer
	if cfg.SMTPURL != "" {
		s, err := mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom, logger)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("smtp-url: %w", err)
		}
		mailer = smtpMailer{s}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := server.NewMetrics(reg, hasher.Stats)
	svc := auth.New(auth.Config{
		SiteName: cfg.SiteName, PublicURL: cfg.PublicURL, TOTPWindow: cfg.TOTPWindow,
		MFALimit:      auth.LimitPolicy{MaxFailures: cfg.MFAMaxFailures, BaseLock: cfg.MFALock, MaxLock: cfg.MFAMaxLock},
		PasswordLimit: auth.LimitPolicy{MaxFailures: cfg.PasswordMaxFailures, BaseLock: cfg.PasswordLock, MaxLock: cfg.PasswordMaxLock},
		IPLimit:       auth.LimitPolicy{MaxFailures: cfg.IPMaxFailures, BaseLock: cfg.PasswordLock, MaxLock: cfg.PasswordMaxLock, ResetAfter: 15 * time.Minute},
		SignupLimit:   auth.LimitPolicy{MaxFailures: cfg.SignupsPerAddress},
		SessionIdle:   cfg.SessionIdle, SessionMax: cfg.SessionMax, ReauthWindow: cfg.ReauthWindow,
		PendingLoginTTL: cfg.PendingLoginTTL, RecoveryAutoApproveAfter: cfg.RecoveryAutoApproveAfter,
		SecurityLogRetention: cfg.SecurityLogRetention,
		OperatorEmail:        cfg.OperatorEmail,
		RequireMFA:           cfg.RequireMFA, RequireMFAGrace: cfg.RequireMFAGrace,
	}, auth.Deps{Store: st, Hasher: hasher, Keys: ring, Mailer: mailer, Logger: logger, Clock: clock, Observe: metrics.Observe})
	provider, err := oidc.New(ctx, svc, ring, logger, oidc.Options{Issuer: cfg.PublicURL,
		AccessTokenTTL: cfg.OIDCAccessTokenTTL, IDTokenTTL: cfg.OIDCIDTokenTTL, RefreshTokenTTL: cfg.OIDCRefreshTokenTTL})
	if err != nil {
		st.Close()
		return nil, err
	}
	h := server.New(server.Options{TrustedProxies: cfg.TrustedProxies, MaxBodyBytes: cfg.MaxBodyBytes,
		SecureCookies: cfg.SecureCookies(), HashStats: hasher.Stats, SiteName: cfg.SiteName, PublicURL: cfg.PublicURL,
		CookieDomain: cfg.CookieDomain, ForwardAuthRules: cfg.ForwardAuthRules, ForwardAuthMFAMaxAge: cfg.ForwardAuthMFAMaxAge},
		server.Deps{Service: svc, Logger: logger, Registry: reg, Metrics: metrics, OIDC: provider})
	return &App{Config: cfg, Store: st, Service: svc, Hasher: hasher, Handler: h, Logger: logger, OIDC: provider}, nil
}

// Close waits for queued mail and forgot-password work, writes the security log's
// pending "N more" rows (that work may have added to them), and closes the database.
func (a *App) Close() error {
	a.Service.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	a.Service.FlushSecurityLog(ctx, true)
	cancel()
	return a.Store.Close()
}

type smtpMailer struct{ s *mail.SMTP }

func (m smtpMailer) Send(ctx context.Context, to, subject, body string) error {
	return m.s.Send(ctx, mail.Message{To: to, Subject: subject, Body: body})
}

// Serve runs the HTTP server on l until ctx ends, then shuts down gracefully.
func (a *App) Serve(ctx context.Context, l net.Listener) error {
	return a.ServeWithMetrics(ctx, l, nil)
}

// ServeWithMetrics is Serve with Prometheus /metrics on its own listener ml (nil: none).
// The public listener never serves /metrics.
func (a *App) ServeWithMetrics(ctx context.Context, l, ml net.Listener) error {
	srv := server.HTTPServer(l.Addr().String(), a.Handler, a.Logger)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(l) }()
	servers := []*http.Server{srv}
	if ml != nil {
		msrv := server.HTTPServer(ml.Addr().String(), a.Handler.MetricsHandler(), a.Logger)
		go func() { errc <- msrv.Serve(ml) }()
		servers = append(servers, msrv)
	}
	go a.purgeLoop(ctx)
	var first error
	received := 0
	select {
	case first = <-errc: // a listener failed: stop the other one too
		received++
	case <-ctx.Done():
		a.Logger.Info("shutting down", "grace", a.Config.ShutdownGrace.String())
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownGrace)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil && first == nil {
			first = fmt.Errorf("shutdown: %w", err)
		}
	}
	for ; received < len(servers); received++ {
		if err := <-errc; first == nil && !errors.Is(err, http.ErrServerClosed) {
			first = err
		}
	}
	if errors.Is(first, http.ErrServerClosed) {
		return nil
	}
	return first
}

// purgeLoop deletes expired rows every ten minutes until ctx ends, writes the
// security log's "N more" rows of past minutes, and purges the security log past its
// retention at start and then daily. Several replicas may run it at once: the deletes
// are idempotent.
func (a *App) purgeLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	logPurge := func() {
		if n, err := a.Service.PurgeSecurityLog(ctx); err != nil {
			a.Logger.Warn("security-log purge", "err", err)
		} else if n > 0 {
			a.Logger.Info("purged security-log rows past their retention", "rows", n, "retention", a.Config.SecurityLogRetention.String())
		}
	}
	logPurge()
	daily := time.NewTicker(24 * time.Hour)
	defer daily.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-daily.C:
			logPurge()
		case <-t.C:
			a.Service.FlushSecurityLog(ctx, false)
			if n, err := a.Service.Purge(ctx); err != nil {
				a.Logger.Warn("purge", "err", err)
			} else if n > 0 {
				a.Logger.Info("purged expired rows", "rows", n)
			}
			a.autoApproveRecovery(ctx)
			if n, err := a.OIDC.Purge(ctx); err != nil {
				a.Logger.Warn("purge oidc", "err", err)
			} else if n > 0 {
				a.Logger.Info("purged expired OpenID Connect tokens", "rows", n)
			}
		}
	}
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
