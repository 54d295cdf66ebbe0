package schema

import (
	"strings"
	"testing"
)

func TestSplitJSONArray(t *testing.T) {
	good := []struct {
		in   string
		want []string
	}{
		{`[]`, nil},
		{` [ ] `, nil},
		{`[{"a":1}]`, []string{`{"a":1}`}},
		{`[{"a":[1,{"b":"]"}]}, {"c":"x,y"} ,3]`, []string{`{"a":[1,{"b":"]"}]}`, `{"c":"x,y"}`, `3`}},
		{"[\n{\"a\":\"\\\"]\"}\n]\n", []string{`{"a":"\"]"}`}},
	}
	for _, tt := range good {
		got, err := SplitJSONArray([]byte(tt.in))
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		var s []string
		for _, g := range got {
			s = append(s, string(g))
		}
		if strings.Join(s, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%q: got %q, want %q", tt.in, s, tt.want)
		}
	}
	for _, bad := range []string{``, `{}`, `[`, `[{"a":1}`, `[{"a":1},]`, `[{"a":1}}`, `[1 2]`, `[1] x`, `[,]`, `["abc]`,
		strings.Repeat("[", 100000)} {
		if _, err := SplitJSONArray([]byte(bad)); err == nil {
			t.Errorf("%.40q: accepted", bad)
		}
	}
}
