package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/oidc"
)

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// oidcClientJSON is one client as `oidc-client list` prints it: never a secret.
type oidcClientJSON struct {
	ClientID               string    `json:"client_id"`
	Name                   string    `json:"name"`
	Public                 bool      `json:"public"`
	RequireMFA             bool      `json:"require_mfa"`
	Consent                bool      `json:"consent"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	CreatedAt              time.Time `json:"created_at"`
}

func oidcStore(app *App) (auth.OIDCStore, error) {
	st, ok := app.Store.(auth.OIDCStore)
	if !ok {
		return nil, errors.New("this database cannot hold OpenID Connect clients")
	}
	return st, nil
}

// adminOIDCClient runs `latchkey admin oidc-client add|list|remove`.
func adminOIDCClient(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("oidc-client needs a command: add, list, remove")
	}
	cmd, args := args[0], args[1:]
	out := json.NewEncoder(stdout)
	out.SetIndent("", "  ")
	switch cmd {
	case "add":
		var spec oidc.ClientSpec
		var redirects, logouts stringList
		return withApp(ctx, "admin oidc-client add", args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&spec.Name, "name", "", "the application's name, shown to users")
			fs.Var(&redirects, "redirect-uri", "a redirect URI (repeat for more): https, or http on loopback")
			fs.Var(&logouts, "post-logout-redirect-uri", "a URI the application may send users to after sign-out (repeatable)")
			fs.BoolVar(&spec.Public, "public", false, "a public client (no secret; PKCE S256 required)")
			fs.BoolVar(&spec.RequireMFA, "require-mfa", false, "never sign in a session without multiple-factor authentication")
			fs.BoolVar(&spec.Consent, "consent", false, "ask each user once before the first sign-in")
		}, func(app *App, rest []string) error {
			if len(rest) > 0 {
				return fmt.Errorf("oidc-client add takes flags only, got %q", rest[0])
			}
			st, err := oidcStore(app)
			if err != nil {
				return err
			}
			spec.RedirectURIs, spec.PostLogoutRedirectURIs = redirects, logouts
			id, secret, err := oidc.AddClient(ctx, st, app.OIDC.Keyring(), spec, app.Service.Now())
			if err != nil {
				return err
			}
			app.Service.LogEvent(ctx, 0, operator, "oidc_client_added", "success",
				fmt.Sprintf("client %s (%s)", id, spec.Name))
			res := map[string]string{"client_id": id}
			if secret != "" {
				res["client_secret"] = secret
			}
			return out.Encode(res)
		})
	case "list":
		return withApp(ctx, "admin oidc-client list", args, getenv, stderr, nil, func(app *App, rest []string) error {
			st, err := oidcStore(app)
			if err != nil {
				return err
			}
			cs, err := st.ListOIDCClients(ctx)
			if err != nil {
				return err
			}
			list := make([]oidcClientJSON, 0, len(cs))
			for _, c := range cs {
				list = append(list, oidcClientJSON{ClientID: c.ID, Name: c.Name, Public: c.Public, RequireMFA: c.RequireMFA,
					Consent: c.Consent, RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
					CreatedAt: c.CreatedAt})
			}
			return out.Encode(list)
		})
	case "remove":
		return withApp(ctx, "admin oidc-client remove", args, getenv, stderr, nil, func(app *App, rest []string) error {
			if len(rest) != 1 {
				return errors.New("oidc-client remove needs exactly one CLIENT_ID")
			}
			st, err := oidcStore(app)
			if err != nil {
				return err
			}
			if err := st.DeleteOIDCClient(ctx, rest[0]); errors.Is(err, auth.ErrNotFound) {
				return fmt.Errorf("no client %q", rest[0])
			} else if err != nil {
				return err
			}
			app.Service.LogEvent(ctx, 0, operator, "oidc_client_removed", "success", "client "+rest[0])
			fmt.Fprintf(stdout, "removed client %s; its grants and tokens have ended\n", rest[0])
			return nil
		})
	default:
		return fmt.Errorf("unknown oidc-client command %q (try: add, list, remove)", cmd)
	}
}

// adminOIDCKeys runs `latchkey admin oidc-keys rotate [--alg RS256|ES256]`.
func adminOIDCKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return errors.New("oidc-keys needs a command: rotate")
	}
	var alg string
	return withApp(ctx, "admin oidc-keys rotate", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&alg, "alg", "RS256", "RS256 or ES256")
	}, func(app *App, rest []string) error {
		if len(rest) > 0 {
			return fmt.Errorf("oidc-keys rotate takes flags only, got %q", rest[0])
		}
		id, err := app.OIDC.RotateKey(ctx, alg)
		if err != nil {
			return err
		}
		app.Service.LogEvent(ctx, 0, operator, "oidc_key_rotated", "success", "key "+id+" ("+alg+")")
		fmt.Fprintf(stdout, "key %s (%s) signs from now on; the previous key stays published for oidc-id-token-ttl\n", id, alg)
		return nil
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
