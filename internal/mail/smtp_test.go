package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/mail/smtptest"
)

// startServer runs the shared test SMTP server.
func startServer(t *testing.T, opts smtptest.Options) (string, *smtptest.Server, *tls.Config) {
	t.Helper()
	srv := smtptest.Start(t, opts)
	return srv.Addr, srv, srv.ClientTLS
}

func newSMTP(t *testing.T, rawURL string, clientTLS *tls.Config) *SMTP {
	t.Helper()
	s, err := NewSMTP(rawURL, "Latchkey <noreply@example.com>", nil)
	if err != nil {
		t.Fatalf("NewSMTP(%q) = %v", rawURL, err)
	}
	s.TLSConfig = clientTLS
	s.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	return s
}

func parseMessage(t *testing.T, data string) *mail.Message {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	return m
}

func TestSend(t *testing.T) {
	tests := []struct {
		name    string
		opts    smtptest.Options
		url     func(addr string) string
		wantTLS bool
		wantErr string
	}{
		{"plain", smtptest.Options{}, func(a string) string { return "smtp://" + a }, false, ""},
		{"auth plain right", smtptest.Options{User: "u", Pass: "p@ss:w/rd"},
			func(a string) string { return "smtp://u:p%40ss%3Aw%2Frd@" + a }, false, ""},
		{"auth plain wrong", smtptest.Options{User: "u", Pass: "right"},
			func(a string) string { return "smtp://u:wrong@" + a }, false, "authenticate"},
		{"starttls when offered", smtptest.Options{StartTLS: true}, func(a string) string { return "smtp://" + a }, true, ""},
		{"starttls with auth", smtptest.Options{User: "u", Pass: "p", StartTLS: true},
			func(a string) string { return "smtp://u:p@" + a }, true, ""},
		{"smtps implicit tls", smtptest.Options{Implicit: true}, func(a string) string { return "smtps://" + a }, true, ""},
		{"smtps with auth", smtptest.Options{User: "u", Pass: "p", Implicit: true},
			func(a string) string { return "smtps://u:p@" + a }, true, ""},
		{"smtps to a plain server", smtptest.Options{}, func(a string) string { return "smtps://" + a }, false, "send mail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, be, clientTLS := startServer(t, tt.opts)
			s := newSMTP(t, tt.url(addr), clientTLS)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			err := s.Send(ctx, Message{To: "alice@example.org", Subject: "Hello", Body: "Line one\nLine two\n"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Send() = %v, want an error mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "wrong") {
					t.Errorf("Send() = %q, which contains the password", err)
				}
				if got := len(be.Messages()); got != 0 {
					t.Errorf("server received %d messages, want 0", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send() = %v, want nil", err)
			}
			msgs := be.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server received %d messages, want 1", len(msgs))
			}
			got := msgs[0]
			if got.From != "noreply@example.com" || got.To != "alice@example.org" {
				t.Errorf("envelope = %q -> %q, want noreply@example.com -> alice@example.org", got.From, got.To)
			}
			if got.TLS != tt.wantTLS {
				t.Errorf("delivered over TLS = %v, want %v", got.TLS, tt.wantTLS)
			}
			if tt.opts.User != "" && got.User != tt.opts.User {
				t.Errorf("authenticated as %q, want %q", got.User, tt.opts.User)
			}
			m := parseMessage(t, got.Data)
			body, _ := io.ReadAll(m.Body)
			if !strings.Contains(string(body), "Line one\r\nLine two") {
				t.Errorf("body = %q, want the two lines with CRLF", body)
			}
		})
	}
}

func TestSendHeaders(t *testing.T) {
	addr, be, _ := startServer(t, smtptest.Options{})
	s := newSMTP(t, "smtp://"+addr, nil)
	msg := Message{
		To:      "Zoë <zoe@example.org>",
		Subject: "Votre code de récupération — ✓",
		Body:    "Bonjour Zoë,\n" + strings.Repeat("long line ", 20) + "\n= sign\n",
	}
	if err := s.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send() = %v", err)
	}
	msgs := be.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server received %d messages, want 1", len(msgs))
	}
	raw := msgs[0].Data
	for _, line := range strings.Split(raw, "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d bytes, want at most 78: %q", len(line), line)
		}
		for _, r := range line {
			if r > 127 {
				t.Errorf("non-ASCII in the raw message, want it all encoded: %q", line)
				break
			}
		}
	}
	m := parseMessage(t, raw)
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subject != msg.Subject {
		t.Errorf("Subject decodes to %q, %v, want %q", subject, err, msg.Subject)
	}
	to, err := m.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Zoë" || to[0].Address != "zoe@example.org" {
		t.Errorf("To = %v, %v, want Zoë <zoe@example.org>", to, err)
	}
	want := map[string]string{
		"From":                      `"Latchkey" <noreply@example.com>`,
		"Date":                      "Fri, 02 Jan 2026 03:04:05 +0000",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
	}
	for name, value := range want {
		if got := m.Header.Get(name); got != value {
			t.Errorf("header %s = %q, want %q", name, got, value)
		}
	}
	if id := m.Header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q, want <…@example.com>", id)
	}
}

func TestSendRefusesHeaderInjection(t *testing.T) {
	addr, be, _ := startServer(t, smtptest.Options{})
	s := newSMTP(t, "smtp://"+addr, nil)
	tests := []struct {
		name string
		msg  Message
		want string
	}{
		{"CRLF in To", Message{To: "a@example.org\r\nBcc: evil@example.net", Subject: "s"}, "recipient"},
		{"LF in To", Message{To: "a@example.org\nBcc: evil@example.net", Subject: "s"}, "recipient"},
		{"CR in Subject", Message{To: "a@example.org", Subject: "hi\rBcc: evil@example.net"}, "subject"},
		{"LF in Subject", Message{To: "a@example.org", Subject: "hi\nBcc: evil@example.net"}, "subject"},
		{"two recipients", Message{To: "a@example.org, b@example.org", Subject: "s"}, "recipient"},
		{"not an address", Message{To: "nobody", Subject: "s"}, "recipient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Send(t.Context(), tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Send(%q) = %v, want an error about the %s", tt.msg, err, tt.want)
			}
		})
	}
	if got := len(be.Messages()); got != 0 {
		t.Errorf("server received %d messages, want 0", got)
	}
}

func TestSendServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := newSMTP(t, "smtp://u:secretpw@"+addr, nil)
	err = s.Send(t.Context(), Message{To: "a@example.org", Subject: "s", Body: "b"})
	if err == nil {
		t.Fatalf("Send() to a closed port = nil, want an error")
	}
	if strings.Contains(err.Error(), "secretpw") {
		t.Errorf("Send() = %q, which contains the password", err)
	}
}

func TestSendHonoursContext(t *testing.T) {
	// A server that accepts and never says a word.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(t.Context(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSMTP(t, "smtp://"+ln.Addr().String(), nil)
			ctx, cancel := tt.ctx()
			defer cancel()
			err := s.Send(ctx, Message{To: "a@example.org", Subject: "s", Body: "b"})
			if !errors.Is(err, tt.want) {
				t.Errorf("Send() to a silent server = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewSMTP(t *testing.T) {
	tests := []struct {
		name, url, from string
		addr            string
		implicit        bool
		requireTLS      bool
		wantErr         string
	}{
		{"smtp default port", "smtp://mail.example.com", "a@example.com", "mail.example.com:587", false, false, ""},
		{"smtps default port", "smtps://mail.example.com", "a@example.com", "mail.example.com:465", true, false, ""},
		{"explicit port", "smtp://mail.example.com:2525", "a@example.com", "mail.example.com:2525", false, false, ""},
		{"ipv6", "smtp://[::1]:25", "a@example.com", "[::1]:25", false, false, ""},
		{"credentials to remote need tls", "smtp://u:p@mail.example.com", "a@example.com", "mail.example.com:587", false, true, ""},
		{"credentials to loopback ip", "smtp://u:p@127.0.0.1:25", "a@example.com", "127.0.0.1:25", false, false, ""},
		{"credentials to localhost", "smtp://u:p@localhost:25", "a@example.com", "localhost:25", false, false, ""},
		{"credentials to ipv6 loopback", "smtp://u:p@[::1]:25", "a@example.com", "[::1]:25", false, false, ""},
		{"credentials over smtps", "smtps://u:p@mail.example.com", "a@example.com", "mail.example.com:465", true, false, ""},
		{"http scheme", "http://mail.example.com", "a@example.com", "", false, false, "scheme"},
		{"no scheme", "mail.example.com:25", "a@example.com", "", false, false, "scheme"},
		{"no host", "smtp://", "a@example.com", "", false, false, "no host"},
		{"bad url", "smtp://u:p@host:bad port", "a@example.com", "", false, false, "not a valid URL"},
		{"path", "smtp://mail.example.com/x", "a@example.com", "", false, false, "only scheme"},
		{"bad from", "smtp://mail.example.com", "not an address", "", false, false, "from"},
		{"from with newline", "smtp://mail.example.com", "a@example.com\r\nBcc: b@example.com", "", false, false, "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSMTP(tt.url, tt.from, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewSMTP(%q, %q) = %v, want an error mentioning %q", tt.url, tt.from, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "u:p@") {
					t.Errorf("NewSMTP(%q) = %q, which quotes the credentials", tt.url, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewSMTP(%q, %q) = %v, want nil", tt.url, tt.from, err)
			}
			if s.addr != tt.addr || s.implicit != tt.implicit || s.requireTLS() != tt.requireTLS {
				t.Errorf("NewSMTP(%q) = addr %q, implicit %v, requireTLS %v, want %q, %v, %v",
					tt.url, s.addr, s.implicit, s.requireTLS(), tt.addr, tt.implicit, tt.requireTLS)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"smtp://user:hunter2@mail.example.com:587", "smtp://user:xxxxx@mail.example.com:587"},
		{"smtps://user@mail.example.com", "smtps://user@mail.example.com"},
		{"smtp://mail.example.com", "smtp://mail.example.com"},
		{"postgres://app:hunter2@db/latchkey?sslmode=require", "postgres://app:xxxxx@db/latchkey?sslmode=require"},
		{"", ""},
		{"smtp://u:hunter2@host:bad port", "[unparsable URL]"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	s, err := NewSMTP("smtp://user:hunter2@mail.example.com", "a@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.String(); strings.Contains(got, "hunter2") {
		t.Errorf("String() = %q, which contains the password", got)
	}
}
