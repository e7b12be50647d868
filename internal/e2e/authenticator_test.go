package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// softKey is a WebAuthn authenticator written for the tests: a test peer, like the
// SSH keys recovery tests make with ssh-keygen. It holds one ES256 credential and
// builds what a browser would send — clientDataJSON, authenticator data, a "none"
// attestation, signed assertions — as the JSON PublicKeyCredential.toJSON() gives.
type softKey struct {
	priv   *ecdsa.PrivateKey
	id     []byte
	handle []byte // the user handle it stored at registration (a passkey returns it)
	count  uint32 // the signature counter; each assertion adds one unless Zero
	zero   bool   // a synced passkey: always 0
	origin string
	rpID   string
}

var b64 = base64.RawURLEncoding

func newSoftKey(t *testing.T) *softKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return &softKey{priv: priv, id: id, origin: "http://localhost:8080", rpID: "localhost"}
}

// Authenticator data flags (WebAuthn L3 §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func (k *softKey) authData(flags byte, count uint32, attested []byte) []byte {
	h := sha256.Sum256([]byte(k.rpID))
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, count)
	return append(out, attested...)
}

func (k *softKey) clientData(t *testing.T, typ, challenge string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := webauthncbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// create answers registration options (the publicKey object) as a passkey with user
// verification: resident, and credProps says so.
func (k *softKey) create(t *testing.T, publicKey map[string]any) map[string]any {
	t.Helper()
	user, _ := publicKey["user"].(map[string]any)
	handle, err := b64.DecodeString(user["id"].(string))
	if err != nil {
		t.Fatalf("user.id: %v", err)
	}
	if k.handle == nil { // a second registration of the same credential keeps the first
		k.handle = handle
	}
	// The uncompressed point is 0x04 || X || Y, 32 bytes each for P-256.
	point, err := k.priv.PublicKey.Bytes()
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	x, y := point[1:33], point[33:65]
	cose := mustCBOR(t, map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	attested := make([]byte, 16) // AAGUID: zero
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.id)))
	attested = append(attested, k.id...)
	attested = append(attested, cose...)
	authData := k.authData(flagUP|flagUV|flagAT, 0, attested)
	att := mustCBOR(t, map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	cd := k.clientData(t, "webauthn.create", publicKey["challenge"].(string))
	return map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(att),
			"transports": []string{"internal"}},
		"clientExtensionResults": map[string]any{"credProps": map[string]any{"rk": true}},
	}
}

// get signs the challenge of request options (the publicKey object) with user
// verification, moving the counter on.
func (k *softKey) get(t *testing.T, publicKey map[string]any) map[string]any {
	t.Helper()
	if !k.zero {
		k.count++
	}
	return k.assert(t, publicKey["challenge"].(string), k.count, flagUP|flagUV)
}

// assert builds an assertion over challenge with an explicit counter and flags.
func (k *softKey) assert(t *testing.T, challenge string, count uint32, flags byte) map[string]any {
	t.Helper()
	authData := k.authData(flags, count, nil)
	cd := k.clientData(t, "webauthn.get", challenge)
	h := sha256.Sum256(cd)
	// ES256 signs SHA-256(authenticatorData || SHA-256(clientDataJSON)).
	digest := sha256.Sum256(append(append([]byte{}, authData...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(authData),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(k.handle)},
		"clientExtensionResults": map[string]any{},
	}
}

// forged is an assertion of this key with a signature that does not verify.
func (k *softKey) forged(t *testing.T, publicKey map[string]any) map[string]any {
	t.Helper()
	a := k.assert(t, publicKey["challenge"].(string), k.count+1, flagUP|flagUV)
	resp := a["response"].(map[string]any)
	sig, _ := b64.DecodeString(resp["signature"].(string))
	sig[len(sig)-1] ^= 0xff
	resp["signature"] = b64.EncodeToString(sig)
	return a
}
