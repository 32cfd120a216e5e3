package vault

import (
	"bytes"
	"strings"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestKeyHashIsKeyedBySecretKey(t *testing.T) {
	a, err := New(bytes.Repeat([]byte("a"), 32))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(bytes.Repeat([]byte("b"), 32))
	again, _ := New(bytes.Repeat([]byte("a"), 32))
	key := "demo_fabrikam_admin_alice_key"
	if !bytes.Equal(a.KeyHash(key), again.KeyHash(key)) {
		t.Error("the same SECRET_KEY must give the same hash (lookups across restarts)")
	}
	if bytes.Equal(a.KeyHash(key), b.KeyHash(key)) {
		t.Error("another SECRET_KEY must give another hash")
	}
	if bytes.Equal(a.KeyHash(key), Hash(key)) {
		t.Error("the keyed hash must differ from the legacy bare SHA-256")
	}
	if bytes.Equal(a.KeyHash(key), a.KeyHash(key+"x")) {
		t.Error("different keys, same hash")
	}
}

func TestGeneratedCredentials(t *testing.T) {
	k1, err := GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := GenerateAPIKey()
	if k1 == k2 || !strings.HasPrefix(k1, "fk_") || len(k1) < 40 {
		t.Errorf("API keys %q, %q: want distinct fk_ keys of 256 bits", k1, k2)
	}
	s, err := GenerateSigningSecret()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := standardwebhooks.NewWebhook(s); err != nil || !strings.HasPrefix(s, "whsec_") {
		t.Errorf("signing secret %q is not a Standard Webhooks secret: %v", s, err)
	}
}
