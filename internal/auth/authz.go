package auth

import (
	"context"
)

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
