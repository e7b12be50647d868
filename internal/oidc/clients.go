package oidc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/keys"
)

// ClientSpec is what `latchkey admin oidc-client add` registers.
type ClientSpec struct {
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	Public                 bool // no secret; PKCE S256 required
	RequireMFA             bool // never a code for a session without MFA
	Consent                bool // ask the user once (until revoked) before the first code
}

// ValidateRedirectURI accepts absolute URIs without a fragment or user info, https,
// or http on a loopback address only: anything else could hand codes to a network
// attacker.
func ValidateRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("redirect URI %q: must be an absolute URL", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q: must not have a fragment", raw)
	}
	if u.User != nil || strings.ContainsAny(raw, " \n\r\t\\") {
		return fmt.Errorf("redirect URI %q: must not hold user info, spaces or backslashes", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return fmt.Errorf("redirect URI %q: must be https, or http on a loopback address", raw)
	}
	return nil
}

// AddClient registers a client and returns its id and, for a confidential client, its
// secret (32 random bytes, base64url), which is shown once and stored only as
// HMAC-SHA256 under the secret key.
func AddClient(ctx context.Context, st auth.OIDCStore, ring *keys.Keyring, spec ClientSpec, now time.Time) (id, secret string, err error) {
	spec.Name = strings.TrimSpace(spec.Name)
	if spec.Name == "" || len(spec.Name) > 100 {
		return "", "", errors.New("--name: must be 1 to 100 characters")
	}
	if len(spec.RedirectURIs) == 0 {
		return "", "", errors.New("--redirect-uri: at least one is required")
	}
	for _, u := range append(append([]string{}, spec.RedirectURIs...), spec.PostLogoutRedirectURIs...) {
		if err := ValidateRedirectURI(u); err != nil {
			return "", "", err
		}
	}
	// The id is hex: it is typed as a command-line argument, where a base64url id
	// could start with "-" and be read as a flag.
	c := &auth.OIDCClient{ID: randomHex(16), Name: spec.Name, Public: spec.Public, RequireMFA: spec.RequireMFA,
		Consent: spec.Consent, RedirectURIs: spec.RedirectURIs, PostLogoutRedirectURIs: spec.PostLogoutRedirectURIs,
		CreatedAt: now.UTC().Truncate(time.Microsecond)}
	if !spec.Public {
		secret = randomID(32)
		c.SecretHash = clientSecretMAC(ring, c.ID, secret)
	}
	if err := st.CreateOIDCClient(ctx, c); err != nil {
		return "", "", err
	}
	return c.ID, secret, nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("oidc: reading randomness: %v", err)) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// clientSecretMAC is how a client secret is stored: HMAC-SHA256 under the secret key,
// bound to the client id so a stored value means nothing for another client.
func clientSecretMAC(ring *keys.Keyring, clientID, secret string) []byte {
	return ring.MAC("oidc-client-secret", []byte(clientID+"\x00"+secret))
}

// Keyring returns the provider's keyring (the CLI and tests register clients with it).
func (p *Provider) Keyring() *keys.Keyring { return p.keys }
