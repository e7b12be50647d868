package server

import (
	"net/http"

	"github.com/latchkey/latchkey/internal/api"
	"github.com/latchkey/latchkey/internal/oidc"
	"github.com/latchkey/latchkey/internal/web"
)

// routes mounts every route of the binary, pages and API, in one list: a path's
// handler, its adapter (signed in or not, form or JSON) and its method are all read
// here.
func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	// No /metrics here: it is served only on metrics-addr (MetricsHandler), so the
	// public listener answers it with the 404 page like any unknown path.
	s.pageRoutes(mux)
	s.apiRoutes(mux)
	s.oidcRoutes(mux)
}

// pageRoutes are the server-rendered pages (internal/web). Page forms post back with
// a CSRF token (Post, AuthedPost); Authed pages need a browser session.
func (s *Server) pageRoutes(mux *http.ServeMux) {
	h := s.web
	mux.HandleFunc("GET /static/latchkey.css", h.CSS)
	mux.HandleFunc("GET /static/webauthn.js", h.Script)
	mux.Handle("GET /{$}", h.Serve(h.Index))

	mux.Handle("GET /signup", h.Serve(h.SignupForm))
	mux.Handle("POST /signup", h.Post(h.Signup))
	mux.Handle("GET /login", h.Serve(h.LoginForm))
	mux.Handle("POST /login", h.Post(h.Login))
	mux.Handle("GET /login/mfa", h.Serve(h.MFAForm(false)))
	mux.Handle("POST /login/mfa", h.Post(h.LoginMFA(false)))
	mux.Handle("GET /login/recovery-code", h.Serve(h.MFAForm(true)))
	mux.Handle("POST /login/recovery-code", h.Post(h.LoginMFA(true)))
	mux.Handle("POST /login/passkey", h.Post(h.PasskeyLogin))
	mux.Handle("POST /logout", h.Post(h.Logout))
	mux.Handle("GET /step-up", h.Serve(h.StepUpForm))
	mux.Handle("POST /step-up", h.AuthedPost(h.StepUp))
	mux.Handle("GET /password/forgot", h.Serve(h.ForgotForm))
	mux.Handle("POST /password/forgot", h.Post(h.Forgot))
	mux.Handle("GET /password/reset", h.Serve(h.ResetForm))
	mux.Handle("POST /password/reset", h.Post(h.Reset))

	mux.Handle("GET /settings/reauth", h.Authed(h.ReauthForm))
	mux.Handle("POST /settings/reauth", h.AuthedPost(h.Reauth))
	mux.Handle("GET /settings/authentication", h.Authed(h.Authentication))
	mux.Handle("POST /settings/authentication/totp", h.AuthedPost(h.SetupTOTP))
	mux.Handle("POST /settings/authentication/totp/confirm", h.AuthedPost(h.ConfirmTOTP))
	mux.Handle("POST /settings/authentication/recovery-codes/regenerate", h.AuthedPost(h.Regenerate))
	mux.Handle("POST /settings/authentication/recovery-codes.txt", h.AuthedPost(h.DownloadCodes))
	mux.Handle("POST /settings/authentication/remove", h.AuthedPost(h.RemoveMFA))
	mux.Handle("POST /settings/authentication/webauthn", h.AuthedPost(h.AddKey))
	mux.Handle("POST /settings/authentication/webauthn/{id}/rename", h.AuthedPost(h.RenameKey))
	mux.Handle("POST /settings/authentication/webauthn/{id}/remove", h.AuthedPost(h.RemoveKey))
	mux.Handle("POST /settings/password", h.AuthedPost(h.ChangePassword))
	mux.Handle("GET /settings/sessions", h.Authed(h.Sessions))
	mux.Handle("POST /settings/sessions/{id}/revoke", h.AuthedPost(h.RevokeSession))
	mux.Handle("GET /settings/security-log", h.Authed(h.SecurityLog))

	// Personal access tokens, SSH keys, and recovery when everything is lost.
	mux.Handle("GET /settings/tokens", h.Authed(h.Tokens))
	mux.Handle("POST /settings/tokens", h.AuthedPost(h.CreateToken))
	mux.Handle("POST /settings/tokens/{id}/revoke", h.AuthedPost(h.RevokeToken))
	mux.Handle("GET /settings/ssh-keys", h.Authed(h.SSHKeys))
	mux.Handle("POST /settings/ssh-keys", h.AuthedPost(h.AddSSHKey))
	mux.Handle("POST /settings/ssh-keys/{id}/delete", h.AuthedPost(h.DeleteSSHKey))
	mux.Handle("GET /recover", h.Serve(h.RecoverForm))
	mux.Handle("POST /recover", h.Post(h.OpenRecovery))
	mux.Handle("POST /recover/verify", h.Post(h.VerifyRecovery))
	mux.Handle("GET /recover/cancel", h.Serve(h.CancelForm))
	mux.Handle("POST /recover/cancel", h.Post(h.CancelRecovery))
	mux.Handle("GET /settings/account", h.Authed(h.Account))
	mux.Handle("POST /settings/account/email", h.AuthedPost(h.ChangeEmail))
	mux.Handle("POST /settings/account/email/verification", h.AuthedPost(h.ResendVerification))
	mux.Handle("GET /settings/account/export", h.Authed(h.ExportAccount))
	mux.Handle("POST /settings/account/delete", h.AuthedPost(h.DeleteAccount))
	mux.Handle("GET /verify-email", h.Serve(h.VerifyEmailForm("Verify your email address", "verify_email")))
	mux.Handle("POST /verify-email", h.Post(h.VerifyEmail))
	mux.Handle("GET /settings/account/undo-email", h.Serve(h.VerifyEmailForm("Put back your email address", "undo_email")))
	mux.Handle("POST /settings/account/undo-email", h.Post(h.UndoEmail))
	mux.Handle("GET /admin/recovery", h.Authed(h.AdminRecovery))
	mux.Handle("POST /admin/recovery/{id}/approve", h.AuthedPost(h.DecideRecovery(true)))
	mux.Handle("POST /admin/recovery/{id}/deny", h.AuthedPost(h.DecideRecovery(false)))

	// Everything else that is not an API path gets the 404 page in the site's style.
	mux.Handle("/", h.Serve(h.NotFound))
}

// apiRoutes are the JSON API (internal/api) under /api/v1/. Authed endpoints take a
// session cookie or a bearer token.
func (s *Server) apiRoutes(mux *http.ServeMux) {
	a := s.api
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
	// Security keys and passkeys.
	mux.Handle("POST /api/v1/mfa/webauthn/register/begin", a.Authed(a.BeginWebAuthnRegistration))
	mux.Handle("POST /api/v1/mfa/webauthn/register/finish", a.Authed(a.FinishWebAuthnRegistration))
	mux.Handle("GET /api/v1/mfa/webauthn", a.Authed(a.WebAuthnKeys))
	mux.Handle("PATCH /api/v1/mfa/webauthn/{id}", a.Authed(a.RenameWebAuthnKey))
	mux.Handle("DELETE /api/v1/mfa/webauthn/{id}", a.Authed(a.DeleteWebAuthnKey))
	mux.Handle("POST /api/v1/login/passkey/begin", a.Serve(a.BeginPasskeyLogin))
	mux.Handle("POST /api/v1/login/passkey/finish", a.Serve(a.FinishPasskeyLogin))
	mux.Handle("POST /api/v1/reauth/webauthn", a.Authed(a.BeginWebAuthnReauth))

	mux.Handle("POST /api/v1/password", a.Authed(a.ChangePassword))
	mux.Handle("POST /api/v1/password/forgot", a.Serve(a.ForgotPassword))
	mux.Handle("POST /api/v1/password/reset", a.Serve(a.ResetPassword))

	mux.Handle("GET /api/v1/tokens", a.Authed(a.Tokens))
	mux.Handle("POST /api/v1/tokens", a.Authed(a.CreateToken))
	mux.Handle("DELETE /api/v1/tokens/{id}", a.Authed(a.DeleteToken))

	mux.Handle("GET /api/v1/sessions", a.Authed(a.Sessions))
	mux.Handle("DELETE /api/v1/sessions/{id}", a.Authed(a.RevokeSession))
	mux.Handle("GET /api/v1/security-log", a.Authed(a.SecurityLog))

	// The account's address and lifecycle.
	mux.Handle("POST /api/v1/email/verify", a.Serve(a.VerifyEmail))
	mux.Handle("POST /api/v1/email/verification", a.Authed(a.ResendVerification))
	mux.Handle("POST /api/v1/email", a.Authed(a.ChangeEmail))
	mux.Handle("DELETE /api/v1/me", a.Authed(a.DeleteMe))
	mux.Handle("GET /api/v1/me/export", a.Authed(a.Export))

	s.forwardAuthRoutes(mux)

	// SSH keys, and recovery requests with their administrator decisions.
	mux.Handle("GET /api/v1/ssh-keys", a.Authed(a.SSHKeys))
	mux.Handle("POST /api/v1/ssh-keys", a.Authed(a.AddSSHKey))
	mux.Handle("DELETE /api/v1/ssh-keys/{id}", a.Authed(a.DeleteSSHKey))

	mux.Handle("POST /api/v1/recovery", a.Serve(a.OpenRecovery))
	mux.Handle("POST /api/v1/recovery/cancel", a.Serve(a.CancelRecovery))
	mux.Handle("POST /api/v1/recovery/{id}/verify", a.Serve(a.VerifyRecovery))

	mux.Handle("GET /api/v1/admin/recovery-requests", a.Authed(a.AdminRecoveryRequests))
	mux.Handle("POST /api/v1/admin/recovery-requests/{id}/approve", a.Authed(a.ApproveRecovery))
	mux.Handle("POST /api/v1/admin/recovery-requests/{id}/deny", a.Authed(a.DenyRecovery))

	// Anything else under /api/ answers in JSON, not with an HTML 404.
	mux.Handle("/api/", a.Serve(a.NotFound))
}

// forwardAuthRoutes mounts the endpoints reverse proxies ask, for any method.
func (s *Server) forwardAuthRoutes(mux *http.ServeMux) {
	fa, err := api.NewForwardAuth(s.svc, s.log, api.ForwardAuthOptions{PublicURL: s.opts.PublicURL,
		CookieName: web.CookieName(s.opts.SecureCookies, s.opts.CookieDomain), CookieDomain: s.opts.CookieDomain,
		Rules: s.opts.ForwardAuthRules, MFAMaxAge: s.opts.ForwardAuthMFAMaxAge})
	if err != nil {
		// config.Validate refuses such a public URL; a handler built without one
		// (a unit test) has no applications to protect.
		s.log.Warn("forward auth disabled", "err", err)
		return
	}
	mux.HandleFunc("/api/authz/auth-request", fa.AuthRequest)
	mux.HandleFunc("/api/authz/forward-auth", fa.Forward)
}

// oidcRoutes lists the OpenID Connect provider's routes (SPEC §9.1), when it runs.
// Token, userinfo, revocation and keys are the library's handler; clients call them
// from anywhere, so the CSRF check skips them (see isProtocolPath).
func (s *Server) oidcRoutes(mux *http.ServeMux) {
	pages := s.web
	p := s.oidc
	if p == nil {
		return
	}
	p.UsePages(pages)
	mux.HandleFunc("GET "+oidc.PathDiscovery, p.Discovery)
	mux.HandleFunc("GET "+oidc.PathAuthorize, p.Authorize)
	mux.HandleFunc("POST "+oidc.PathAuthorize, p.Authorize)
	mux.HandleFunc("GET "+oidc.PathConsent, p.ConsentForm)
	mux.HandleFunc("POST "+oidc.PathConsent, p.Consent)
	mux.HandleFunc("GET "+oidc.PathLogout, p.Logout)
	mux.HandleFunc("POST "+oidc.PathLogout, p.Logout)
	mux.Handle("POST "+oidc.PathToken, p.Protocol())
	mux.Handle("GET "+oidc.PathUserinfo, p.Protocol())
	mux.Handle("POST "+oidc.PathUserinfo, p.Protocol())
	mux.Handle("POST "+oidc.PathRevoke, p.Protocol())
	mux.Handle("GET "+oidc.PathKeys, p.Protocol())
	mux.Handle("GET /settings/apps", pages.Authed(p.Apps))
	mux.Handle("POST /settings/apps/{client}/revoke", pages.AuthedPost(p.RevokeApp))
}
