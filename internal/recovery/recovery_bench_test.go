package recovery_test

import (
	"testing"

	"github.com/latchkey/latchkey/internal/recovery"
)

// BenchmarkCheck is the work of checking a typed recovery code before the one indexed
// lookup: normalise what was typed, then MAC it under the key.
func BenchmarkCheck(b *testing.B) {
	key := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		canon, ok := recovery.Normalize("7QKM-2X9B abcd-EFGH")
		if !ok {
			b.Fatal("Normalize refused a valid code")
		}
		_ = recovery.Hash(key, canon)
	}
}
