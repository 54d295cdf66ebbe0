package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// This file holds a small, allocation-free JSON scanner used by DecodeEvent
// instead of encoding/json's reflection: it splits an object into raw
// name/value pairs (names matched exactly, not case-insensitively) and skips
// nested values iteratively (no recursion, so any nesting depth is safe).
// Values are validated by whoever consumes them: strings by scanString
// (control characters, escapes, UTF-16 surrogates), metadata by a walk plus
// validJSON (jsonvalid.go). Values of unknown members are never
// validated: the event is rejected anyway.

// scanError is a syntax problem found by the scanner. code is "json", or
// "utf8" for an escape that does not encode valid Unicode.
type scanError struct {
	code string
	msg  string
}

func syntaxErr(format string, args ...any) *scanError {
	return &scanError{code: "json", msg: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// hex4 decodes the 4 hex digits at data[i:i+4].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// scanString validates the JSON string starting at data[i] == '"' and returns
// the index just past its closing quote, and whether it contains escapes.
func scanString(data []byte, i int) (end int, escaped bool, err *scanError) {
	j := i + 1
	for j < len(data) {
		c := data[j]
		switch {
		case c == '"':
			return j + 1, escaped, nil
		case c < 0x20:
			return 0, false, syntaxErr("control character 0x%02x in string (must be escaped)", c)
		case c != '\\':
			j++
			continue
		}
		escaped = true
		if j+1 >= len(data) {
			break
		}
		switch data[j+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j += 2
		case 'u':
			r, ok := hex4(data, j+2)
			if !ok {
				return 0, false, syntaxErr(`invalid \u escape in string`)
			}
			j += 6
			switch {
			case 0xDC00 <= r && r <= 0xDFFF:
				return 0, false, &scanError{code: "utf8", msg: `string has an unpaired UTF-16 surrogate escape`}
			case 0xD800 <= r && r <= 0xDBFF:
				if j+1 >= len(data) || data[j] != '\\' || data[j+1] != 'u' {
					return 0, false, &scanError{code: "utf8", msg: `string has an unpaired UTF-16 surrogate escape`}
				}
				lo, ok := hex4(data, j+2)
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return 0, false, &scanError{code: "utf8", msg: `string has an unpaired UTF-16 surrogate escape`}
				}
				j += 6
			}
		default:
			return 0, false, syntaxErr("invalid escape %q in string", data[j:j+2])
		}
	}
	return 0, false, syntaxErr("unterminated string")
}

// skipString returns the index just past the closing quote of the string
// starting at data[i] == '"', without validating its content: the closing
// quote is the first one preceded by an even number of backslashes.
func skipString(data []byte, i int) (int, *scanError) {
	for j := i + 1; j < len(data); {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			break
		}
		q := j + k
		n := 0
		for p := q - 1; p > i && data[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
	return 0, syntaxErr("unterminated string")
}

// skipValue returns the index just past the JSON value starting at data[i]
// (which must not be whitespace). It only finds the value's end: strings
// and containers are validated by whoever consumes the value, so that a
// problem is reported at the member that holds it.
func skipValue(data []byte, i int) (int, *scanError) {
	if i >= len(data) {
		return 0, syntaxErr("unexpected end of input, want a value")
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); {
			switch data[j] {
			case '"':
				end, err := skipString(data, j)
				if err != nil {
					return 0, err
				}
				j = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
			j++
		}
		return 0, syntaxErr("unexpected end of input inside %c", data[i])
	case '}', ']', ',', ':':
		return 0, syntaxErr("unexpected %q, want a value", data[i])
	}
	j := i
	for j < len(data) {
		c := data[j]
		if isSpace(c) || c == ',' || c == '}' || c == ']' || c == ':' || c == '"' || c == '{' || c == '[' {
			break
		}
		j++
	}
	return j, nil
}

// objectIter walks the members of one JSON object without decoding values.
// Create it with newObjectIter, call next until it returns false, then check
// err. Names are returned unescaped; values are raw (and alias the input).
type objectIter struct {
	data []byte
	pos  int
	n    int // members returned so far
	done bool
	err  *scanError
}

// newObjectIter returns an iterator over data, which must hold exactly one
// JSON object (surrounding whitespace allowed). ok is false when data does
// not start with '{'.
func newObjectIter(data []byte) (it objectIter, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return objectIter{}, false
	}
	return objectIter{data: data, pos: i + 1}, true
}

func (it *objectIter) fail(err *scanError) bool {
	it.err, it.done = err, true
	return false
}

// next returns the next member. It returns false at the end of the object
// or on a syntax error (then it.err is set).
func (it *objectIter) next() (name, value []byte, ok bool) {
	if it.done {
		return nil, nil, false
	}
	d := it.data
	i := skipSpace(d, it.pos)
	if i < len(d) && d[i] == '}' {
		it.done = true
		if i = skipSpace(d, i+1); i != len(d) {
			return nil, nil, it.fail(syntaxErr("unexpected data after the end of the object"))
		}
		return nil, nil, false
	}
	if it.n > 0 {
		if i >= len(d) || d[i] != ',' {
			return nil, nil, it.fail(syntaxErr("want ',' or '}' after object member"))
		}
		i = skipSpace(d, i+1)
	}
	if i >= len(d) || d[i] != '"' {
		return nil, nil, it.fail(syntaxErr("want a quoted member name"))
	}
	end, escaped, err := scanString(d, i)
	if err != nil {
		return nil, nil, it.fail(err)
	}
	name = d[i+1 : end-1]
	if escaped {
		var s string
		if json.Unmarshal(d[i:end], &s) != nil {
			return nil, nil, it.fail(syntaxErr("invalid member name"))
		}
		name = []byte(s)
	}
	i = skipSpace(d, end)
	if i >= len(d) || d[i] != ':' {
		return nil, nil, it.fail(syntaxErr("want ':' after member name"))
	}
	i = skipSpace(d, i+1)
	vend, err := skipValue(d, i)
	if err != nil {
		return nil, nil, it.fail(err)
	}
	it.pos, it.n = vend, it.n+1
	return name, d[i:vend], true
}

// isNull reports whether a raw value is the literal null.
func isNull(v []byte) bool {
	return len(v) == 4 && string(v) == "null"
}

// valueType names the JSON type of a raw value for error messages, or
// returns "" when a scalar is not valid JSON. Containers are named by their
// first byte (they may be too deep for json.Valid).
func valueType(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	if !json.Valid(v) {
		return ""
	}
	switch v[0] {
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// unquote decodes a raw JSON string value, validating it.
func unquote(v []byte) (string, *scanError) {
	if len(v) == 0 || v[0] != '"' {
		return "", syntaxErr("want a string")
	}
	end, escaped, err := scanString(v, 0)
	switch {
	case err != nil:
		return "", err
	case end != len(v):
		return "", syntaxErr("unexpected data after string")
	case !escaped:
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", syntaxErr("invalid string")
	}
	return s, nil
}
