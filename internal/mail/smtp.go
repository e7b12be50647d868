// Package mail delivers Latchkey's notification emails over SMTP.
//
// The SMTP conversation itself is github.com/emersion/go-smtp's client with
// go-sasl's PLAIN mechanism; this package adds what they leave to the
// caller: choosing TLS from the URL, refusing header injection, building a
// well-formed UTF-8 message, and bounding each send by a context.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// DefaultTimeout bounds a whole send when the caller's context has no
// deadline, so a stuck mail server cannot hold a request or a worker forever.
const DefaultTimeout = 15 * time.Second

// Message is one plain-text email to one recipient.
type Message struct {
	To      string
	Subject string
	Body    string
}

// SMTP sends messages through one SMTP server. It holds no connection:
// each Send is a complete conversation, which suits the low volume of
// account notifications and survives server restarts.
type SMTP struct {
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (tests set
	// it to trust their own certificate). ServerName defaults to the host.
	TLSConfig *tls.Config
	// Now stamps the Date header; nil means time.Now.
	Now func() time.Time

	rawURL     string
	implicit   bool // smtps: TLS from the first byte
	host, addr string
	username   string
	password   string
	auth       bool
	from       *netmail.Address
	logger     *slog.Logger
}

// NewSMTP parses an smtp:// or smtps:// URL, with optional user:password,
// and the From address. smtp:// upgrades with STARTTLS when the server
// offers it, and insists on it when credentials would otherwise cross a
// network in the clear; smtps:// uses TLS from the start. The default ports
// are 587 and 465.
func NewSMTP(rawURL, from string, logger *slog.Logger) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url's errors quote the input, which may hold a password.
		return nil, errors.New("smtp url: not a valid URL")
	}
	s := &SMTP{rawURL: rawURL, logger: logger}
	var port string
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		port, s.implicit = "465", true
	default:
		return nil, fmt.Errorf("smtp url: scheme %q is not smtp or smtps", u.Scheme)
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, errors.New("smtp url: no host")
	}
	if u.Port() != "" {
		port = u.Port()
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("smtp url: only scheme, user, password, host and port are allowed")
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.username = u.User.Username()
		s.password, _ = u.User.Password()
		s.auth = true
	}
	if strings.ContainsAny(from, "\r\n") {
		return nil, errors.New("smtp from: contains a line break")
	}
	s.from, err = netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("smtp from: %w", err)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// String returns the server URL with any password replaced, for logs.
func (s *SMTP) String() string { return RedactURL(s.rawURL) }

// RedactURL returns raw with its password replaced by "xxxxx", so
// configuration can be logged. An unparsable URL is not echoed at all, since
// it may still contain a password.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	return u.Redacted()
}

// requireTLS reports whether sending would expose credentials on a network:
// with a loopback server the password never leaves the machine.
func (s *SMTP) requireTLS() bool {
	if !s.auth || s.implicit {
		return false
	}
	if s.host == "localhost" {
		return false
	}
	ip := net.ParseIP(s.host)
	return ip == nil || !ip.IsLoopback()
}

func (s *SMTP) tlsConfig() *tls.Config {
	cfg := &tls.Config{}
	if s.TLSConfig != nil {
		cfg = s.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.host
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// Send delivers m in one SMTP conversation, within ctx's deadline or
// DefaultTimeout.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	data, to, err := s.build(m)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	if err := s.send(ctx, to, data); err != nil {
		// A closed or timed-out connection is the symptom; the context is
		// the cause worth reporting.
		if ctxErr := contextErr(ctx); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return fmt.Errorf("send mail via %s: %w", s, err)
	}
	s.logger.Info("mail sent", "to", to, "server", s.String())
	return nil
}

// contextErr is ctx.Err(), except that a deadline already past counts even
// if ctx's own timer has not fired yet: the connection deadlines go-smtp sets
// come from the same instant and may expire a moment earlier.
func contextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (s *SMTP) send(ctx context.Context, to string, data []byte) error {
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	if s.auth {
		if err := c.Auth(sasl.NewPlainClient("", s.username, s.password)); err != nil {
			return fmt.Errorf("authenticate: %w", err)
		}
	}
	if err := c.Mail(s.from.Address, nil); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end message: %w", err)
	}
	// The message is accepted once DATA ends; a failed QUIT loses nothing.
	c.Quit()
	return nil
}

// client is a go-smtp client whose connection is closed when the send's
// context ends.
type client struct {
	*smtp.Client
	stop func() bool
}

func (c client) close() {
	c.stop()
	c.Close()
}

// connect dials and greets, leaving a client ready for AUTH (TLS already in
// place when the URL or the server calls for it).
func (s *SMTP) connect(ctx context.Context) (client, error) {
	if s.implicit || s.requireTLS() {
		return s.dial(ctx, true)
	}
	// go-smtp upgrades only when asked to, and cannot upgrade a client it
	// has already greeted, so to use STARTTLS "when offered" we look at the
	// server's extensions first and start over with TLS if it has it.
	c, err := s.dial(ctx, false)
	if err != nil {
		return client{}, err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return c, nil
	}
	c.Quit()
	c.close()
	return s.dial(ctx, true)
}

// dial opens one connection and says EHLO; withTLS means implicit TLS for
// smtps and mandatory STARTTLS for smtp.
func (s *SMTP) dial(ctx context.Context, withTLS bool) (client, error) {
	var conn net.Conn
	var err error
	if s.implicit {
		d := tls.Dialer{Config: s.tlsConfig()}
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return client{}, fmt.Errorf("connect: %w", err)
	}
	// go-smtp sets a deadline per command from CommandTimeout; closing the
	// connection when ctx ends also stops a command already waiting.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	var c *smtp.Client
	if withTLS && !s.implicit {
		c, err = smtp.NewClientStartTLS(conn, s.tlsConfig())
		if err != nil {
			stop()
			conn.Close()
			return client{}, fmt.Errorf("STARTTLS: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	deadline, _ := ctx.Deadline()
	c.CommandTimeout = time.Until(deadline)
	c.SubmissionTimeout = c.CommandTimeout
	cl := client{Client: c, stop: stop}
	if err := c.Hello("localhost"); err != nil {
		cl.close()
		return client{}, fmt.Errorf("greeting: %w", err)
	}
	return cl, nil
}

// build renders m as an RFC 5322 message and returns it with the envelope
// recipient.
func (s *SMTP) build(m Message) ([]byte, string, error) {
	// A line break in a header value would let whoever chose it add headers
	// or recipients of their own.
	if strings.ContainsAny(m.To, "\r\n") {
		return nil, "", errors.New("mail: recipient contains a line break")
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, "", errors.New("mail: subject contains a line break")
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		return nil, "", fmt.Errorf("mail: recipient: %w", err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	domain := s.from.Address[strings.LastIndexByte(s.from.Address, '@')+1:]

	var b bytes.Buffer
	header := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	header("From", s.from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", now().Format(time.RFC1123Z))
	header("Message-ID", "<"+rand.Text()+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	// Quoted-printable keeps the body 7-bit with short lines, so it passes
	// any relay unchanged whatever the text contains.
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.Body)); err != nil {
		return nil, "", fmt.Errorf("mail: encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, "", fmt.Errorf("mail: encode body: %w", err)
	}
	return b.Bytes(), to.Address, nil
}
