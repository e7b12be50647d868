package server

import (
	"net/http"

	"github.com/latchkey/latchkey/internal/web"
)

// routes mounts every route: the API's here, the pages' through web.Register (which
// lists them in internal/web/web.go beside their handlers).
func (s *Server) routes(mux *http.ServeMux) {
	web.New(s.svc, s.log, web.Options{SiteName: s.opts.SiteName, PublicURL: s.opts.PublicURL,
		SecureCookies: s.opts.SecureCookies}).Register(mux)

	a := s.api
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", s.metricsHandler())

	mux.Handle("POST /api/v1/signup", a.Serve(a.Signup))
	mux.Handle("POST /api/v1/login", a.Serve(a.Login))
	mux.Handle("POST /api/v1/login/mfa", a.Serve(a.LoginMFA))
	mux.Handle("POST /api/v1/logout", a.Authed(a.Logout))
	mux.Handle("GET /api/v1/me", a.Authed(a.Me))
	mux.Handle("POST /api/v1/reauth", a.Authed(a.Reauth))

	mux.Handle("POST /api/v1/mfa/totp/setup", a.Authed(a.SetupTOTP))
	mux.Handle("GET /api/v1/mfa/totp/setup/qr.png", a.Authed(a.QRCode("png")))
	mux.Handle("GET /api/v1/mfa/totp/setup/qr.svg", a.Authed(a.QRCode("svg")))
	mux.Handle("POST /api/v1/mfa/totp/confirm", a.Authed(a.ConfirmTOTP))
	mux.Handle("GET /api/v1/mfa/recovery-codes", a.Authed(a.RecoveryCodes))
	mux.Handle("POST /api/v1/mfa/recovery-codes/regenerate", a.Authed(a.RegenerateRecoveryCodes))
	mux.Handle("DELETE /api/v1/mfa", a.Authed(a.DisableMFA))
	s.webauthnRoutes(mux)

	mux.Handle("POST /api/v1/password", a.Authed(a.ChangePassword))
	mux.Handle("POST /api/v1/password/forgot", a.Serve(a.ForgotPassword))
	mux.Handle("POST /api/v1/password/reset", a.Serve(a.ResetPassword))

	mux.Handle("GET /api/v1/tokens", a.Authed(a.Tokens))
	mux.Handle("POST /api/v1/tokens", a.Authed(a.CreateToken))
	mux.Handle("DELETE /api/v1/tokens/{id}", a.Authed(a.DeleteToken))

	mux.Handle("GET /api/v1/sessions", a.Authed(a.Sessions))
	mux.Handle("DELETE /api/v1/sessions/{id}", a.Authed(a.RevokeSession))
	mux.Handle("GET /api/v1/security-log", a.Authed(a.SecurityLog))
	s.recoveryRoutes(mux)

	// Anything else under /api/ answers in JSON, not with an HTML 404.
	mux.Handle("/api/", a.Serve(a.NotFound))
}

// recoveryRoutes lists the routes of SSH keys and recovery requests (issue 5).
func (s *Server) recoveryRoutes(mux *http.ServeMux) {
	a := s.api
	mux.Handle("GET /api/v1/ssh-keys", a.Authed(a.SSHKeys))
	mux.Handle("POST /api/v1/ssh-keys", a.Authed(a.AddSSHKey))
	mux.Handle("DELETE /api/v1/ssh-keys/{id}", a.Authed(a.DeleteSSHKey))

	mux.Handle("POST /api/v1/recovery", a.Serve(a.OpenRecovery))
	mux.Handle("POST /api/v1/recovery/cancel", a.Serve(a.CancelRecovery))
	mux.Handle("POST /api/v1/recovery/{id}/verify", a.Serve(a.VerifyRecovery))

	mux.Handle("GET /api/v1/admin/recovery-requests", a.Authed(a.AdminRecoveryRequests))
	mux.Handle("POST /api/v1/admin/recovery-requests/{id}/approve", a.Authed(a.ApproveRecovery))
	mux.Handle("POST /api/v1/admin/recovery-requests/{id}/deny", a.Authed(a.DenyRecovery))
}

// webauthnRoutes lists the routes of security keys and passkeys (issue 15, SPEC §8).
func (s *Server) webauthnRoutes(mux *http.ServeMux) {
	a := s.api
	mux.Handle("POST /api/v1/mfa/webauthn/register/begin", a.Authed(a.BeginWebAuthnRegistration))
	mux.Handle("POST /api/v1/mfa/webauthn/register/finish", a.Authed(a.FinishWebAuthnRegistration))
	mux.Handle("GET /api/v1/mfa/webauthn", a.Authed(a.WebAuthnKeys))
	mux.Handle("PATCH /api/v1/mfa/webauthn/{id}", a.Authed(a.RenameWebAuthnKey))
	mux.Handle("DELETE /api/v1/mfa/webauthn/{id}", a.Authed(a.DeleteWebAuthnKey))
	mux.Handle("POST /api/v1/login/passkey/begin", a.Serve(a.BeginPasskeyLogin))
	mux.Handle("POST /api/v1/login/passkey/finish", a.Serve(a.FinishPasskeyLogin))
	mux.Handle("POST /api/v1/reauth/webauthn", a.Authed(a.BeginWebAuthnReauth))
}
