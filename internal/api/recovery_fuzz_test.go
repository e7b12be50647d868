package api

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeRecoveryRequests feeds arbitrary bodies to the decoders of the SSH-key
// and recovery endpoints: no panic, and an error is always a clean domain error.
func FuzzDecodeRecoveryRequests(f *testing.F) {
	for _, seed := range []string{`{"login":"alice"}`, `{"ssh_signature":"-----BEGIN SSH SIGNATURE-----\n"}`,
		`{"personal_access_token":"lk_x"}`, `{"title":"t","public_key":"ssh-ed25519 AAAA"}`, `{"reason":1}`, `{}{}`, ``, `[`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		targets := []any{&RecoveryRequest{}, &RecoveryVerifyRequest{}, &RecoveryCancelRequest{}, &RecoveryDecisionRequest{}, &SSHKeyRequest{}}
		for _, v := range targets {
			r := httptest.NewRequest("POST", "/", strings.NewReader(body))
			if err := decode(r, v); err != nil && !strings.Contains(err.Error(), "invalid_input") && !strings.Contains(err.Error(), "body_too_large") {
				t.Fatalf("decode(%q) = %v, want an invalid_input error", body, err)
			}
		}
	})
}
