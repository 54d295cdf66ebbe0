package schema

// validJSON reports whether data is one JSON value (RFC 8259) with only
// whitespace around it: the same answer as encoding/json's Valid, which
// it replaces on the ingest path (metadata objects, metadata numbers),
// where Valid cost a tenth of the server's CPU (bench/ingest, 2026-12-03).
// Like Valid, it does not check UTF-8 or UTF-16 surrogate pairs (callers
// check those) and refuses nesting deeper than maxValidDepth. The walk is
// iterative: its only memory is one byte per open container.
func validJSON(data []byte) bool {
	var buf [32]byte
	stack := buf[:0] // the open containers, '{' or '['
	d := data
	i := 0
	var ok bool
value:
	i = skipSpace(d, i)
	if i >= len(d) {
		return false
	}
	switch d[i] {
	case '{', '[':
		if len(stack) >= maxValidDepth {
			return false
		}
		open := d[i]
		i = skipSpace(d, i+1)
		if i < len(d) && d[i] == open+2 { // '}' is '{'+2, ']' is '['+2
			i++
			goto next
		}
		stack = append(stack, open)
		if open == '{' {
			goto member
		}
		goto value
	case '"':
		if i, ok = skipValidString(d, i); !ok {
			return false
		}
	case 't':
		if !hasLiteral(d, i, "true") {
			return false
		}
		i += 4
	case 'f':
		if !hasLiteral(d, i, "false") {
			return false
		}
		i += 5
	case 'n':
		if !hasLiteral(d, i, "null") {
			return false
		}
		i += 4
	default:
		if i, ok = skipNumber(d, i); !ok {
			return false
		}
	}
next:
	i = skipSpace(d, i)
	if len(stack) == 0 {
		return i == len(d)
	}
	if i >= len(d) {
		return false
	}
	switch top := stack[len(stack)-1]; {
	case d[i] == ',':
		i++
		if top == '{' {
			goto member
		}
		goto value
	case d[i] == top+2:
		stack = stack[:len(stack)-1]
		i++
		goto next
	}
	return false
member:
	i = skipSpace(d, i)
	if i >= len(d) || d[i] != '"' {
		return false
	}
	if i, ok = skipValidString(d, i); !ok {
		return false
	}
	i = skipSpace(d, i)
	if i >= len(d) || d[i] != ':' {
		return false
	}
	i++
	goto value
}

// maxValidDepth is encoding/json's limit on nesting (maxNestingDepth).
const maxValidDepth = 10000

func hasLiteral(d []byte, i int, lit string) bool {
	return len(d)-i >= len(lit) && string(d[i:i+len(lit)]) == lit
}

// skipValidString returns the index just past the string starting at
// d[i] == '"' and whether it is well formed: no control character, and
// only the escapes \" \\ \/ \b \f \n \r \t and \u with four hex digits.
func skipValidString(d []byte, i int) (int, bool) {
	for j := i + 1; j < len(d); {
		c := d[j]
		if c >= 0x20 && c != '"' && c != '\\' {
			j++
			continue
		}
		switch c {
		case '"':
			return j + 1, true
		case '\\':
			if j+1 >= len(d) {
				return 0, false
			}
			switch d[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if _, ok := hex4(d, j+2); !ok {
					return 0, false
				}
				j += 6
			default:
				return 0, false
			}
		default: // a control character
			return 0, false
		}
	}
	return 0, false
}

// skipNumber returns the index just past the number starting at d[i] and
// whether it is one: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(d []byte, i int) (int, bool) {
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		i = skipDigits(d, i+1)
	default:
		return 0, false
	}
	if i < len(d) && d[i] == '.' {
		j := skipDigits(d, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := skipDigits(d, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(d []byte, i int) int {
	for i < len(d) && '0' <= d[i] && d[i] <= '9' {
		i++
	}
	return i
}
