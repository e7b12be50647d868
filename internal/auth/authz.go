package auth

import (
	"context"
	"time"
)

// Now is the Service's clock, for handlers that keep time-based state of their own.
func (s *Service) Now() time.Time { return s.clock() }

// ForwardAuthDenied writes the security-log line of a signed-in user refused by a
// forward-auth rule (a denied host, or one no rule names). Only the caller knows how
// often to call it: the endpoints answer every request an application's page makes,
// so they log one line per user and host for a while rather than one per request.
func (s *Service) ForwardAuthDenied(ctx context.Context, c Client, p *Principal, host, why string) {
	if p == nil || p.User == nil {
		return
	}
	s.event(ctx, p.User.ID, c, "forward_auth", "denied", truncate(why+" "+host, 300))
}
