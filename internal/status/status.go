// Package status maps the domain's error kinds to HTTP status codes. It sits below
// both the JSON API and the pages, so that the two answer every kind with the same
// status without either importing the other.
package status

import (
	"net/http"

	"github.com/latchkey/latchkey/internal/auth"
)

// Code is the HTTP status for an error of kind k; unknown kinds are 500.
func Code(k auth.Kind) int {
	switch k {
	case auth.KindNotFound:
		return http.StatusNotFound
	case auth.KindConflict:
		return http.StatusConflict
	case auth.KindInvalidInput:
		return http.StatusBadRequest
	case auth.KindInvalidCredentials, auth.KindUnauthenticated:
		return http.StatusUnauthorized
	case auth.KindRateLimited:
		return http.StatusTooManyRequests
	case auth.KindReauthRequired, auth.KindForbidden:
		return http.StatusForbidden
	case auth.KindOverloaded:
		return http.StatusServiceUnavailable
	case auth.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}
