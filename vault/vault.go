// Package vault keeps secrets out of the database and out of workflow
// history: it seals publisher signing secrets with AES-256-GCM, derives
// authorization codes from the subscription id (so they are never stored, only
// their hash), and hashes API keys and codes for lookup.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Vault holds the service's secret key (SECRET_KEY).
type Vault struct {
	aead    cipher.AEAD
	codeKey []byte
	keyKey  []byte
	macKey  []byte
}

// New builds a vault from a 32-byte key.
func New(key []byte) (*Vault, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(derive(key, "seal"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Vault{aead: aead, codeKey: derive(key, "authorization-code"), keyKey: derive(key, "api-key-hash"), macKey: derive(key, "token-mac")}, nil
}

// Parse decodes a base64 SECRET_KEY.
func Parse(encoded string) (*Vault, error) {
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("SECRET_KEY is not base64: %w", err)
	}
	return New(key)
}

func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Seal encrypts plaintext; the result carries its nonce.
func (v *Vault) Seal(plaintext []byte) ([]byte, error) {
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return v.aead.Seal(nonce, nonce, plaintext, nil), nil
}

// Open decrypts what Seal produced.
func (v *Vault) Open(sealed []byte) ([]byte, error) {
	n := v.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed secret too short")
	}
	return v.aead.Open(nil, sealed[:n], sealed[n:], nil)
}

// AuthorizationCode is the code in a subscription's publisher link. It is
// derived, not stored: the database keeps only Hash(code).
func (v *Vault) AuthorizationCode(subscriptionID string) string {
	m := hmac.New(sha256.New, v.codeKey)
	m.Write([]byte(subscriptionID))
	return "ac_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Token derives a 256-bit URL-safe token from message for one purpose (the
// portal's sign-in links and CSRF tokens): like authorization codes, such a
// token need not be stored, only its hash.
func (v *Vault) Token(purpose, message string) string {
	m := hmac.New(sha256.New, v.macKey)
	m.Write([]byte(purpose + "\x00" + message))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// SignInToken is the secret of a portal sign-in link, derived from its id.
func (v *Vault) SignInToken(linkID string) string { return v.Token("portal-sign-in", linkID) }

// KeyHash is the lookup hash of a partner API key: HMAC-SHA256 under a key
// derived from SECRET_KEY, so a copy of the database alone does not let
// anyone test guesses of (possibly low-entropy, seeded) keys offline.
func (v *Vault) KeyHash(apiKey string) []byte {
	m := hmac.New(sha256.New, v.keyKey)
	m.Write([]byte(apiKey))
	return m.Sum(nil)
}

// GenerateAPIKey returns a new random partner API key (256 bits).
func GenerateAPIKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "fk_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// GenerateSigningSecret returns a new Standard Webhooks secret (whsec_ + base64 of 32 random bytes).
func GenerateSigningSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b), nil
}

// Hash is the bare SHA-256 lookup hash of an authorization code, and the
// legacy hash of API keys stored before KeyHash (looked up as a fallback and
// upgraded in place). Codes need no key: they are HMAC outputs of 256 bits
// derived from SECRET_KEY, so their hash cannot be reversed by guessing.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Fingerprint names a secret without revealing it.
func Fingerprint(secret string) string {
	return hex.EncodeToString(Hash(secret))[:16]
}
