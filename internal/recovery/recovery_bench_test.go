package recovery_test

import (
	"testing"

	"github.com/latchkey/latchkey/internal/keys"
	"github.com/latchkey/latchkey/internal/recovery"
)

// BenchmarkCheck is the work of checking a typed recovery code before the one indexed
// lookup, as auth.Service does it: normalise what was typed, then MAC it, bound to the
// account, under the keyring's recovery-code subkey.
func BenchmarkCheck(b *testing.B) {
	ring, err := keys.New(make([]byte, keys.Size))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		canon, ok := recovery.Normalize("7QKM-2X9B abcd-EFGH")
		if !ok {
			b.Fatal("Normalize refused a valid code")
		}
		_ = ring.MAC("recovery-code", []byte("42:"+canon))
	}
}
