package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// An API key reads "ask_<id>_<secret>": a fixed prefix, a 16-character key
// id (lowercase base32, public: it names the key in lists and audit events)
// and a 43-character secret (32 random bytes, base64url). Only the SHA-256
// of the secret is stored; the secret is high-entropy, so a plain hash is
// enough and lookups stay O(1) by id.
const (
	tokenPrefix = "ask_"
	keyIDLen    = 16
	secretLen   = 43
	tokenLen    = len(tokenPrefix) + keyIDLen + 1 + secretLen
)

var keyIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newKey returns a fresh key id, the full token to hand to the user once,
// and the hash to store.
func newKey() (id, token, hash string) {
	var idb [10]byte
	var secret [32]byte
	mustRand(idb[:])
	mustRand(secret[:])
	id = keyIDEncoding.EncodeToString(idb[:])
	s := base64.RawURLEncoding.EncodeToString(secret[:])
	return id, tokenPrefix + id + "_" + s, hashSecret(s)
}

func mustRand(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never returns an error on Linux
	}
}

// parseToken splits a token into its key id and the hash of its secret; ok
// is false when it does not have the shape of one of our keys.
func parseToken(token string) (id, hash string, ok bool) {
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return "", "", false
	}
	id = token[len(tokenPrefix) : len(tokenPrefix)+keyIDLen]
	if token[len(tokenPrefix)+keyIDLen] != '_' || !validKeyID(id) {
		return "", "", false
	}
	return id, hashSecret(token[len(token)-secretLen:]), true
}

func validKeyID(id string) bool {
	if len(id) != keyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// equalSecret compares two secrets in time independent of their content
// (both are hashed first, so lengths do not leak either).
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// NewAdminToken returns a random operator token.
func NewAdminToken() string {
	var b [32]byte
	mustRand(b[:])
	return "asa_" + base64.RawURLEncoding.EncodeToString(b[:])
}
