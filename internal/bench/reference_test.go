package bench

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/sqlite"
)

// TestUnbatchedSQLiteAdvance: the reference settles races exactly as the store's
// AdvanceTOTPStep does: only a later step wins.
func TestUnbatchedSQLiteAdvance(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "bench.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u := &auth.User{Username: "stepper", Email: "stepper@example.com", PasswordHash: "x", CreatedAt: time.Unix(1, 0)}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	cred := &auth.TOTPCredential{UserID: u.ID, Secret: auth.EncryptedSecret{KeyID: "k", Ciphertext: []byte("c")},
		LastStep: 10, CreatedAt: time.Unix(1, 0)}
	if err := s.EnableTOTP(ctx, cred, nil, 0); err != nil {
		t.Fatal(err)
	}
	raw, err := openUnbatchedSQLite(ctx, path, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.close()
	for _, tt := range []struct {
		step int64
		want bool
	}{{10, false}, {9, false}, {11, true}, {11, false}, {12, true}} {
		if won, err := raw.advance(ctx, u.ID, tt.step); err != nil || won != tt.want {
			t.Errorf("advance(%d) = %v, %v, want %v", tt.step, won, err, tt.want)
		}
	}
}
