package status

import (
	"net/http"
	"testing"

	"github.com/latchkey/latchkey/internal/auth"
)

func TestCode(t *testing.T) {
	tests := []struct {
		kind auth.Kind
		want int
	}{
		{auth.KindNotFound, http.StatusNotFound},
		{auth.KindConflict, http.StatusConflict},
		{auth.KindInvalidInput, http.StatusBadRequest},
		{auth.KindInvalidCredentials, http.StatusUnauthorized},
		{auth.KindUnauthenticated, http.StatusUnauthorized},
		{auth.KindRateLimited, http.StatusTooManyRequests},
		{auth.KindReauthRequired, http.StatusForbidden},
		{auth.KindForbidden, http.StatusForbidden},
		{auth.KindOverloaded, http.StatusServiceUnavailable},
		{auth.KindTooLarge, http.StatusRequestEntityTooLarge},
		{auth.KindInternal, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got := Code(tt.kind); got != tt.want {
			t.Errorf("Code(%v) = %d, want %d", tt.kind, got, tt.want)
		}
	}
}
