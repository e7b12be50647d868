package server

import (
	"net/http"

	"github.com/latchkey/latchkey/internal/api"
	"github.com/latchkey/latchkey/internal/oidc"
	"github.com/latchkey/latchkey/internal/web"
)

// routes mounts every route: the API's here, the pages' through web.Register (which
// lists them in internal/web/web.go beside their handlers).
func (s *Server) routes(mux *http.ServeMux) {
	pages := web.New(s.svc, s.log, web.Options{SiteName: s.opts.SiteName, PublicURL: s.opts.PublicURL,
		SecureCookies: s.opts.SecureCookies, CookieDomain: s.opts.CookieDomain,
		MFAMaxAge: s.opts.ForwardAuthMFAMaxAge})
	pages.Register(mux)
	s.oidcRoutes(mux, pages)

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

	s.forwardAuthRoutes(mux)

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

// oidcRoutes lists the OpenID Connect provider's routes (SPEC §9.1), when it runs.
// Token, userinfo, revocation and keys are the library's handler; clients call them
// from anywhere, so the CSRF check skips them (see isProtocolPath).
func (s *Server) oidcRoutes(mux *http.ServeMux, pages *web.Handler) {
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
