package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/internal/auth"
)

// signingKey is a parsed ID-token signing key (op.SigningKey).
type signingKey struct {
	id   string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.priv }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is the half of a signing key that JWKS publishes (op.Key).
type publicKey struct{ k *signingKey }

func (k publicKey) ID() string                         { return k.k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k.priv.Public() }

// keyAAD binds a sealed private key to its id, so a ciphertext moved to another row
// does not open.
func keyAAD(id string) []byte { return []byte("oidc-key:" + id) }

// RotateKey makes a new key of alg (RS256 or ES256) the signing key from now on. The
// key it replaces stays published until oidc-id-token-ttl after its retirement, the
// last moment an ID token it signed can still be valid. It returns the new key's id.
func (p *Provider) RotateKey(ctx context.Context, alg string) (string, error) {
	return addKey(ctx, p.store, p.keys, alg, p.now())
}

// sealer is the part of the keyring that seals private keys.
type sealer interface {
	Seal(plaintext, aad []byte) (string, []byte, error)
}

// addKey generates, seals and stores a signing key; the CLI calls it without a
// running provider.
func addKey(ctx context.Context, st auth.OIDCStore, ring sealer, alg string, now time.Time) (string, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "RS256", "":
		alg = "RS256"
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return "", fmt.Errorf("unknown key algorithm %q (RS256 or ES256)", alg)
	}
	if err != nil {
		return "", fmt.Errorf("generating a signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	id := randomID(12)
	kid, sealed, err := ring.Seal(der, keyAAD(id))
	if err != nil {
		return "", err
	}
	k := &auth.OIDCKey{ID: id, Alg: alg, Private: auth.EncryptedSecret{KeyID: kid, Ciphertext: sealed}, CreatedAt: now}
	if err := st.AddOIDCKey(ctx, k); err != nil {
		return "", err
	}
	return id, nil
}

// ensureKey creates the first signing key (RS256) when there is none.
func (p *Provider) ensureKey(ctx context.Context) error {
	ks, err := p.store.OIDCKeys(ctx, p.now())
	if err != nil {
		return fmt.Errorf("oidc: reading signing keys: %w", err)
	}
	for _, k := range ks {
		if k.RetiredAt.IsZero() {
			return nil
		}
	}
	if _, err := p.RotateKey(ctx, "RS256"); err != nil {
		return fmt.Errorf("oidc: creating the first signing key: %w", err)
	}
	return nil
}

// publishedKeys returns the signing key and every retired key whose ID tokens may
// still be valid, newest first.
func (p *Provider) publishedKeys(ctx context.Context) ([]*signingKey, error) {
	ks, err := p.store.OIDCKeys(ctx, p.now().Add(-p.opts.IDTokenTTL))
	if err != nil {
		return nil, err
	}
	out := make([]*signingKey, 0, len(ks))
	for _, k := range ks {
		sk, err := p.openKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, sk)
	}
	return out, nil
}

// signingKey returns the current signing key.
func (p *Provider) signingKey(ctx context.Context) (*signingKey, error) {
	ks, err := p.store.OIDCKeys(ctx, p.now())
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		if k.RetiredAt.IsZero() {
			return p.openKey(k)
		}
	}
	return nil, errors.New("oidc: no signing key")
}

// openKey unseals and parses a stored key, once per key.
func (p *Provider) openKey(k auth.OIDCKey) (*signingKey, error) {
	p.mu.Lock()
	sk, ok := p.signers[k.ID]
	p.mu.Unlock()
	if ok {
		return sk, nil
	}
	der, err := p.keys.Open(k.Private.KeyID, k.Private.Ciphertext, keyAAD(k.ID))
	if err != nil {
		return nil, fmt.Errorf("oidc: opening signing key %s: %w", k.ID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("oidc: parsing signing key %s: %w", k.ID, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("oidc: signing key %s is a %T", k.ID, parsed)
	}
	sk = &signingKey{id: k.ID, alg: jose.SignatureAlgorithm(k.Alg), priv: signer}
	p.mu.Lock()
	p.signers[k.ID] = sk
	p.mu.Unlock()
	return sk, nil
}
