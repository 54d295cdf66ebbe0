package stream

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// ParseKey decodes a stream key given as base64 (standard or URL alphabet,
// padded or not), e.g. the output of `openssl rand -base64 32`, and checks
// that it is KeyBytes long.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeyBytes {
				return nil, fmt.Errorf("stream key: %d bytes after base64 decoding, want %d", len(k), KeyBytes)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("stream key: not base64 (want %d random bytes in base64, e.g. from `openssl rand -base64 32`)", KeyBytes)
}

// NewKey returns a fresh random stream key in base64, for a server that
// was given none (to be stored where the server finds it again: losing it
// makes every stream's credentials unreadable).
func NewKey() string {
	k := make([]byte, KeyBytes)
	_, _ = rand.Read(k) // crypto/rand never fails
	return base64.StdEncoding.EncodeToString(k)
}
