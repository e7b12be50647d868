package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/auth"
)

// requestTypes returns a fresh value of every JSON request body the API decodes.
func requestTypes() map[string]func() any {
	return map[string]func() any{
		"signup": func() any { return &SignupRequest{} }, "login": func() any { return &LoginRequest{} },
		"login_mfa": func() any { return &LoginMFARequest{} }, "reauth": func() any { return &ReauthRequest{} },
		"password": func() any { return &PasswordChangeRequest{} }, "forgot": func() any { return &ForgotRequest{} },
		"reset": func() any { return &ResetRequest{} }, "confirm": func() any { return &ConfirmRequest{} },
		"ssh_key": func() any { return &SSHKeyRequest{} }, "recovery": func() any { return &RecoveryRequest{} },
		"recovery_verify": func() any { return &RecoveryVerifyRequest{} }, "recovery_cancel": func() any { return &RecoveryCancelRequest{} },
		"recovery_decision": func() any { return &RecoveryDecisionRequest{} }, "token": func() any { return &TokenRequest{} },
	}
}

func decodeBody(body string, v any) error {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 64<<10)
	return decode(r, v)
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, body string
		wantCode   string // "" means success
	}{
		{"object", `{"login":"a","password":"b"}`, ""},
		{"unknown fields are ignored", `{"login":"a","extra":1}`, ""},
		{"empty", ``, "invalid_input"},
		{"not json", `login=a`, "invalid_input"},
		{"array", `[]`, "invalid_input"},
		{"trailing object", `{} {}`, "invalid_input"},
		{"trailing garbage", `{}x`, "invalid_input"},
		{"number for string", `{"login":5}`, "invalid_input"},
		{"null is fine", `null`, ""},
		{"too large", `{"login":"` + strings.Repeat("a", 70<<10) + `"}`, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeBody(tt.body, &LoginRequest{})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("decode(%.40q) = %v, want nil", tt.body, err)
				}
				return
			}
			e := auth.AsError(err)
			wantKind := auth.KindInvalidInput
			if tt.wantCode == "body_too_large" {
				wantKind = auth.KindTooLarge
			}
			if e == nil || e.Code != tt.wantCode || e.Kind != wantKind {
				t.Fatalf("decode(%.40q) = %v, want %s", tt.body, err, tt.wantCode)
			}
		})
	}
}

// FuzzDecode feeds every request decoder arbitrary bodies: no panic, and every error is
// a clear 400 of the domain's set (fail closed, never an internal error).
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{`{"login":"a","password":"b"}`, `{"code":81804}`, `{"mfa_token":"x","code":"081804"}`,
		`{"expires_in_days":1e400}`, `{"name":"\u0000"}`, `[`, `{"ssh_signature":null}`, `{"recovery_code":["a"]}`, "\xff\xfe"} {
		f.Add(seed)
	}
	types := requestTypes()
	f.Fuzz(func(t *testing.T, body string) {
		for name, mk := range types {
			err := decodeBody(body, mk())
			if err == nil {
				continue
			}
			var e *auth.Error
			if !errors.As(err, &e) || e.Kind != auth.KindInvalidInput || e.Code == "" || e.Message == "" {
				t.Fatalf("%s: decode(%q) = %v, want a domain invalid-input error", name, body, err)
			}
		}
	})
}
