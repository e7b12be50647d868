package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// testOIDC checks the OpenID Connect provider's storage (auth.OIDCStore): clients,
// codes redeemed once under any concurrency, refresh tokens rotated once, families
// revoked together, consents, signing keys and the session behind a token.
func testOIDC(t *testing.T, st auth.Store) {
	s, ok := st.(auth.OIDCStore)
	if !ok {
		t.Fatalf("%T does not implement auth.OIDCStore", st)
	}
	u := mustUser(t, st, "alice")
	sess := mustSession(t, st, u.ID, "alice-session", t0())

	// Clients round-trip, lists and all.
	c := &auth.OIDCClient{ID: "grafana", Name: "Grafana", SecretHash: hash("secret"), RequireMFA: true,
		RedirectURIs:           []string{"https://grafana.example.com/login/generic_oauth", "https://g2.example.com/cb"},
		PostLogoutRedirectURIs: []string{"https://grafana.example.com/"}, CreatedAt: t0()}
	noErr(t, "CreateOIDCClient", s.CreateOIDCClient(ctx(t), c))
	wantErr(t, "CreateOIDCClient(same id)", s.CreateOIDCClient(ctx(t), c), auth.ErrConflict)
	pub := &auth.OIDCClient{ID: "cli", Name: "CLI", Public: true, Consent: true,
		RedirectURIs: []string{"http://127.0.0.1/callback"}, CreatedAt: at(time.Second)}
	noErr(t, "CreateOIDCClient(public)", s.CreateOIDCClient(ctx(t), pub))
	got, err := s.OIDCClient(ctx(t), "grafana")
	noErr(t, "OIDCClient", err)
	if got.Name != "Grafana" || !got.RequireMFA || got.Public || got.Consent || !slices.Equal(got.RedirectURIs, c.RedirectURIs) ||
		!slices.Equal(got.PostLogoutRedirectURIs, c.PostLogoutRedirectURIs) || !got.CreatedAt.Equal(t0()) ||
		string(got.SecretHash) != string(c.SecretHash) {
		t.Fatalf("OIDCClient = %+v, want %+v", got, c)
	}
	gotPub, err := s.OIDCClient(ctx(t), "cli")
	noErr(t, "OIDCClient(public)", err)
	if gotPub.SecretHash != nil || !gotPub.Public || !gotPub.Consent || gotPub.PostLogoutRedirectURIs != nil {
		t.Fatalf("OIDCClient(public) = %+v", gotPub)
	}
	_, err = s.OIDCClient(ctx(t), "nobody")
	wantErr(t, "OIDCClient(unknown)", err, auth.ErrNotFound)
	list, err := s.ListOIDCClients(ctx(t))
	noErr(t, "ListOIDCClients", err)
	if len(list) != 2 || list[0].ID != "grafana" || list[1].ID != "cli" {
		t.Fatalf("ListOIDCClients = %+v", list)
	}

	// A code is redeemed by exactly one of many racing exchanges.
	newGrant := func(id, code string) *auth.OIDCGrant {
		g := &auth.OIDCGrant{ID: id, CodeHash: hash(code), ClientID: "grafana", UserID: u.ID, SessionID: sess.ID,
			RedirectURI: c.RedirectURIs[0], Scopes: []string{"openid", "email"}, Nonce: "n-0S6", CodeChallenge: "abc",
			AuthTime: t0(), AMR: []string{"pwd", "otp", "mfa"}, ACR: auth.ACRMFA, CreatedAt: t0(), ExpiresAt: at(time.Minute)}
		noErr(t, "CreateOIDCGrant", s.CreateOIDCGrant(ctx(t), g))
		return g
	}
	g := newGrant("g1", "code-1")
	wins := race(t, 16, func(int) (bool, error) {
		got, won, err := s.RedeemOIDCCode(ctx(t), hash("code-1"), at(time.Second))
		if err == nil && got.ID != "g1" {
			return false, fmt.Errorf("RedeemOIDCCode returned grant %q", got.ID)
		}
		return won, err
	})
	if wins != 1 {
		t.Fatalf("RedeemOIDCCode won %d times of 16, want 1", wins)
	}
	rg, won, err := s.RedeemOIDCCode(ctx(t), hash("code-1"), at(2*time.Second))
	noErr(t, "RedeemOIDCCode(again)", err)
	if won || !rg.RedeemedAt.Equal(at(time.Second)) || rg.Nonce != g.Nonce || !slices.Equal(rg.AMR, g.AMR) ||
		!slices.Equal(rg.Scopes, g.Scopes) || rg.ACR != auth.ACRMFA || rg.SessionID != sess.ID || rg.CodeChallenge != "abc" {
		t.Fatalf("RedeemOIDCCode(again) = %+v, %v; want the grant, not won", rg, won)
	}
	_, _, err = s.RedeemOIDCCode(ctx(t), hash("no such code"), at(time.Second))
	wantErr(t, "RedeemOIDCCode(unknown)", err, auth.ErrNotFound)

	// Tokens: an access and a refresh token of the family; rotation wins once.
	tok := func(id, kind string, grant string, exp time.Time) *auth.OIDCToken {
		x := &auth.OIDCToken{ID: id, Kind: kind, GrantID: grant, ClientID: "grafana", UserID: u.ID, SessionID: sess.ID,
			Scopes: []string{"openid", "offline_access"}, AuthTime: t0(), AMR: []string{"pwd"}, ACR: auth.ACROneFactor,
			CreatedAt: at(time.Second), ExpiresAt: exp}
		if kind == auth.OIDCRefreshToken {
			x.Hash = hash("refresh-" + id)
		}
		return x
	}
	noErr(t, "CreateOIDCTokens", s.CreateOIDCTokens(ctx(t), tok("a1", auth.OIDCAccessToken, "g1", at(time.Hour)),
		tok("r1", auth.OIDCRefreshToken, "g1", at(24*time.Hour))))
	a1, err := s.OIDCTokenByID(ctx(t), "a1")
	noErr(t, "OIDCTokenByID", err)
	if a1.Kind != auth.OIDCAccessToken || a1.Hash != nil || a1.GrantID != "g1" || !a1.ExpiresAt.Equal(at(time.Hour)) {
		t.Fatalf("OIDCTokenByID = %+v", a1)
	}
	_, err = s.OIDCRefreshToken(ctx(t), hash("refresh-a1"))
	wantErr(t, "OIDCRefreshToken(access token's id)", err, auth.ErrNotFound)
	r1, err := s.OIDCRefreshToken(ctx(t), hash("refresh-r1"))
	noErr(t, "OIDCRefreshToken", err)
	if r1.ID != "r1" || !r1.UsedAt.IsZero() || !r1.RevokedAt.IsZero() {
		t.Fatalf("OIDCRefreshToken = %+v", r1)
	}
	wins = race(t, 16, func(i int) (bool, error) {
		return s.RotateOIDCRefreshToken(ctx(t), "r1", at(2*time.Second),
			tok(fmt.Sprintf("a2-%d", i), auth.OIDCAccessToken, "g1", at(time.Hour)),
			tok(fmt.Sprintf("r2-%d", i), auth.OIDCRefreshToken, "g1", at(24*time.Hour)))
	})
	if wins != 1 {
		t.Fatalf("RotateOIDCRefreshToken won %d times of 16, want 1", wins)
	}
	r1, err = s.OIDCRefreshToken(ctx(t), hash("refresh-r1"))
	noErr(t, "OIDCRefreshToken(used)", err)
	if !r1.UsedAt.Equal(at(2 * time.Second)) {
		t.Fatalf("used refresh token = %+v, want used_at set", r1)
	}
	successors := 0
	for i := range 16 {
		if _, err := s.OIDCRefreshToken(ctx(t), hash(fmt.Sprintf("refresh-r2-%d", i))); err == nil {
			successors++
		}
	}
	if successors != 1 {
		t.Fatalf("%d successors stored, want exactly the winner's", successors)
	}

	// Revoking the family revokes every token of the grant, and only those.
	other := newGrant("g2", "code-2")
	noErr(t, "CreateOIDCTokens(other family)", s.CreateOIDCTokens(ctx(t), tok("a9", auth.OIDCAccessToken, other.ID, at(time.Hour))))
	n, err := s.RevokeOIDCGrant(ctx(t), "g1", at(3*time.Second))
	noErr(t, "RevokeOIDCGrant", err)
	if n != 4 { // a1, r1, and the winner's a2 and r2
		t.Fatalf("RevokeOIDCGrant revoked %d tokens, want 4", n)
	}
	a1, _ = s.OIDCTokenByID(ctx(t), "a1")
	a9, _ := s.OIDCTokenByID(ctx(t), "a9")
	if a1.RevokedAt.IsZero() || !a9.RevokedAt.IsZero() {
		t.Fatalf("after RevokeOIDCGrant(g1): a1 revoked %v, a9 revoked %v; want only a1", a1.RevokedAt, a9.RevokedAt)
	}
	if _, won, _ := s.RedeemOIDCCode(ctx(t), hash("code-2"), at(4*time.Second)); !won {
		t.Fatal("RedeemOIDCCode(code of another grant) lost")
	}
	noErr(t, "RevokeOIDCToken", s.RevokeOIDCToken(ctx(t), "a9", at(5*time.Second)))
	noErr(t, "RevokeOIDCToken(unknown)", s.RevokeOIDCToken(ctx(t), "nope", at(5*time.Second)))
	a9, _ = s.OIDCTokenByID(ctx(t), "a9")
	if !a9.RevokedAt.Equal(at(5 * time.Second)) {
		t.Fatalf("RevokeOIDCToken: revoked_at = %v", a9.RevokedAt)
	}
	if ok, err := s.RotateOIDCRefreshToken(ctx(t), "r1", at(6*time.Second)); ok || err != nil {
		t.Fatalf("RotateOIDCRefreshToken(used and revoked) = %v, %v; want false", ok, err)
	}

	// Consents, the apps list, and revoking an app.
	_, err = s.OIDCConsent(ctx(t), u.ID, "cli")
	wantErr(t, "OIDCConsent(none)", err, auth.ErrNotFound)
	noErr(t, "SaveOIDCConsent", s.SaveOIDCConsent(ctx(t), &auth.OIDCConsent{UserID: u.ID, ClientID: "cli",
		Scopes: []string{"openid"}, CreatedAt: at(time.Minute)}))
	noErr(t, "SaveOIDCConsent(again)", s.SaveOIDCConsent(ctx(t), &auth.OIDCConsent{UserID: u.ID, ClientID: "cli",
		Scopes: []string{"openid", "email"}, CreatedAt: at(2 * time.Minute)}))
	k, err := s.OIDCConsent(ctx(t), u.ID, "cli")
	noErr(t, "OIDCConsent", err)
	if !k.Covers([]string{"email", "openid"}) || k.Covers([]string{"profile"}) || !k.CreatedAt.Equal(at(2*time.Minute)) {
		t.Fatalf("OIDCConsent = %+v", k)
	}
	noErr(t, "CreateOIDCTokens(live)", s.CreateOIDCTokens(ctx(t), tok("a10", auth.OIDCAccessToken, other.ID, at(time.Hour))))
	apps, err := s.ListOIDCApps(ctx(t), u.ID, at(10*time.Minute))
	noErr(t, "ListOIDCApps", err)
	if len(apps) != 2 || apps[0].ClientID != "grafana" || apps[0].ClientName != "Grafana" || apps[1].ClientID != "cli" ||
		!slices.Equal(apps[1].Scopes, []string{"openid", "email"}) {
		t.Fatalf("ListOIDCApps = %+v, want grafana (live token) then cli (consent)", apps)
	}
	noErr(t, "RevokeOIDCApp", s.RevokeOIDCApp(ctx(t), u.ID, "grafana", at(11*time.Minute)))
	noErr(t, "RevokeOIDCApp(cli)", s.RevokeOIDCApp(ctx(t), u.ID, "cli", at(11*time.Minute)))
	apps, err = s.ListOIDCApps(ctx(t), u.ID, at(11*time.Minute))
	noErr(t, "ListOIDCApps(after revoke)", err)
	if len(apps) != 0 {
		t.Fatalf("ListOIDCApps after revoking = %+v, want none", apps)
	}
	if a10, _ := s.OIDCTokenByID(ctx(t), "a10"); a10.RevokedAt.IsZero() {
		t.Fatal("RevokeOIDCApp left the app's token live")
	}

	// Signing keys: the newest signs, the one it replaced is retired at that moment.
	key := func(id string, created time.Time) *auth.OIDCKey {
		return &auth.OIDCKey{ID: id, Alg: "RS256", Private: auth.EncryptedSecret{KeyID: "k1", Ciphertext: []byte("sealed-" + id)},
			CreatedAt: created}
	}
	noErr(t, "AddOIDCKey", s.AddOIDCKey(ctx(t), key("key-1", t0())))
	noErr(t, "AddOIDCKey(rotate)", s.AddOIDCKey(ctx(t), key("key-2", at(time.Hour))))
	keys, err := s.OIDCKeys(ctx(t), at(time.Hour))
	noErr(t, "OIDCKeys", err)
	if len(keys) != 2 || keys[0].ID != "key-2" || !keys[0].RetiredAt.IsZero() || keys[1].ID != "key-1" ||
		!keys[1].RetiredAt.Equal(at(time.Hour)) || string(keys[1].Private.Ciphertext) != "sealed-key-1" || keys[1].Private.KeyID != "k1" {
		t.Fatalf("OIDCKeys = %+v", keys)
	}
	keys, err = s.OIDCKeys(ctx(t), at(time.Hour+time.Microsecond))
	noErr(t, "OIDCKeys(later)", err)
	if len(keys) != 1 || keys[0].ID != "key-2" {
		t.Fatalf("OIDCKeys(after the retired key's window) = %+v, want key-2 alone", keys)
	}

	// The session behind a token, with the user's current epoch.
	gs, ep, err := s.OIDCSession(ctx(t), sess.ID)
	noErr(t, "OIDCSession", err)
	if gs.UserID != u.ID || gs.CredEpoch != ep || gs.Method != auth.SessionPassword || !gs.ExpiresAt.Equal(sess.ExpiresAt) {
		t.Fatalf("OIDCSession = %+v, %d", gs, ep)
	}
	noErr(t, "DeleteSession", st.DeleteSession(ctx(t), u.ID, sess.ID))
	_, _, err = s.OIDCSession(ctx(t), sess.ID)
	wantErr(t, "OIDCSession(ended)", err, auth.ErrNotFound)

	// Purge: tokens past expiry go, and then the grants left without tokens.
	noErr(t, "CreateOIDCGrant(purge)", s.CreateOIDCGrant(ctx(t), &auth.OIDCGrant{ID: "g-old", CodeHash: hash("code-old"),
		ClientID: "cli", UserID: u.ID, SessionID: 1, CreatedAt: t0(), ExpiresAt: at(time.Minute)}))
	noErr(t, "CreateOIDCTokens(purge)", s.CreateOIDCTokens(ctx(t), &auth.OIDCToken{ID: "t-old", Kind: auth.OIDCAccessToken,
		GrantID: "g-old", ClientID: "cli", UserID: u.ID, CreatedAt: t0(), ExpiresAt: at(time.Hour)}))
	if n, err := s.PurgeOIDC(ctx(t), at(30*time.Minute)); err != nil || n != 0 {
		t.Fatalf("PurgeOIDC(before anything expired) = %d, %v; want 0", n, err)
	}
	if _, err := s.OIDCTokenByID(ctx(t), "t-old"); err != nil {
		t.Fatalf("PurgeOIDC deleted a live token: %v", err)
	}
	if n, err := s.PurgeOIDC(ctx(t), at(48*time.Hour)); err != nil || n < 2 {
		t.Fatalf("PurgeOIDC(later) = %d, %v; want the token and its grant at least", n, err)
	}
	_, _, err = s.RedeemOIDCCode(ctx(t), hash("code-old"), at(48*time.Hour))
	wantErr(t, "RedeemOIDCCode(purged grant)", err, auth.ErrNotFound)

	// Removing a client takes its grants, tokens and consents with it.
	noErr(t, "SaveOIDCConsent(grafana)", s.SaveOIDCConsent(ctx(t), &auth.OIDCConsent{UserID: u.ID, ClientID: "grafana",
		Scopes: []string{"openid"}, CreatedAt: at(time.Minute)}))
	noErr(t, "DeleteOIDCClient", s.DeleteOIDCClient(ctx(t), "grafana"))
	wantErr(t, "DeleteOIDCClient(again)", s.DeleteOIDCClient(ctx(t), "grafana"), auth.ErrNotFound)
	_, err = s.OIDCTokenByID(ctx(t), "a1")
	wantErr(t, "OIDCTokenByID(removed client's token)", err, auth.ErrNotFound)
	_, _, err = s.RedeemOIDCCode(ctx(t), hash("code-1"), at(time.Hour))
	wantErr(t, "RedeemOIDCCode(removed client's code)", err, auth.ErrNotFound)
	_, err = s.OIDCConsent(ctx(t), u.ID, "grafana")
	wantErr(t, "OIDCConsent(removed client)", err, auth.ErrNotFound)
}
