package config

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, rest, err := Load("serve", nil, env(nil), io.Discard, nil)
	if err != nil || len(rest) != 0 {
		t.Fatalf("Load() = %v, %v", rest, err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DatabaseURL != "sqlite:latchkey-data/latchkey.db" || c.SecretKeyFile != "latchkey-data/secret.key" ||
		c.SiteName != "Latchkey" || c.PublicURL != "http://localhost:8080" || c.SMTPURL != "" || c.TOTPWindow != 1 ||
		c.MFAMaxFailures != 5 || c.MFALock != 30*time.Second || c.MFAMaxLock != 15*time.Minute || c.ReauthWindow != 10*time.Minute ||
		c.SessionIdle != 7*24*time.Hour || c.SessionMax != 30*24*time.Hour || c.ArgonMemory != 19456 || c.ArgonTime != 2 || c.ArgonThreads != 1 {
		t.Fatalf("defaults = %+v", c)
	}
	if c.SecureCookies() {
		t.Error("http public-url must not make cookies Secure")
	}
	if c.MailFrom != "no-reply@localhost" {
		t.Errorf("MailFrom = %q", c.MailFrom)
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	e := env(map[string]string{"LATCHKEY_ADDR": "0.0.0.0:9000", "LATCHKEY_SITE_NAME": "From Env", "LATCHKEY_PUBLIC_URL": "https://id.example.com/"})
	c, _, err := Load("serve", []string{"--site-name", "From Flag"}, e, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9000" || c.SiteName != "From Flag" || c.PublicURL != "https://id.example.com" || !c.SecureCookies() {
		t.Fatalf("Load = addr %q site %q url %q", c.Addr, c.SiteName, c.PublicURL)
	}
}

func TestPositionalThenFlags(t *testing.T) {
	var reason string
	_, rest, err := Load("admin reset-mfa", []string{"alice", "--reason", "lost phone"}, env(nil), io.Discard,
		func(fs *flag.FlagSet) { fs.StringVar(&reason, "reason", "", "") })
	if err != nil || fmt.Sprint(rest) != "[alice]" || reason != "lost phone" {
		t.Fatalf("Load = %v, %v, reason %q", rest, err, reason)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"addr", []string{"--addr", "nope"}, nil, "addr"},
		{"database scheme", []string{"--database-url", "mysql://x"}, nil, "database-url"},
		{"empty sqlite path", []string{"--database-url", "sqlite:"}, nil, "database-url"},
		{"public url", []string{"--public-url", "ftp://x"}, nil, "public-url"},
		{"smtp scheme", []string{"--smtp-url", "http://x"}, nil, "smtp-url"},
		{"totp window", []string{"--totp-window", "3"}, nil, "totp-window"},
		{"failures", []string{"--mfa-max-failures", "0"}, nil, "mfa-max-failures"},
		{"lock order", []string{"--mfa-lock", "1h", "--mfa-max-lock", "1m"}, nil, "longest lock"},
		{"negative duration", []string{"--session-idle", "-1h"}, nil, "session-idle"},
		{"argon memory", []string{"--argon2-memory", "1"}, nil, "argon2-memory"},
		{"argon threads", []string{"--argon2-threads", "0"}, nil, "argon2-threads"},
		{"proxies", []string{"--trusted-proxies", "10.0.0.0/99"}, nil, "trusted-proxies"},
		{"log level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"bad env value", nil, map[string]string{"LATCHKEY_TOTP_WINDOW": "many"}, "LATCHKEY_TOTP_WINDOW"},
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"body cap", []string{"--max-body-bytes", "10"}, nil, "max-body-bytes"},
		{"cookie domain tld", []string{"--public-url", "https://id.example.com", "--cookie-domain", "com"}, nil, "cookie-domain"},
		{"cookie domain elsewhere", []string{"--public-url", "https://id.example.com", "--cookie-domain", "example.org"}, nil, "cookie-domain"},
		{"rule without policy", []string{"--forward-auth-rules", "app.example.com"}, nil, "forward-auth-rules"},
		{"rule with a bad policy", nil, map[string]string{"LATCHKEY_FORWARD_AUTH_RULES": "app.example.com=2fa"}, "forward-auth-rules"},
		{"rule with a port", []string{"--forward-auth-rules", "app.example.com:443=deny"}, nil, "forward-auth-rules"},
		{"negative mfa age", []string{"--forward-auth-mfa-max-age", "-1m"}, nil, "forward-auth-mfa-max-age"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load("serve", tt.args, env(tt.env), io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Load(%v) = %v, want one line mentioning %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestLogAttrsRedact(t *testing.T) {
	c, _, err := Load("serve", []string{"--smtp-url", "smtp://u:hunter2@mail.example:587",
		"--database-url", "postgres://lk:dbpass@db:5432/lk?password=qpass", "--secret-key", "c2VjcmV0"}, env(nil), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprint(c.LogAttrs()...)
	for _, secret := range []string{"hunter2", "dbpass", "qpass", "c2VjcmV0"} {
		if strings.Contains(line, secret) {
			t.Errorf("LogAttrs shows %q: %s", secret, line)
		}
	}
	if !strings.Contains(line, "mail.example") || !strings.Contains(line, "LATCHKEY_SECRET_KEY") {
		t.Errorf("LogAttrs lost the non-secret parts: %s", line)
	}
}

func TestForwardAuthSettings(t *testing.T) {
	e := env(map[string]string{"LATCHKEY_COOKIE_DOMAIN": ".Example.com", "LATCHKEY_FORWARD_AUTH_RULES": "grafana.example.com=two_factor,*.example.com=one_factor",
		"LATCHKEY_FORWARD_AUTH_MFA_MAX_AGE": "12h", "LATCHKEY_PUBLIC_URL": "https://id.example.com"})
	c, _, err := Load("serve", nil, e, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.CookieDomain != "example.com" || c.ForwardAuthRules.String() != "grafana.example.com=two_factor,*.example.com=one_factor" ||
		c.ForwardAuthMFAMaxAge != 12*time.Hour {
		t.Fatalf("Load = cookie domain %q, rules %q, max age %v", c.CookieDomain, c.ForwardAuthRules, c.ForwardAuthMFAMaxAge)
	}
	if line := fmt.Sprint(c.LogAttrs()...); !strings.Contains(line, "forward_auth_rulesgrafana.example.com=two_factor") {
		t.Errorf("LogAttrs misses the rules: %s", line)
	}
	d, _, err := Load("serve", nil, env(nil), io.Discard, nil)
	if err != nil || d.CookieDomain != "" || len(d.ForwardAuthRules) != 0 || d.ForwardAuthMFAMaxAge != 0 {
		t.Fatalf("defaults = %q, %v, %v, %v", d.CookieDomain, d.ForwardAuthRules, d.ForwardAuthMFAMaxAge, err)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,::1")
	if err != nil || fmt.Sprint(got) != "[10.0.0.0/8 192.0.2.7/32 ::1/128]" {
		t.Fatalf("ParseTrustedProxies = %v, %v", got, err)
	}
}

// TestCommandFlagWinsOverSetting: a command's own flag of a setting's name (the
// client's --require-mfa of "admin oidc-client add") is the command's, and the
// setting keeps its default instead of the flag set panicking on a redefinition.
func TestCommandFlagWinsOverSetting(t *testing.T) {
	var clientMFA bool
	// LATCHKEY_REQUIRE_MFA, set for serve, names the setting: it is no value of the
	// command's flag, and this command, which applies no policy, leaves the default.
	c, rest, err := Load("admin oidc-client add", []string{"--require-mfa", "--site-name", "Acme", "x"},
		env(map[string]string{"LATCHKEY_REQUIRE_MFA": "all"}), io.Discard, func(fs *flag.FlagSet) {
			fs.BoolVar(&clientMFA, "require-mfa", false, "the client's rule")
		})
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if !clientMFA || c.RequireMFA != "admins" || c.SiteName != "Acme" || len(rest) != 1 {
		t.Fatalf("Load: client flag %v, require-mfa %q, site %q, rest %v; want true, admins, Acme, [x]",
			clientMFA, c.RequireMFA, c.SiteName, rest)
	}
}
