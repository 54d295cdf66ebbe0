package schema

import "fmt"

// SplitJSONArray returns the raw elements of the JSON array held in data
// (surrounding whitespace allowed), without decoding them: each element is
// checked later by DecodeEvent, which reports problems with its index. The
// elements alias data. Nesting of any depth is skipped without recursion.
func SplitJSONArray(data []byte) ([][]byte, error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, fmt.Errorf("want a JSON array")
	}
	i = skipSpace(data, i+1)
	var out [][]byte
	if i < len(data) && data[i] == ']' {
		if j := skipSpace(data, i+1); j != len(data) {
			return nil, fmt.Errorf("unexpected data after the array at byte %d", j)
		}
		return out, nil
	}
	for {
		start := i
		end, err := skipValue(data, i)
		if err != nil {
			return nil, fmt.Errorf("element %d: %s", len(out), err.msg)
		}
		out = append(out, data[start:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return nil, fmt.Errorf("unexpected end of input inside the array")
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			if j := skipSpace(data, i+1); j != len(data) {
				return nil, fmt.Errorf("unexpected data after the array at byte %d", j)
			}
			return out, nil
		default:
			return nil, fmt.Errorf("unexpected %q after element %d at byte %d, want ',' or ']'", data[i], len(out)-1, i)
		}
	}
}
