package e2e

import (
	"testing"
	"time"
)

// TestTwoReplicasOnePostgres: two servers on one database behave as one — a code
// accepted by one is refused by the other, and the failure count is shared.
func TestTwoReplicasOnePostgres(t *testing.T) {
	for _, b := range backends() {
		if b.name != "postgres" {
			continue
		}
		url := b.url(t)
		ck := newClock()
		cfg := testConfig(t, url)
		a := startServer(t, cfg, ck)
		bsrv := startServer(t, cfg, ck) // same database, same key file
		a.signup(t, "rita", "rita@example.com")
		secret, codes := a.enrol(t, a.login(t, "rita"))

		ck.Advance(30 * time.Second)
		code := oathtool(t, secret, ck.Now())
		a.mfa(t, a.pending(t, "rita"), "code", code).want(t, 200)
		bsrv.mfa(t, bsrv.pending(t, "rita"), "code", code).want(t, 401, "invalid_code")
		bsrv.mfa(t, bsrv.pending(t, "rita"), "recovery_code", codes[0]).want(t, 200)
		a.mfa(t, a.pending(t, "rita"), "recovery_code", codes[0]).want(t, 401, "invalid_code")

		// A session opened on one replica works on the other; logout on one ends it on both.
		tok := a.login2fa(t, "rita", secret)
		bsrv.call(t, "GET", "/api/v1/me", tok, nil).want(t, 200)
		bsrv.call(t, "POST", "/api/v1/logout", tok, nil).want(t, 204)
		a.call(t, "GET", "/api/v1/me", tok, nil).want(t, 401)

		// The last success reset the count: 3 wrong codes on A plus 2 on B make 5, and
		// both replicas now refuse even the next step's right code.
		for i := 0; i < 3; i++ {
			a.mfa(t, a.pending(t, "rita"), "code", "000000").want(t, 401)
		}
		for i := 0; i < 2; i++ {
			bsrv.mfa(t, bsrv.pending(t, "rita"), "code", "000000").want(t, 401)
		}
		right := oathtool(t, secret, ck.Now().Add(30*time.Second))
		a.mfa(t, a.pending(t, "rita"), "code", right).want(t, 429)
		bsrv.mfa(t, bsrv.pending(t, "rita"), "code", right).want(t, 429)
	}
}
