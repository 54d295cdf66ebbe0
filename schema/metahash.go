package schema

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// MetadataHashes returns the hashes of the scalar leaves of event.metadata
// at depth 1 and 2 (MetadataHashDepth): the ColMetadataHashes column that a
// metadata filter on such a path compares instead of parsing the JSON.
// Writers fill the column with it; a writer that leaves it out gets the
// same hashes from the column's DEFAULT expression in ClickHouse (see
// sql/0007_events_monthly.sql), slower. The two must agree, which a test
// checks; MetadataLeafHash is the definition.
//
// md must be a JSON object (or empty); a document that fails to parse
// yields the hashes read before the fault, which is never the case for
// validated metadata.
func MetadataHashes(md string) []uint64 {
	if md == "" {
		return []uint64{}
	}
	out := make([]uint64, 0, 16)
	buf := make([]byte, 0, 128)
	// The scanner only reads the bytes, so they may alias the string.
	it, ok := newObjectIter(unsafe.Slice(unsafe.StringData(md), len(md)))
	if !ok {
		return out
	}
	for k1, v1, ok := it.next(); ok; k1, v1, ok = it.next() {
		if len(v1) > 0 && v1[0] == '{' {
			inner, _ := newObjectIter(v1)
			for k2, v2, ok := inner.next(); ok; k2, v2, ok = inner.next() {
				if h, ok := leafHash(&buf, v2, k1, k2); ok {
					out = append(out, h)
				}
			}
			continue
		}
		if h, ok := leafHash(&buf, v1, k1); ok {
			out = append(out, h)
		}
	}
	return out
}

// MetadataKind is the kind of a metadata leaf as hashed: a string, a
// number (compared as float64) or a bool.
type MetadataKind byte

const (
	KindString MetadataKind = 's'
	KindNumber MetadataKind = 'n'
	KindBool   MetadataKind = 'b'
)

// MetadataLeafHash is the hash of a leaf of kind at path (one key per
// level) with value: xxHash64 of the kind, the depth, each key as its
// length in decimal, ':' and its bytes, then the value: a string's bytes
// (decoded), a number's float64 (negative zero as zero) as 8 little-endian
// bytes, a bool as '1' or '0'. ClickHouse computes the same with
// xxHash64(concat(...)).
func MetadataLeafHash(kind MetadataKind, path []string, value string) uint64 {
	var buf []byte
	return hashLeaf(&buf, kind, value, toBytes(path)...)
}

// MetadataNumber is the value part of a number leaf for MetadataLeafHash.
func MetadataNumber(f float64) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(f+0)) // -0 + 0 = +0
	return string(b[:])
}

// MetadataBool is the value part of a bool leaf for MetadataLeafHash.
func MetadataBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func toBytes(path []string) [][]byte {
	out := make([][]byte, len(path))
	for i, p := range path {
		out[i] = []byte(p)
	}
	return out
}

// leafHash hashes the raw value v at path, if it is a scalar that a filter
// can match: not null, an array or an object, nor a number out of float64's
// range (no filter value parses to one) or an integer beyond 64 bits
// (ClickHouse's JSON functions do not read it as a number).
func leafHash(buf *[]byte, v []byte, path ...[]byte) (uint64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	switch c := v[0]; {
	case c == '"':
		end, escaped, err := scanString(v, 0)
		if err != nil || end != len(v) {
			return 0, false
		}
		if !escaped {
			return hashLeafBytes(buf, KindString, v[1:len(v)-1], path...), true
		}
		s, err := unquote(v)
		if err != nil {
			return 0, false
		}
		return hashLeaf(buf, KindString, s, path...), true
	case c == 't' || c == 'f':
		return hashLeaf(buf, KindBool, MetadataBool(c == 't'), path...), true
	case c == '-' || (c >= '0' && c <= '9'):
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || !validJSON(v) || !fitsJSONType(v) {
			return 0, false
		}
		return hashLeaf(buf, KindNumber, MetadataNumber(f), path...), true
	}
	return 0, false
}

// fitsJSONType reports whether ClickHouse's JSON functions read the number
// v as a number: an integer literal must fit Int64 or UInt64 (a longer one
// is neither, for JSONType, and no filter matches it).
func fitsJSONType(v []byte) bool {
	if bytes.ContainsAny(v, ".eE") {
		return true
	}
	if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return true
	}
	_, err := strconv.ParseUint(string(v), 10, 64)
	return err == nil
}

func hashLeaf(buf *[]byte, kind MetadataKind, value string, path ...[]byte) uint64 {
	return hashLeafBytes(buf, kind, unsafe.Slice(unsafe.StringData(value), len(value)), path...)
}

func hashLeafBytes(buf *[]byte, kind MetadataKind, value []byte, path ...[]byte) uint64 {
	b := append((*buf)[:0], byte(kind))
	b = strconv.AppendInt(b, int64(len(path)), 10)
	for _, p := range path {
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, ':')
		b = append(b, p...)
	}
	b = append(b, value...)
	*buf = b
	return xxhash.Sum64(b)
}
