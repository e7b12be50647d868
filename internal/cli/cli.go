// Package cli is Latchkey's command line: serve, migrate and admin …. Run is the
// whole program; main only calls it, so tests run every command in-process.
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/config"
)

const usage = `latchkey — an account server with strong multiple-factor authentication

Usage:
  latchkey serve   [flags]            start the server (migrations applied automatically)
  latchkey migrate [flags]            apply database migrations and exit
  latchkey admin create-user --username U --email E [--admin]   (password read from stdin)
  latchkey admin users
  latchkey admin grant-admin|revoke-admin --reason TEXT USER
  latchkey admin disable|enable|delete --reason TEXT USER
  latchkey admin reset-mfa --reason TEXT USER
  latchkey admin outbox               mail that was not sent through SMTP
  latchkey admin recovery list [--status S]
  latchkey admin recovery approve --reason TEXT ID
  latchkey admin recovery deny --reason TEXT ID
  latchkey admin oidc-client add --name N --redirect-uri U [--redirect-uri U2…]
        [--post-logout-redirect-uri U…] [--public] [--require-mfa] [--consent]
  latchkey admin oidc-client list | remove CLIENT_ID
  latchkey admin oidc-keys rotate [--alg RS256|ES256]

Every flag also reads LATCHKEY_<FLAG> (e.g. --database-url ↔ LATCHKEY_DATABASE_URL);
flags win. 'latchkey serve -h' lists them all.
`

// Run runs one command and returns the process exit code.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], getenv, stderr)
	case "migrate":
		err = migrate(ctx, args[1:], getenv, stdout, stderr)
	case "admin":
		err = admin(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = fmt.Errorf("unknown command %q (try: serve, migrate, admin)", args[0])
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "latchkey: "+oneLine(err))
		return 1
	}
	return 0
}

// oneLine shows a domain error's message (and field problems), else the error text.
func oneLine(err error) string {
	if e := auth.AsError(err); e != nil && e.Kind != auth.KindInternal {
		msg := e.Message
		if len(e.Fields) > 0 {
			var parts []string
			for k, v := range e.Fields {
				parts = append(parts, k+": "+v)
			}
			msg = strings.Join(parts, "; ")
		}
		return msg
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, rest, err := config.Load("serve", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", rest[0])
	}
	logger := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger.Info("starting latchkey", cfg.LogAttrs()...)
	app, err := NewApp(ctx, cfg, logger, nil)
	if err != nil {
		return err
	}
	defer app.Close()
	// Keys are bound to the relying party ID: say which one, and say loudly when there
	// is none, since every begin call will then answer webauthn_unavailable.
	if why := app.Service.WebAuthnUnavailable(); why != "" {
		logger.Warn("security keys and passkeys are off", "reason", why)
	} else {
		logger.Info("security keys and passkeys", "rp_id", app.Service.RPID(), "origin", cfg.PublicURL,
			"note", "keys are bound to this host: changing public-url's host orphans every registered key")
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	var ml net.Listener
	if cfg.MetricsAddr != "" {
		if ml, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			l.Close()
			return fmt.Errorf("listening on metrics-addr %s: %w", cfg.MetricsAddr, err)
		}
		logger.Info("serving Prometheus metrics", "url", "http://"+ml.Addr().String()+"/metrics")
	}
	logger.Info("listening", "url", "http://"+l.Addr().String(), "open", cfg.PublicURL)
	return app.ServeWithMetrics(ctx, l, ml)
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := config.Load("migrate", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("migrate takes no arguments, got %q", rest[0])
	}
	st, err := openStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// withApp loads the configuration with a command's own flags, builds the app, and runs f.
func withApp(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer,
	extra func(*flag.FlagSet), f func(app *App, rest []string) error) error {
	cfg, rest, err := config.Load(name, args, getenv, stderr, extra)
	if err != nil {
		return err
	}
	// Operator commands log only warnings, so their output stays readable.
	cfg.LogLevel = max(cfg.LogLevel, slog.LevelWarn)
	app, err := NewApp(ctx, cfg, newLogger(cfg, stderr), nil)
	if err != nil {
		return err
	}
	defer app.Close()
	return f(app, rest)
}

var operator = auth.Client{IP: "cli", UserAgent: "latchkey admin"}

func admin(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("admin needs a command: create-user, users, grant-admin, revoke-admin, disable, enable, delete, reset-mfa, recovery, outbox")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "create-user":
		var username, email string
		var isAdmin bool
		return withApp(ctx, "admin create-user", args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&username, "username", "", "username")
			fs.StringVar(&email, "email", "", "email")
			fs.BoolVar(&isAdmin, "admin", false, "grant the operator role")
		}, func(app *App, rest []string) error {
			if username == "" || email == "" {
				return errors.New("create-user needs --username and --email (password on stdin)")
			}
			pw, err := readPassword(stdin)
			if err != nil {
				return err
			}
			u, err := app.Service.CreateUser(ctx, operator, username, email, pw, isAdmin)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created user %d %s <%s>%s\n", u.ID, u.Username, u.Email, map[bool]string{true: " (admin)"}[u.IsAdmin])
			return nil
		})
	case "users":
		return withApp(ctx, "admin users", args, getenv, stderr, nil, func(app *App, rest []string) error {
			us, err := app.Service.Users(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tMFA\tADMIN\tCREATED\tSTATE\tMFA DEADLINE")
			for _, u := range us {
				st, err := app.Service.MFAState(ctx, u.ID)
				if err != nil {
					return err
				}
				deadline := "-"
				if !st.Enabled && !st.Deadline.IsZero() {
					deadline = st.Deadline.UTC().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, emailState(u), onOff(st.Enabled), yesNo(u.IsAdmin),
					u.CreatedAt.Format("2006-01-02 15:04"), map[bool]string{false: "active", true: "disabled"}[u.Disabled], deadline)
			}
			return tw.Flush()
		})
	case "grant-admin", "revoke-admin", "disable", "enable", "delete":
		return adminAccount(ctx, cmd, args, getenv, stdout, stderr)
	case "reset-mfa":
		var reason string
		return withApp(ctx, "admin reset-mfa", args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", "why (recorded in the security log and the mail to the user)")
		}, func(app *App, rest []string) error {
			if len(rest) != 1 {
				return errors.New("reset-mfa needs exactly one USER and --reason TEXT")
			}
			u, existed, err := app.Service.AdminResetMFA(ctx, operator, rest[0], reason)
			if err != nil {
				return err
			}
			if existed {
				fmt.Fprintf(stdout, "removed MFA from %s and ended every session\n", u.Username)
			} else {
				fmt.Fprintf(stdout, "%s had no MFA; every session ended\n", u.Username)
			}
			return nil
		})
	case "recovery":
		return adminRecovery(ctx, args, getenv, stdout, stderr)
	case "oidc-client":
		return adminOIDCClient(ctx, args, getenv, stdout, stderr)
	case "oidc-keys":
		return adminOIDCKeys(ctx, args, getenv, stdout, stderr)
	case "outbox":
		return withApp(ctx, "admin outbox", args, getenv, stderr, nil, func(app *App, rest []string) error {
			msgs, err := app.Service.Outbox(ctx)
			if err != nil {
				return err
			}
			if len(msgs) == 0 {
				fmt.Fprintln(stdout, "the outbox is empty")
			}
			for _, m := range msgs {
				fmt.Fprintf(stdout, "--- #%d %s\nTo: %s\nSubject: %s\n\n%s\n", m.ID, m.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), m.To, m.Subject, m.Body)
			}
			return nil
		})
	default:
		return fmt.Errorf("unknown admin command %q (try: create-user, users, grant-admin, revoke-admin, disable, enable, delete, reset-mfa, recovery, outbox, oidc-client, oidc-keys)", cmd)
	}
}

func readPassword(stdin io.Reader) (string, error) {
	if stdin == nil {
		return "", errors.New("create-user reads the password from stdin")
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("create-user reads the password from stdin; got nothing")
	}
	return pw, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
