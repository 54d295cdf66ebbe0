package query

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// A cursor is the position of the last event of a page, signed:
//
//	base64url( version | timestamp ms (8) | id (16) | sort value | mac (16) )
//
// where mac is HMAC-SHA256 (truncated) under the server's cursor key of the
// version, the binding and the position. The binding, a hash of the org,
// the normalized filter and the sort, is not carried but recomputed from
// the request, so a cursor presented with another org, filter or sort
// fails the check exactly like a forged one.
const (
	cursorVersion = 1
	macBytes      = 16
	posBytes      = 1 + 8 + 16
)

var errInvalidCursor = schema.Invalid("invalid_cursor",
	"the cursor is not valid for this request: cursors work only with the org, filters and sort of the request that returned them",
	schema.FieldError{Index: -1, Field: readsql.ParamCursor, Code: "invalid_cursor", Message: "not a cursor issued for this org, filter and sort"})

// cursors issues and checks cursors under one key.
type cursors struct {
	key []byte
}

func (c cursors) mac(bind [sha256.Size]byte, body []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(bind[:])
	m.Write(body)
	return m.Sum(nil)[:macBytes]
}

// encode returns the cursor after pos.
func (c cursors) encode(bind [sha256.Size]byte, pos schema.Position) string {
	body := make([]byte, 0, posBytes+len(pos.Value)+macBytes)
	body = append(body, cursorVersion)
	body = binary.BigEndian.AppendUint64(body, uint64(pos.Timestamp.UnixMilli()))
	body = append(body, pos.ID[:]...)
	body = append(body, pos.Value...)
	body = append(body, c.mac(bind, body)...)
	return base64.RawURLEncoding.EncodeToString(body)
}

// decode checks a cursor against the binding of the request presenting it.
func (c cursors) decode(bind [sha256.Size]byte, s string) (schema.Position, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < posBytes+macBytes || raw[0] != cursorVersion {
		return schema.Position{}, errInvalidCursor
	}
	body, sum := raw[:len(raw)-macBytes], raw[len(raw)-macBytes:]
	if !hmac.Equal(sum, c.mac(bind, body)) {
		return schema.Position{}, errInvalidCursor
	}
	var id uuid.UUID
	copy(id[:], body[9:posBytes])
	return schema.Position{
		Timestamp: time.UnixMilli(int64(binary.BigEndian.Uint64(body[1:9]))).UTC(),
		ID:        id,
		Value:     string(body[posBytes:]),
	}, nil
}

// binding hashes what a cursor is valid for: org, the normalized filter f
// and the sort s. Every part is length-prefixed, so that no two different
// requests share an encoding.
func binding(org string, f schema.Filter, s schema.Sort) [sha256.Size]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	put := func(parts ...string) {
		for _, p := range parts {
			h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
			h.Write([]byte(p))
		}
	}
	list := func(name string, vs []string) {
		put(name, strconv.Itoa(len(vs)))
		put(vs...)
	}
	put("auditstore cursor", org)
	for _, field := range schema.MatchFields {
		list(string(field), f.Match[field])
	}
	list(readsql.ParamEmailPrefix, f.EmailPrefixes)
	list(readsql.ParamEmailContains, f.EmailContains)
	ips := make([]string, 0, len(f.IPs)+len(f.IPRanges))
	for _, a := range f.IPs {
		ips = append(ips, a.String())
	}
	for _, p := range f.IPRanges {
		ips = append(ips, p.String())
	}
	list(string(schema.FieldIPAddress), ips)
	put(readsql.ParamFrom, timeKey(f.From), readsql.ParamTo, timeKey(f.To))
	put("metadata", strconv.Itoa(len(f.Metadata)))
	for _, m := range f.Metadata {
		list(m.Key(), m.Values)
	}
	list("excludeTypes", f.ExcludeTypes)
	for _, field := range schema.MatchFields {
		if vs, ok := f.Scope[field]; ok {
			list("scope."+string(field), vs)
		}
	}
	put(readsql.ParamSort, string(s.By), strconv.FormatBool(s.Desc))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func timeKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}
