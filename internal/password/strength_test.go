package password

import (
	"strings"
	"testing"
)

func TestWeakness(t *testing.T) {
	ctx := []string{"alice", "alice@example.com", "Latchkey"}
	tests := []struct {
		pw      string
		refused bool
		says    string
	}{
		{"pw-alice-correct-horse", false, ""},
		{"correct horse battery staple", false, ""},
		{"password", true, "most common passwords"},
		{"12345678", true, "common passwords"},
		{"alice", true, "username"},
		{"alicealice", true, ""},
		{"latchkey1", true, ""},
		{"qwertyuiop", true, ""},
		{"aaaaaaaaaaaa", true, "repetition"},
	}
	for _, tt := range tests {
		got := Weakness(tt.pw, ctx...)
		if (got != "") != tt.refused || !strings.Contains(got, tt.says) {
			t.Errorf("Weakness(%q) = %q, want refused %v saying %q", tt.pw, got, tt.refused, tt.says)
		}
	}
}
