package auth

import (
	"context"
	"fmt"
	"time"
)

// notify sends a mail to the user in the background: a slow or broken mail server must
// neither slow a request down (timing would tell whether an account exists) nor fail
// it. Without SMTP the message is sealed into the outbox, because it may hold a link.
//
// Only a verified address receives mail about its account: anyone may type someone
// else's address at sign-up, and that person must not get the account's reset links,
// recovery mail or notices.
func (s *Service) notify(u *User, subject, format string, args ...any) {
	if !u.EmailVerified || u.Email == "" {
		return
	}
	s.notifyAddress(u.Email, subject, format, args...)
}

// notifyAddress sends a mail to an address whether or not it is verified: the
// verification link itself, and the notice to the address a change replaced.
func (s *Service) notifyAddress(to, subject, format string, args ...any) {
	body := fmt.Sprintf(format, args...) + "\n\n— " + s.cfg.SiteName + "\n"
	s.mailWG.Add(1)
	go func() {
		defer s.mailWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.deliver(ctx, to, subject, body); err != nil {
			s.log.Error("sending mail", "to", to, "subject", subject, "err", err)
		}
	}()
}

func (s *Service) deliver(ctx context.Context, to, subject, body string) error {
	if s.mailer != nil {
		return s.mailer.Send(ctx, to, subject, body)
	}
	enc, err := s.seal([]byte(body), []byte("outbox:"+to))
	if err != nil {
		return err
	}
	if err := s.store.AddOutbox(ctx, &OutboxMessage{To: to, Subject: subject, Body: enc, CreatedAt: s.now()}); err != nil {
		return fmt.Errorf("storing mail in the outbox: %w", err)
	}
	// The body stays out of the log: it may hold a reset link.
	s.log.Info("mail written to the outbox (no smtp-url set); read it with `latchkey admin outbox`", "to", to, "subject", subject)
	return nil
}

// OutboxEntry is a stored mail with its body opened.
type OutboxEntry struct {
	ID        int64
	To        string
	Subject   string
	Body      string
	CreatedAt time.Time
}

// Outbox returns the mail that was not sent through SMTP, oldest first.
func (s *Service) Outbox(ctx context.Context) ([]OutboxEntry, error) {
	msgs, err := s.store.Outbox(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading outbox: %w", err)
	}
	out := make([]OutboxEntry, 0, len(msgs))
	for _, m := range msgs {
		body, err := s.open(m.Body, []byte("outbox:"+m.To))
		if err != nil {
			body = []byte("[cannot open: " + err.Error() + "]")
		}
		out = append(out, OutboxEntry{ID: m.ID, To: m.To, Subject: m.Subject, Body: string(body), CreatedAt: m.CreatedAt})
	}
	return out, nil
}
