package stream

import (
	"context"
	"fmt"
)

// What the stream package shares with other exporters that reach
// user-chosen destinations (exporter/lake): the sealing of credentials under
// the stream key and the address policy. One implementation of each, so
// that a fix to one reaches every exporter.

// Sealer seals the configurations of another kind of destination under the
// stream key. Its sealed values are bound to (org, kind, id): one cannot be
// opened as a stream's, nor moved to another destination.
type Sealer struct {
	s    *sealer
	kind string
}

// NewSealer returns a sealer for destinations of kind (e.g. "lake") under
// key (KeyBytes bytes, the stream key).
func NewSealer(key []byte, kind string) (*Sealer, error) {
	if kind == "" {
		return nil, fmt.Errorf("stream: a sealer needs a kind")
	}
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	return &Sealer{s: s, kind: kind}, nil
}

// Stream ids are UUIDs, never "kind/…": the additional data cannot collide.
func (s *Sealer) id(id string) string { return s.kind + "/" + id }

// Seal encrypts plain for destination id of org.
func (s *Sealer) Seal(org, id string, plain []byte) string { return s.s.seal(org, s.id(id), plain) }

// Open decrypts a value sealed for destination id of org; the error says
// whether the key changed or the value is corrupted or moved.
func (s *Sealer) Open(org, id, sealed string) ([]byte, error) { return s.s.open(org, s.id(id), sealed) }

// CheckHost applies the address policy to a destination host about to be
// used: every address it resolves to must be permitted (public, or private
// with allowPrivate), and plain (unencrypted) traffic goes only to private
// addresses. The error says why, in words fit for the API.
func CheckHost(ctx context.Context, r Resolver, host string, allowPrivate, plain bool) error {
	addrs, err := resolve(ctx, r, host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("host %q does not resolve", host)
	}
	for _, a := range addrs {
		if err := permit(a, 0, nil, allowPrivate, plain); err != nil {
			return err
		}
	}
	return nil
}
