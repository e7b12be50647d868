package auth

import "context"

// CountFrom exposes countFrom to the external tests, which run it on a real store.
func (s *Service) CountFrom(ctx context.Context, key AttemptKey, p LimitPolicy, hint *AttemptState) (AttemptState, error) {
	return s.countFrom(ctx, key, p, nil, hint)
}
