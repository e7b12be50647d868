package auth

import (
	"slices"
	"testing"
	"time"
)

func TestSessionAMR(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		method string
		mfaAt  time.Time
		amr    []string
		acr    string
	}{
		{SessionPassword, time.Time{}, []string{"pwd"}, ACROneFactor},
		{SessionPasswordTOTP, at, []string{"pwd", "otp", "mfa"}, ACRMFA},
		{SessionPasswordRecoveryCode, at, []string{"pwd", "otp", "mfa"}, ACRMFA},
		{"password+webauthn", at, []string{"pwd", "hwk", "mfa"}, ACRMFA},
		{"passkey", at, []string{"hwk", "mfa"}, ACRMFA},
		{"trusted_device", at, []string{"pwd", "mfa"}, ACRMFA},
		// A factor without its time, and methods nobody taught us, claim no factor.
		{SessionPasswordTOTP, time.Time{}, []string{"pwd"}, ACROneFactor},
		{"password+carrier-pigeon", at, []string{"pwd"}, ACROneFactor},
		{"smartcard", at, []string{}, ACROneFactor},
	} {
		amr, acr := SessionAMR(&Session{Method: tc.method, MFAAt: tc.mfaAt})
		if !slices.Equal(amr, tc.amr) || acr != tc.acr {
			t.Errorf("SessionAMR(%q, mfa_at %v) = %v, %q; want %v, %q", tc.method, tc.mfaAt, amr, acr, tc.amr, tc.acr)
		}
	}
}
