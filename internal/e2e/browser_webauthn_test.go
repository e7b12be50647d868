package e2e

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/latchkey/latchkey/internal/cli"
)

// startLocalhostServer starts a server whose public-url is http://localhost:<port>,
// the origin a browser's WebAuthn calls must come from (an IP address cannot be a
// relying party ID).
func startLocalhostServer(t *testing.T, dbURL string) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	base := "http://localhost:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	cfg := testConfig(t, dbURL)
	cfg.PublicURL = base
	ck := newClock()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := cli.NewApp(ctx, cfg, logger, ck.Now)
	if err != nil {
		cancel()
		_ = l.Close()
		t.Fatalf("NewApp: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		app.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(logs.String(), 6000))
		}
	})
	return &testServer{URL: base, App: app, Clock: ck, Logs: logs}
}

// addVirtualAuthenticator gives the tab a DevTools virtual authenticator: a platform
// authenticator (CTAP2, internal transport) that keeps resident keys and verifies the
// user, answering at once.
func (b *tab) addVirtualAuthenticator() {
	b.t.Helper()
	b.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
				HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
		return err
	}))
}

// TestBrowserPasskey drives the real pages in Chromium with a virtual authenticator:
// register a passkey (which turns MFA on and shows the recovery codes), sign in with
// the password and the key, sign in with the passkey alone, re-authenticate with it,
// and remove it.
func TestBrowserPasskey(t *testing.T) {
	chromiumPath(t)
	srv := startLocalhostServer(t, "sqlite:"+t.TempDir()+"/l.db")
	srv.signup(t, "alice", "alice@example.com")
	b := newTab(t, srv.URL)
	b.open("/login")
	b.addVirtualAuthenticator()

	// The passkey button appears only with JavaScript and WebAuthn.
	b.do(chromedp.WaitVisible(chromedp.CSS(`form[data-webauthn="passkey"] button`)))
	b.signIn("alice")
	b.wantPath("/settings/authentication")

	// Register.
	b.do(chromedp.WaitVisible(chromedp.CSS(`form[data-webauthn="register"] button`)))
	b.screenshot("security-keys-empty")
	b.fill("f-name", "This laptop")
	b.submit(`form[data-webauthn="register"] button`)
	if codes := codesIn(b.text("main")); len(codes) != 16 {
		t.Fatalf("after adding the first key: %d recovery codes shown, want 16; page: %s", len(codes), b.text("main"))
	}
	if !srv.mfaEnabled(t, "alice") {
		t.Fatal("the first key did not turn MFA on")
	}
	b.open("/settings/authentication")
	keys := b.text(`section[aria-labelledby="keys-h"]`)
	if !strings.Contains(keys, "This laptop") || !strings.Contains(keys, "Passkey") {
		t.Fatalf("keys section = %q", keys)
	}
	b.screenshot("security-keys")

	// Password, then the key, offered first.
	b.signOut()
	b.signIn("alice")
	b.wantPath("/login/mfa")
	b.do(chromedp.WaitVisible(chromedp.CSS(`form[data-webauthn="second"] button`)))
	b.screenshot("login-mfa-key")
	b.submit(`form[data-webauthn="second"] button`)
	b.wantPath("/settings/authentication")

	// The passkey alone.
	b.signOut()
	b.do(chromedp.WaitVisible(chromedp.CSS(`form[data-webauthn="passkey"] button`)))
	b.screenshot("login-passkey")
	b.submit(`form[data-webauthn="passkey"] button`)
	b.wantPath("/settings/authentication")

	// Re-authenticate with it after the window has passed.
	srv.Clock.Advance(11 * time.Minute)
	b.open("/settings/reauth?next=/settings/authentication")
	b.do(chromedp.WaitVisible(chromedp.CSS(`form[data-webauthn="reauth"] button`)))
	b.submit(`form[data-webauthn="reauth"] button`)
	b.wantPath("/settings/authentication?done=reauthenticated")

	// Remove it: the last second factor, so MFA turns off.
	if !strings.Contains(b.text(`section[aria-labelledby="keys-h"]`), "This is your last second factor") {
		t.Fatal("removing the last key does not warn first")
	}
	b.do(chromedp.Click(chromedp.CSS(`section[aria-labelledby="keys-h"] input[name="confirm"]`)))
	b.submit(`form[action$="/remove"] button`)
	b.wantPath("/settings/authentication?done=key_removed")
	if srv.mfaEnabled(t, "alice") {
		t.Fatal("MFA is still on after removing the only key")
	}
}
