package stream

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// sealer encrypts stream configurations (credentials included) with
// AES-256-GCM under the server's stream key. A sealed value is
// "v1." + base64(key id (4 bytes) | nonce (12) | ciphertext and tag); the
// key id (the start of the key's SHA-256) tells a wrong key from a
// corrupted value. The additional data binds a sealed value to its stream
// (org and id), so that one stream's credentials cannot be moved to another.
type sealer struct {
	aead  cipher.AEAD
	keyID [4]byte
}

const sealPrefix = "v1."

// errOtherKey says a configuration was sealed under another stream key.
var errOtherKey = errors.New("the stream's configuration was sealed with another stream key: the server's key changed; re-enter the stream's credentials with PATCH")

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeyBytes {
		return nil, fmt.Errorf("stream: the stream key must be %d bytes, got %d", KeyBytes, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	s := &sealer{aead: aead}
	sum := sha256.Sum256(key)
	copy(s.keyID[:], sum[:])
	return s, nil
}

func sealAD(org, id string) []byte { return []byte("auditstore-stream\x00" + org + "\x00" + id) }

// seal encrypts plain for stream id of org.
func (s *sealer) seal(org, id string, plain []byte) string {
	out := make([]byte, 0, len(s.keyID)+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out = append(out, s.keyID[:]...)
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand never fails
	out = append(out, nonce...)
	out = s.aead.Seal(out, nonce, plain, sealAD(org, id))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(out)
}

// open decrypts a value sealed for stream id of org.
func (s *sealer) open(org, id, sealed string) ([]byte, error) {
	if len(sealed) < len(sealPrefix) || sealed[:len(sealPrefix)] != sealPrefix {
		return nil, errors.New("the stream's sealed configuration has an unknown format")
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed[len(sealPrefix):])
	n := len(s.keyID) + s.aead.NonceSize()
	if err != nil || len(raw) < n+s.aead.Overhead() {
		return nil, errors.New("the stream's sealed configuration is corrupted")
	}
	if [4]byte(raw[:4]) != s.keyID {
		return nil, errOtherKey
	}
	plain, err := s.aead.Open(nil, raw[4:n], raw[n:], sealAD(org, id))
	if err != nil {
		return nil, errors.New("the stream's sealed configuration does not authenticate (corrupted or moved from another stream)")
	}
	return plain, nil
}
