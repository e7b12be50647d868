package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// adminRecovery runs `latchkey admin recovery list|approve|deny`.
func adminRecovery(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("admin recovery needs a command: list, approve, deny")
	}
	cmd, args := args[0], args[1:]
	var reason, status string
	reasonFlag := func(fs *flag.FlagSet) {
		fs.StringVar(&reason, "reason", "", "why (recorded in the security log and the mail to the user)")
	}
	switch cmd {
	case "list":
		return withApp(ctx, "admin recovery list", args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&status, "status", "", "only requests with this status (pending, verified, approved, denied, cancelled, closed, expired)")
		}, func(app *App, rest []string) error {
			if len(rest) > 0 {
				return fmt.Errorf("recovery list takes no arguments, got %q", rest[0])
			}
			rs, err := app.Service.AdminRecoveryRequests(ctx, status)
			if err != nil {
				return err
			}
			if len(rs) == 0 {
				fmt.Fprintln(stdout, "no recovery requests")
				return nil
			}
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tSTATUS\tMETHOD\tEVIDENCE\tFACTOR AGE\tIP\tUSER AGENT\tCREATED\tVERIFIED\tCANCEL LINK USED")
			for _, r := range rs {
				evidence := r.KeyFingerprint
				if r.Method == auth.RecoveryMethodToken {
					evidence = "token " + fmt.Sprintf("%q", r.TokenName)
				}
				age := "-"
				if !r.KeyCreatedAt.IsZero() && !r.VerifiedAt.IsZero() {
					age = r.VerifiedAt.Sub(r.KeyCreatedAt).Round(time.Hour).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%q\t%s\t%s\t%s\n", r.ID, r.Username, r.Status, dash(r.Method),
					dash(evidence), age, r.IP, r.UserAgent, r.CreatedAt.Format("2006-01-02 15:04"), when(r.VerifiedAt),
					yesNo(!r.CancelledAt.IsZero()))
			}
			return tw.Flush()
		})
	case "approve", "deny":
		return withApp(ctx, "admin recovery "+cmd, args, getenv, stderr, reasonFlag, func(app *App, rest []string) error {
			if len(rest) != 1 {
				return fmt.Errorf("recovery %s needs exactly one request ID and --reason TEXT", cmd)
			}
			id := auth.RecoveryRequestID(rest[0])
			if cmd == "approve" {
				u, err := app.Service.AdminApproveRecovery(ctx, operator, id, reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "approved recovery request %s for %s: MFA removed, every session ended, reset link mailed\n", id, u.Username)
			} else {
				u, err := app.Service.AdminDenyRecovery(ctx, operator, id, reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "denied recovery request %s for %s\n", id, u.Username)
			}
			app.Service.Wait() // the mail must be out (or in the outbox) before the process ends
			return nil
		})
	default:
		return fmt.Errorf("unknown admin recovery command %q (try: list, approve, deny)", cmd)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02 15:04")
}

// autoApproveRecovery runs the recovery auto-approval (a no-op unless
// recovery-auto-approve-after is set) from serve's periodic loop.
func (a *App) autoApproveRecovery(ctx context.Context) {
	if n, err := a.Service.AutoApproveDue(ctx); err != nil {
		a.Logger.Warn("recovery auto-approval", "err", err)
	} else if n > 0 {
		a.Logger.Info("recovery requests approved automatically", "count", n)
	}
}
