// Package web serves Latchkey's HTML pages: server-rendered forms that work without
// JavaScript, in the same words as the product's settings pages.
//
// Handlers follow the API's shape: parse the form, call one auth.Service method, and
// render a page or redirect; server/routes.go mounts them. Errors go back to one
// adapter (Serve) that turns the domain's error kinds into pages, redirects to sign-in
// or re-authentication, or the "Too many attempts" page. Templates and the stylesheet are embedded, so the binary
// is the whole site and the Content-Security-Policy can forbid everything external.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/authz"
	"github.com/latchkey/latchkey/internal/status"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/latchkey.css
var stylesheet []byte

// CookieName returns the session cookie's name: with the __Host- prefix under https, so
// that no subdomain or plain-http page can plant or overwrite it. With a cookie domain
// (shared with the applications behind forward auth) __Host- is impossible, since it
// forbids a Domain attribute; __Secure- still keeps plain-http pages from setting it.
func CookieName(secure bool, domain string) string {
	switch {
	case secure && domain != "":
		return "__Secure-latchkey_session"
	case secure:
		return "__Host-latchkey_session"
	}
	return "latchkey_session"
}

// Options configure the pages.
type Options struct {
	SiteName      string
	PublicURL     string
	SecureCookies bool
	// CookieDomain, when set, is the parent domain the session cookie is sent to; its
	// hosts are also where a return URL (rd) may lead.
	CookieDomain string
	// MFAMaxAge is how old a session's second factor may be before /step-up asks for
	// it again (0: as old as the session), the same rule forward auth applies.
	MFAMaxAge time.Duration
}

// Handler serves the pages.
type Handler struct {
	svc   *auth.Service
	log   *slog.Logger
	opts  Options
	pages map[string]*template.Template
	// cssPath carries a hash of the stylesheet so it can be cached for a year and
	// still change the moment a new binary ships.
	cssPath string
	// returns decides which absolute return URLs (rd) are followed; nil follows none.
	returns *authz.ReturnURLs
}

// New returns the page handlers. It panics if an embedded template does not parse:
// that is a build defect, caught by every test that starts a server.
func New(svc *auth.Service, log *slog.Logger, opts Options) *Handler {
	if opts.SiteName == "" {
		opts.SiteName = "Latchkey"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sum := sha256.Sum256(stylesheet)
	h := &Handler{svc: svc, log: log, opts: opts, pages: map[string]*template.Template{},
		cssPath: "/static/latchkey.css?v=" + hex.EncodeToString(sum[:6])}
	if rs, err := authz.NewReturnURLs(opts.PublicURL, opts.CookieDomain); err == nil {
		h.returns = rs
	} else {
		// The configuration was validated at start; a handler built without a
		// public URL (a test) simply follows no absolute return URL.
		log.Debug("return URLs disabled", "err", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t := template.New("layout.html").Funcs(template.FuncMap{
			"datetime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
			"age":      age,
		})
		h.pages[base] = template.Must(t.ParseFS(templateFS, "templates/layout.html", n))
	}
	return h
}

// NotFound is the 404 page in the site's style, for every path that is neither a page
// nor under /api/.
func (h *Handler) NotFound(w http.ResponseWriter, r *http.Request) error { return errNotFound }

var errNotFound = auth.E(auth.KindNotFound, "not_found", "There is no page at this address.")

// CSS serves the one stylesheet. The URL in pages carries the content hash, so a long
// immutable cache is safe.
func (h *Handler) CSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(stylesheet)
}

// PageFunc is a page handler that returns its error to the adapter.
type PageFunc func(w http.ResponseWriter, r *http.Request) error

// AuthedFunc is a page handler for a signed-in browser session.
type AuthedFunc func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error

// Serve adapts a PageFunc: the one place page errors become responses.
func (h *Handler) Serve(f PageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			h.fail(w, r, err)
		}
	})
}

// Post is Serve for form submissions: the form is parsed and its csrf_token checked
// before the handler runs.
func (h *Handler) Post(f PageFunc) http.Handler {
	return h.Serve(func(w http.ResponseWriter, r *http.Request) error {
		if err := r.ParseForm(); err != nil {
			return auth.E(auth.KindInvalidInput, "invalid_form", "The form could not be read.")
		}
		if !h.validCSRF(r) {
			return errCSRF
		}
		return f(w, r)
	})
}

// Authed runs f for a signed-in browser session; anyone else is sent to sign in and
// brought back afterwards.
func (h *Handler) Authed(f AuthedFunc) http.Handler {
	return h.Serve(func(w http.ResponseWriter, r *http.Request) error { return h.withPrincipal(w, r, f) })
}

// AuthedPost is authed for form submissions.
func (h *Handler) AuthedPost(f AuthedFunc) http.Handler {
	return h.Post(func(w http.ResponseWriter, r *http.Request) error { return h.withPrincipal(w, r, f) })
}

func (h *Handler) withPrincipal(w http.ResponseWriter, r *http.Request, f AuthedFunc) error {
	p := auth.PrincipalFrom(r.Context())
	if p == nil || p.Session == nil {
		// A personal access token is not a browser session: the pages need a cookie.
		return auth.ErrUnauthenticated
	}
	return f(w, r, p)
}

// fail renders err as a page. The kinds a form shows next to its fields are handled by
// the form's own handler; what reaches here is a whole-page answer.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := auth.AsError(err)
	if e == nil {
		h.log.Error("page failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &auth.Error{Kind: auth.KindInternal, Code: "internal_error", Message: "Something went wrong on our side. Try again in a moment."}
	}
	switch e.Kind {
	case auth.KindUnauthenticated:
		redirect(w, r, "/login"+nextQuery(r))
		return
	case auth.KindReauthRequired:
		redirect(w, r, "/settings/reauth"+nextQuery(r))
		return
	}
	code := status.Code(e.Kind)
	title := map[int]string{
		http.StatusNotFound:            "Page not found",
		http.StatusTooManyRequests:     "Too many attempts",
		http.StatusServiceUnavailable:  "The server is busy",
		http.StatusForbidden:           "Not allowed",
		http.StatusInternalServerError: "Something went wrong",
	}[code]
	if title == "" {
		title = "That did not work"
	}
	pg := h.newPage(w, r, title)
	pg.Error = e.Message
	pg.RetryAfter = retryText(e.RetryAfter)
	setRetryAfter(w, e.RetryAfter)
	h.render(w, code, "error", pg)
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
}

// retryText says how long to wait in words a person reads at a glance.
func retryText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	secs := int((d + time.Second - 1) / time.Second)
	switch {
	case secs == 1:
		return "1 second"
	case secs < 120:
		return fmt.Sprintf("%d seconds", secs)
	default:
		return fmt.Sprintf("%d minutes", (secs+59)/60)
	}
}

// nextQuery carries the current page to the sign-in or re-authentication form so the
// user lands back where they were. A POST's page is the form it came from, which is
// the page the user saw; only GET paths are replayed as they are.
func nextQuery(r *http.Request) string {
	next := r.URL.Path
	if r.Method == http.MethodGet && r.URL.RawQuery != "" {
		next += "?" + r.URL.RawQuery
	}
	if r.Method != http.MethodGet {
		next = settingsPageOf(r.URL.Path)
		// A form on the way back to another application keeps its destination.
		if rd := r.PostFormValue("rd"); rd != "" {
			next += "?rd=" + url.QueryEscape(rd)
		}
	}
	if localPath(next) == "" || next == "/" {
		return ""
	}
	return "?next=" + url.QueryEscape(next)
}

// settingsPageOf names the page a settings form was posted from.
func settingsPageOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/settings/authentication"), path == "/settings/password":
		return "/settings/authentication"
	case strings.HasPrefix(path, "/settings/sessions"):
		return "/settings/sessions"
	case strings.HasPrefix(path, "/settings/tokens"):
		return "/settings/tokens"
	case strings.HasPrefix(path, "/settings/ssh-keys"):
		return "/settings/ssh-keys"
	case strings.HasPrefix(path, "/settings/account"):
		return "/settings/account"
	case strings.HasPrefix(path, "/admin/recovery"):
		return "/admin/recovery"
	case path == "/step-up":
		return "/step-up"
	}
	return "/settings/authentication"
}

// localPath returns p if it is a path on this site, or "". It refuses anything a
// browser could read as another origin ("//evil", "/\evil", "https:…") so that a
// next= parameter can never become an open redirect.
func localPath(p string) string {
	if p == "" || len(p) > 512 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return ""
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return ""
		}
	}
	return p
}

// redirect answers a form with 303 See Other so that a reload does not repost it.
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// page is what every template gets.
type page struct {
	Title      string
	Site       string
	CSS        string
	User       *auth.User
	CSRF       string
	Flash      *flash
	Error      string            // about the whole form or page
	Fields     map[string]string // per-field problems, shown next to the field
	Values     map[string]string // what the user typed, to fill the form again (never passwords)
	RetryAfter string
	Next       string
	// RD is where to go once this sign-in, step-up or set-up is done: a page of this
	// site, or an allowed URL of another application (see returnTo). Forms carry it in
	// a hidden field and links in the query.
	RD   string
	Data any
	// Script is the WebAuthn script's path on the pages that run it ("" elsewhere).
	Script string
	// Banner is the require-mfa notice shown on every page ("" when none).
	Banner string
}

func (h *Handler) newPage(w http.ResponseWriter, r *http.Request, title string) *page {
	pg := &page{Title: title, Site: h.opts.SiteName, CSS: h.cssPath, Fields: map[string]string{},
		Values: map[string]string{}, Next: localPath(r.FormValue("next")), RD: h.returnTo(r.FormValue("rd"))}
	if p := auth.PrincipalFrom(r.Context()); p != nil && p.Session != nil {
		pg.User = p.User
		if pol := p.MFAPolicy(); pol.Blocked {
			pg.Banner = "Your site requires multiple-factor authentication before you can do anything else."
		} else if !pol.Deadline.IsZero() {
			pg.Banner = "Your site requires multiple-factor authentication from " + pol.Deadline.UTC().Format("2 January 2006, 15:04 UTC") + "."
		}
	}
	pg.CSRF = h.csrfToken(w, r)
	pg.Flash = flashFor(r.URL.Query().Get("done"))
	return pg
}

// Carry is the query that takes next and rd on to another step of the same flow
// ("" when there is neither), for links between the sign-in pages.
func (pg *page) Carry() string {
	return carry(pg.Next, pg.RD)
}

func carry(next, rd string) string {
	q := url.Values{}
	if next != "" {
		q.Set("next", next)
	}
	if rd != "" {
		q.Set("rd", rd)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// ReturnHost names the application rd leads to, for the sentence that says where
// the user goes next; "" for a page of this site.
func (pg *page) ReturnHost() string {
	if u, err := url.Parse(pg.RD); err == nil && u.IsAbs() {
		return u.Hostname()
	}
	return ""
}

// formError puts a domain error on the form: per-field problems next to their fields,
// everything else at the top. It reports false for errors that are not the form's.
func (pg *page) formError(err error, field string) bool {
	e := auth.AsError(err)
	if e == nil {
		return false
	}
	switch e.Kind {
	case auth.KindInvalidInput, auth.KindConflict:
		if len(e.Fields) > 0 {
			for k, v := range e.Fields {
				pg.Fields[k] = v
			}
			pg.Error = "Please correct the marked fields."
			return true
		}
		pg.Error = e.Message
		return true
	case auth.KindInvalidCredentials:
		if field != "" {
			pg.Fields[field] = e.Message
		} else {
			pg.Error = e.Message
		}
		return true
	}
	return false
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, pg *page) {
	t, ok := h.pages[name]
	if !ok {
		h.log.Error("no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// With WebAuthn off (an IP-address public-url) the script is not loaded, so its
	// buttons stay hidden and the policy keeps forbidding script.
	if scriptPages[name] && h.svc.WebAuthnUnavailable() == "" {
		pg.Script = scriptPath
		w.Header().Set("Content-Security-Policy", scriptCSP)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, pg); err != nil {
		h.log.Error("rendering page", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Pages show account details, codes and form tokens: never keep them in a cache.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Index sends a signed-in browser to its settings and anyone else to sign in.
func (h *Handler) Index(w http.ResponseWriter, r *http.Request) error {
	if p := auth.PrincipalFrom(r.Context()); p != nil && p.Session != nil {
		redirect(w, r, "/settings/authentication")
		return nil
	}
	redirect(w, r, "/login")
	return nil
}

func client(r *http.Request) auth.Client { return auth.ClientFrom(r.Context()) }

// field is one labelled input, with its problem tied to it by aria-describedby.
type field struct {
	Name, Label, Type, Autocomplete, Value, Error, Hint string
	// Kind picks extra attributes: "code" for a six-digit app code, "recovery" for a
	// recovery code.
	Kind      string
	Autofocus bool
	Optional  bool
}

// Opt makes the field optional, for a form that offers two ways to answer.
func (f field) Opt() field {
	f.Optional = true
	return f
}

// Input describes a form field for the "input" template.
func (pg *page) Input(name, label, typ, autocomplete string) field {
	f := field{Name: name, Label: label, Type: typ, Autocomplete: autocomplete, Error: fieldMessage(label, pg.Fields[name])}
	if typ != "password" {
		f.Value = pg.Values[name]
	}
	if typ == "password" && autocomplete == "new-password" {
		f.Hint = "8 to 128 characters."
	}
	return f
}

// TextArea describes a multi-line field for the "textarea" template: kind "key" for an
// SSH public key, "signature" for an armored signature.
func (pg *page) TextArea(name, label, kind, hint string) field {
	return field{Name: name, Label: label, Kind: kind, Hint: hint, Value: pg.Values[name],
		Error: fieldMessage(label, pg.Fields[name])}
}

// CodeInput describes the six-digit Code field.
func (pg *page) CodeInput(name, label string) field {
	f := pg.Input(name, label, "text", "one-time-code")
	f.Kind, f.Value, f.Autofocus = "code", "", true
	return f
}

// RecoveryInput describes a recovery-code field.
func (pg *page) RecoveryInput(name, label string) field {
	f := pg.Input(name, label, "text", "off")
	f.Kind, f.Value, f.Autofocus = "recovery", "", true
	f.Hint = "16 letters and digits, like xxxx-xxxx-xxxx-xxxx."
	return f
}

// fieldMessage turns the domain's per-field fragments ("is taken") into a sentence
// that names the field; whole sentences pass through.
func fieldMessage(label, msg string) string {
	if msg == "" || !('a' <= msg[0] && msg[0] <= 'z') {
		return msg
	}
	return label + " " + msg + "."
}
