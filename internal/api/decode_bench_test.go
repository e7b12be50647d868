package api

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkDecode measures decoding the body of a sign-in, the hottest request that
// carries one.
func BenchmarkDecode(b *testing.B) {
	const body = `{"login":"alice@example.com","password":"correct horse battery"}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(body))
		var req LoginRequest
		if err := decode(r, &req); err != nil {
			b.Fatal(err)
		}
	}
}
