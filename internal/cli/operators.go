package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/latchkey/latchkey/internal/auth"
)

// adminAccount runs the operator commands on one account: grant-admin, revoke-admin,
// disable, enable and delete, each with a required reason that goes to the security
// log and the mail to the user.
func adminAccount(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var reason string
	return withApp(ctx, "admin "+cmd, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&reason, "reason", "", "why (recorded in the security log and the mail to the user)")
	}, func(app *App, rest []string) error {
		if len(rest) != 1 {
			return fmt.Errorf("%s needs exactly one USER and --reason TEXT", cmd)
		}
		if reason == "" {
			return errors.New(cmd + " needs --reason TEXT: every operator action needs a reason")
		}
		svc, login := app.Service, rest[0]
		var done string
		switch cmd {
		case "grant-admin", "revoke-admin":
			u, err := svc.AdminSetOperator(ctx, operator, login, reason, cmd == "grant-admin")
			if err != nil {
				return err
			}
			done = map[bool]string{true: "%s is now an operator", false: "%s is no longer an operator"}[u.IsAdmin]
			done = fmt.Sprintf(done, u.Username)
		case "disable", "enable":
			u, err := svc.AdminSetDisabled(ctx, operator, login, reason, cmd == "disable")
			if err != nil {
				return err
			}
			done = map[bool]string{true: "disabled %s and ended every session", false: "enabled %s"}[u.Disabled]
			done = fmt.Sprintf(done, u.Username)
		case "delete":
			u, err := svc.AdminDelete(ctx, operator, login, reason)
			if err != nil {
				return err
			}
			done = fmt.Sprintf("deleted %s; the username stays reserved for 30 days", u.Username)
		}
		fmt.Fprintln(stdout, done)
		return nil
	})
}

// emailState is the address as `admin users` shows it: marked while unverified, "-"
// when another account verified it first and it was dropped.
func emailState(u auth.User) string {
	switch {
	case u.Email == "":
		return "-"
	case !u.EmailVerified:
		return u.Email + " (unverified)"
	}
	return u.Email
}
