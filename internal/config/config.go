// Package config holds Latchkey's settings and loads them from flags and LATCHKEY_*
// environment variables (flags win). It keeps no package state: Load is a pure function
// of its arguments, so every command and every test reads settings the same way.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/authz"
)

// Config is the effective configuration of one process.
type Config struct {
	Addr          string
	DatabaseURL   string
	SecretKeyFile string
	SecretKey     string // LATCHKEY_SECRET_KEY: base64 of 32 bytes; overrides the file
	SiteName      string
	PublicURL     string
	SMTPURL       string
	MailFrom      string
	LogLevel      slog.Level
	LogFormat     string

	TrustedProxies []netip.Prefix

	TOTPWindow int

	MFAMaxFailures      int
	MFALock             time.Duration
	MFAMaxLock          time.Duration
	PasswordMaxFailures int
	IPMaxFailures       int
	SignupsPerAddress   int
	PasswordLock        time.Duration
	PasswordMaxLock     time.Duration

	SessionIdle     time.Duration
	SessionMax      time.Duration
	ReauthWindow    time.Duration
	PendingLoginTTL time.Duration

	// RequireMFA is who must have MFA: "off", "admins" or "all" (SPEC §8); a non-admin
	// gets RequireMFAGrace from the first sign-in the policy meets them at.
	RequireMFA      string
	RequireMFAGrace time.Duration

	HashWorkers   int
	HashQueue     int
	HashMaxWait   time.Duration
	ArgonMemory   uint32
	ArgonTime     uint32
	ArgonThreads  uint8
	MaxBodyBytes  int64
	ShutdownGrace time.Duration

	RecoveryAutoApproveAfter time.Duration

	// MetricsAddr is the listener of Prometheus /metrics; empty: no metrics served.
	MetricsAddr string
	// SecurityLogRetention is how long security-log rows are kept; 0 keeps them.
	SecurityLogRetention time.Duration
	// OpenID Connect provider token lifetimes (SPEC §9); refresh tokens also die with
	// the session that granted them.
	OIDCAccessTokenTTL  time.Duration
	OIDCIDTokenTTL      time.Duration
	OIDCRefreshTokenTTL time.Duration
	// CookieDomain is the parent domain the session cookie is sent to ("" : only
	// public-url's host), in lower case without a leading dot.
	CookieDomain string
	// ForwardAuthRules give each host behind forward auth its policy; a host no rule
	// matches is denied.
	ForwardAuthRules authz.Rules
	// ForwardAuthMFAMaxAge is how old a session's second factor may be on a two_factor
	// host before the user is sent to step up (0: as old as the session).
	ForwardAuthMFAMaxAge time.Duration
	// OperatorEmail, when set, is told of every verified recovery request.
	OperatorEmail string
}

// Default returns the configuration with every default of SPEC §1 and §3.
func Default() Config {
	return Config{
		Addr:                "127.0.0.1:8080",
		DatabaseURL:         "sqlite:latchkey-data/latchkey.db",
		SecretKeyFile:       "latchkey-data/secret.key",
		SiteName:            "Latchkey",
		PublicURL:           "http://localhost:8080",
		MailFrom:            "",
		LogLevel:            slog.LevelInfo,
		LogFormat:           "text",
		TOTPWindow:          1,
		MFAMaxFailures:      5,
		MFALock:             30 * time.Second,
		MFAMaxLock:          15 * time.Minute,
		PasswordMaxFailures: 5,
		IPMaxFailures:       100,
		SignupsPerAddress:   10,
		PasswordLock:        30 * time.Second,
		PasswordMaxLock:     15 * time.Minute,
		SessionIdle:         7 * 24 * time.Hour,
		SessionMax:          30 * 24 * time.Hour,
		ReauthWindow:        10 * time.Minute,
		PendingLoginTTL:     5 * time.Minute,
		RequireMFA:          "admins",
		RequireMFAGrace:     336 * time.Hour,
		HashWorkers:         0,
		HashQueue:           256,
		HashMaxWait:         2 * time.Second,
		ArgonMemory:         19456,
		ArgonTime:           2,
		ArgonThreads:        1,
		MaxBodyBytes:        64 << 10,
		ShutdownGrace:       10 * time.Second,

		SecurityLogRetention: 400 * 24 * time.Hour,
		OIDCAccessTokenTTL:   10 * time.Minute,
		OIDCIDTokenTTL:       10 * time.Minute,
		OIDCRefreshTokenTTL:  720 * time.Hour,
	}
}

// EnvName returns the environment variable that backs a flag: addr → LATCHKEY_ADDR.
func EnvName(flagName string) string {
	return "LATCHKEY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load parses args (flags only; the remaining positional arguments are returned) with
// getenv as the fallback for every flag, then validates. extra, if not nil, registers a
// command's own flags on the same set. Errors are one clear line.
func Load(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (Config, []string, error) {
	c := Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var trusted, logLevel, argonMem, argonTime, argonThreads, rules string
	// A command's own flag wins over a setting of the same name: "admin oidc-client add
	// --require-mfa" marks the client, it does not set the site's require-mfa policy.
	own := map[string]bool{}
	if extra != nil {
		probe := flag.NewFlagSet(name, flag.ContinueOnError)
		extra(probe)
		probe.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
	}
	str := func(p *string, name, usage string) {
		if !own[name] {
			fs.StringVar(p, name, *p, usage)
		}
	}
	integer := func(p *int, name, usage string) { fs.IntVar(p, name, *p, usage) }
	dur := func(p *time.Duration, name, usage string) {
		if !own[name] {
			fs.DurationVar(p, name, *p, usage)
		}
	}

	str(&c.Addr, "addr", "listen address")
	str(&c.DatabaseURL, "database-url", "sqlite:PATH or postgres://…")
	str(&c.SecretKeyFile, "secret-key-file", "file holding the 32-byte secret key (base64); created on first start")
	str(&c.SecretKey, "secret-key", "the secret key itself (base64 of 32 bytes); overrides the file")
	str(&c.SiteName, "site-name", "site name shown in pages and used as the TOTP issuer")
	str(&c.PublicURL, "public-url", "public base URL used in emails and links")
	str(&c.SMTPURL, "smtp-url", "smtp://user:pass@host:port or smtps://…; empty writes mail to the log and the outbox")
	str(&c.MailFrom, "mail-from", "From address of outgoing mail (default: no-reply@<public-url host>)")
	str(&c.LogFormat, "log-format", "text or json")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&trusted, "trusted-proxies", "", "comma-separated IPs or CIDRs whose X-Forwarded-For is believed")
	integer(&c.TOTPWindow, "totp-window", "TOTP steps accepted either side of now (0–2)")
	integer(&c.MFAMaxFailures, "mfa-max-failures", "consecutive wrong second-factor codes before a lock")
	dur(&c.MFALock, "mfa-lock", "first second-factor lock; doubles on each further lock")
	dur(&c.MFAMaxLock, "mfa-max-lock", "longest second-factor lock")
	integer(&c.PasswordMaxFailures, "password-max-failures", "consecutive wrong passwords per account before a lock")
	integer(&c.IPMaxFailures, "ip-max-failures", "wrong passwords per client address (IPv6 per /64) within 15 minutes before the address is slowed")
	integer(&c.SignupsPerAddress, "signups-per-address", "sign-ups per client address (IPv6 per /64) an hour")
	dur(&c.PasswordLock, "password-lock", "first password lock; doubles on each further lock")
	dur(&c.PasswordMaxLock, "password-max-lock", "longest password lock")
	dur(&c.SessionIdle, "session-idle", "a session ends after this long unused")
	dur(&c.SessionMax, "session-max", "a session ends this long after sign-in")
	dur(&c.ReauthWindow, "reauth-window", "how long a sign-in or re-authentication allows sensitive actions")
	dur(&c.PendingLoginTTL, "pending-login-ttl", "how long the second-factor step may take after the password")
	str(&c.RequireMFA, "require-mfa", "who must have multiple-factor authentication: off, admins or all")
	dur(&c.RequireMFAGrace, "require-mfa-grace", "time a non-admin may sign in without MFA after the policy first meets them")
	integer(&c.HashWorkers, "hash-workers", "password hashes at once (0: GOMAXPROCS)")
	integer(&c.HashQueue, "hash-queue", "sign-ins that may wait for a hashing slot")
	dur(&c.HashMaxWait, "hash-max-wait", "longest wait for a hashing slot before 503")
	fs.StringVar(&argonMem, "argon2-memory", strconv.Itoa(int(c.ArgonMemory)), "argon2id memory in KiB")
	fs.StringVar(&argonTime, "argon2-time", strconv.Itoa(int(c.ArgonTime)), "argon2id passes")
	fs.StringVar(&argonThreads, "argon2-threads", strconv.Itoa(int(c.ArgonThreads)), "argon2id lanes")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest request body")
	dur(&c.ShutdownGrace, "shutdown-grace", "how long shutdown waits for requests in flight")
	dur(&c.RecoveryAutoApproveAfter, "recovery-auto-approve-after", "approve a verified recovery request the owner did not cancel after this long (0: never)")
	str(&c.MetricsAddr, "metrics-addr", "listen address of Prometheus /metrics (empty: off); never served on addr")
	fs.Var((*days)(&c.SecurityLogRetention), "security-log-retention", "security-log rows older than this are purged daily, e.g. 400d or 720h (0: kept forever)")
	dur(&c.OIDCAccessTokenTTL, "oidc-access-token-ttl", "lifetime of OpenID Connect access tokens")
	dur(&c.OIDCIDTokenTTL, "oidc-id-token-ttl", "lifetime of OpenID Connect ID tokens (retired signing keys stay published this long)")
	dur(&c.OIDCRefreshTokenTTL, "oidc-refresh-token-ttl", "lifetime of OpenID Connect refresh tokens (they also end with their session)")
	str(&c.CookieDomain, "cookie-domain", "parent domain of the session cookie (example.com: every *.example.com host receives it); set it only if every host under it is trusted")
	fs.StringVar(&rules, "forward-auth-rules", "", "comma-separated HOST=POLICY for forward auth, first match wins; HOST exact or *.domain; POLICY one_factor, two_factor or deny; unmatched hosts are denied")
	dur(&c.ForwardAuthMFAMaxAge, "forward-auth-mfa-max-age", "on two_factor hosts, MFA older than this is sent to step up (0: as old as the session)")
	str(&c.OperatorEmail, "operator-email", "address told of every verified recovery request (empty: nobody)")

	if extra != nil {
		extra(fs)
	}
	// Environment first, so that flags parsed afterwards win.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		// LATCHKEY_<NAME> names a setting; a command's own flag of that name (see own)
		// is not one, and takes no value from the environment.
		if own[f.Name] {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: invalid value %q: %v", EnvName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return c, nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	rest := fs.Args()
	// Flags may also follow a positional argument ("reset-mfa alice --reason x").
	var positional []string
	for len(rest) > 0 {
		positional = append(positional, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			return c, nil, err
		}
		rest = fs.Args()
	}

	var err error
	if c.LogLevel, err = parseLevel(logLevel); err != nil {
		return c, nil, err
	}
	if c.TrustedProxies, err = ParseTrustedProxies(trusted); err != nil {
		return c, nil, err
	}
	if c.ForwardAuthRules, err = authz.ParseRules(rules); err != nil {
		return c, nil, err
	}
	if c.ArgonMemory, err = parseUint32("argon2-memory", argonMem); err != nil {
		return c, nil, err
	}
	if c.ArgonTime, err = parseUint32("argon2-time", argonTime); err != nil {
		return c, nil, err
	}
	threads, err := parseUint32("argon2-threads", argonThreads)
	if err != nil {
		return c, nil, err
	}
	if threads < 1 || threads > 255 {
		return c, nil, errors.New("argon2-threads: must be between 1 and 255")
	}
	c.ArgonThreads = uint8(threads)
	if err := c.Validate(); err != nil {
		return c, nil, err
	}
	return c, positional, nil
}

// Validate checks every setting and returns the first problem as one line.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr: %q is not host:port", c.Addr)
	}
	if _, _, err := c.Database(); err != nil {
		return err
	}
	if c.SecretKeyFile == "" && c.SecretKey == "" {
		return errors.New("secret-key-file: must not be empty")
	}
	if strings.TrimSpace(c.SiteName) == "" || len(c.SiteName) > 64 {
		return errors.New("site-name: must be 1 to 64 characters")
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public-url: %q must be an absolute http(s) URL", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.SMTPURL != "" {
		su, err := url.Parse(c.SMTPURL)
		if err != nil || (su.Scheme != "smtp" && su.Scheme != "smtps") || su.Host == "" {
			return errors.New("smtp-url: must look like smtp://user:pass@host:port or smtps://…")
		}
	}
	if c.MailFrom == "" {
		c.MailFrom = "no-reply@" + u.Hostname()
	}
	if c.CookieDomain, err = authz.NormalizeDomain(c.CookieDomain); err != nil {
		return err
	}
	if host := strings.ToLower(u.Hostname()); c.CookieDomain != "" && host != c.CookieDomain && !strings.HasSuffix(host, "."+c.CookieDomain) {
		// A browser refuses a cookie whose domain does not contain the host setting it.
		return fmt.Errorf("cookie-domain: public-url's host %s must be %s or a subdomain of it", host, c.CookieDomain)
	}
	if c.ForwardAuthMFAMaxAge < 0 {
		return errors.New("forward-auth-mfa-max-age: must not be negative")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return errors.New("log-format: must be text or json")
	}
	if c.RequireMFA != "off" && c.RequireMFA != "admins" && c.RequireMFA != "all" {
		return errors.New("require-mfa: must be off, admins or all")
	}
	if c.RequireMFAGrace < 0 {
		return errors.New("require-mfa-grace: must not be negative")
	}
	if c.TOTPWindow < 0 || c.TOTPWindow > 2 {
		return errors.New("totp-window: must be 0, 1 or 2")
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"mfa-max-failures", c.MFAMaxFailures}, {"password-max-failures", c.PasswordMaxFailures}, {"ip-max-failures", c.IPMaxFailures},
		{"signups-per-address", c.SignupsPerAddress}} {
		if p.v < 1 || p.v > 1000 {
			return fmt.Errorf("%s: must be between 1 and 1000", p.name)
		}
	}
	for _, p := range []struct {
		name string
		v    time.Duration
	}{{"mfa-lock", c.MFALock}, {"mfa-max-lock", c.MFAMaxLock}, {"password-lock", c.PasswordLock},
		{"password-max-lock", c.PasswordMaxLock}, {"session-idle", c.SessionIdle}, {"session-max", c.SessionMax},
		{"reauth-window", c.ReauthWindow}, {"pending-login-ttl", c.PendingLoginTTL}, {"hash-max-wait", c.HashMaxWait},
		{"shutdown-grace", c.ShutdownGrace}, {"oidc-access-token-ttl", c.OIDCAccessTokenTTL},
		{"oidc-id-token-ttl", c.OIDCIDTokenTTL}, {"oidc-refresh-token-ttl", c.OIDCRefreshTokenTTL}} {
		if p.v <= 0 {
			return fmt.Errorf("%s: must be a positive duration", p.name)
		}
	}
	if c.MFAMaxLock < c.MFALock || c.PasswordMaxLock < c.PasswordLock {
		return errors.New("the longest lock must not be shorter than the first lock")
	}
	if c.MetricsAddr != "" {
		_, port, err := net.SplitHostPort(c.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics-addr: %q is not host:port", c.MetricsAddr)
		}
		if c.MetricsAddr == c.Addr && port != "0" {
			return errors.New("metrics-addr: must differ from addr, so the public listener never serves /metrics")
		}
	}
	if c.SecurityLogRetention < 0 {
		return errors.New("security-log-retention: must not be negative")
	}
	if a, err := mail.ParseAddress(c.OperatorEmail); c.OperatorEmail != "" && (err != nil || a.Address != c.OperatorEmail) {
		return errors.New("operator-email: must be a plain email address like ops@example.com")
	}
	if c.RecoveryAutoApproveAfter < 0 {
		return errors.New("recovery-auto-approve-after: must not be negative")
	}
	if c.HashWorkers < 0 || c.HashQueue < 0 {
		return errors.New("hash-workers and hash-queue: must not be negative")
	}
	if c.ArgonMemory < 8*1024 || c.ArgonMemory > 4*1024*1024 || c.ArgonTime < 1 || c.ArgonTime > 100 {
		return errors.New("argon2-memory must be 8192–4194304 KiB and argon2-time 1–100")
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 1<<20 {
		return errors.New("max-body-bytes: must be between 1024 and 1048576")
	}
	return nil
}

// Database splits database-url into a driver ("sqlite" or "postgres") and what that
// driver opens (a file path or the URL itself).
func (c *Config) Database() (driver, target string, err error) {
	switch {
	case strings.HasPrefix(c.DatabaseURL, "sqlite:"):
		p := strings.TrimPrefix(c.DatabaseURL, "sqlite:")
		p = strings.TrimPrefix(p, "//")
		if p == "" {
			return "", "", errors.New("database-url: sqlite: needs a file path, e.g. sqlite:latchkey-data/latchkey.db")
		}
		return "sqlite", filepath.Clean(p), nil
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		return "postgres", c.DatabaseURL, nil
	default:
		return "", "", fmt.Errorf("database-url: %q must start with sqlite: or postgres://", redactURL(c.DatabaseURL))
	}
}

// LogAttrs returns the effective configuration for the start-up log line, with every
// secret redacted.
func (c *Config) LogAttrs() []any {
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	secretKey := "file:" + c.SecretKeyFile
	if c.SecretKey != "" {
		secretKey = "[redacted] (from LATCHKEY_SECRET_KEY)"
	}
	return []any{
		"addr", c.Addr, "database_url", redactURL(c.DatabaseURL), "secret_key", secretKey,
		"site_name", c.SiteName, "public_url", c.PublicURL, "smtp_url", redactURL(c.SMTPURL),
		"mail_from", c.MailFrom, "trusted_proxies", strings.Join(proxies, ","),
		"totp_window", c.TOTPWindow, "mfa_max_failures", c.MFAMaxFailures, "mfa_lock", c.MFALock.String(),
		"password_max_failures", c.PasswordMaxFailures, "ip_max_failures", c.IPMaxFailures,
		"signups_per_address", c.SignupsPerAddress,
		"session_idle", c.SessionIdle.String(), "session_max", c.SessionMax.String(),
		"reauth_window", c.ReauthWindow.String(), "hash_workers", c.HashWorkers,
		"require_mfa", c.RequireMFA, "require_mfa_grace", c.RequireMFAGrace.String(),
		"recovery_auto_approve_after", c.RecoveryAutoApproveAfter.String(),
		"metrics_addr", c.MetricsAddr, "security_log_retention", (*days)(&c.SecurityLogRetention).String(),
		"oidc_access_token_ttl", c.OIDCAccessTokenTTL.String(), "oidc_id_token_ttl", c.OIDCIDTokenTTL.String(),
		"oidc_refresh_token_ttl", c.OIDCRefreshTokenTTL.String(),
		"cookie_domain", c.CookieDomain, "forward_auth_rules", c.ForwardAuthRules.String(),
		"forward_auth_mfa_max_age", c.ForwardAuthMFAMaxAge.String(),
	}
}

// SecureCookies reports whether cookies must carry Secure and the __Host- prefix (the
// session cookie takes __Secure- instead when cookie-domain is set).
func (c *Config) SecureCookies() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// redactURL hides the password of a URL's user info.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable]"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log-level: %q must be debug, info, warn or error", s)
	}
	return l, nil
}

// ParseTrustedProxies reads a comma-separated list of IPs and CIDRs.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("trusted-proxies: %q is not an IP or CIDR", part)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("trusted-proxies: %q is not an IP or CIDR", part)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// days is a duration flag that also takes whole days ("400d"), since retention
// periods are counted in days and Go's durations stop at hours.
type days time.Duration

func (d *days) String() string {
	v := time.Duration(*d)
	if v > 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseUint(n, 10, 32)
		if err != nil || v > 100*366 {
			return fmt.Errorf("%q is not a number of days like 400d", s)
		}
		*d = days(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration like 400d or 720h", s)
	}
	*d = days(v)
	return nil
}

func parseUint32(name, s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a whole number", name, s)
	}
	return uint32(v), nil
}

// EnsureDir creates dir with mode 0700 if it is missing.
func EnsureDir(dir string) error {
	if dir == "" || dir == "." {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}
