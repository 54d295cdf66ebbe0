package schema

import (
	"encoding/json"
	"strings"
	"testing"
)

// validSeeds are inputs on both sides of each rule of the grammar.
var validSeeds = []string{
	``, ` `, `{}`, `[]`, ` { } `, `{"a":1}`, `{"a":1,}`, `{,"a":1}`, `{"a" 1}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`,
	`[1,2,3]`, `[1,]`, `[,1]`, `[1 2]`, `[[[]]]`, `[[[]]`, `[]]`, `{"a":[{"b":null}]}`, `{"a":[}`, `{]`, `[}`,
	`"x"`, `"\u00e9\n\t\"\\\/\b\f\r"`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\x01b\"", "\"a\x7fb\"", `"unterminated`, `"\`,
	`"\ud800"`, "\"\xff\xfe\"", `true`, `false`, `null`, `tru`, `nul`, `truex`, `True`, `nulll`,
	`0`, `-0`, `01`, `-01`, `1.5`, `1.`, `.5`, `-`, `+1`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `1.5e3`, `0.0e0`, `-1.25E-10`,
	`123456789012345678901234567890`, `1 2`, `1,`, `{"a":1}x`, `{"a":1}}`, "\t\n\r{\"a\"\t:\n1\r}\n", "\v{}", `{"a":-}`,
	`{"k":"v","n":{"m":[1,2.5,-3e2,true,false,null,"s"]}}`, `[{"a":{"b":{"c":[1,[2,[3]]]}}}]`,
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", data, got, want)
		}
	})
}

// TestValidJSONNesting: the depth limit is encoding/json's, for arrays
// (empty innermost or not) and objects.
func TestValidJSONNesting(t *testing.T) {
	for _, n := range []int{maxValidDepth - 1, maxValidDepth, maxValidDepth + 1} {
		for name, doc := range map[string]string{
			"empty arrays": strings.Repeat("[", n) + strings.Repeat("]", n),
			"arrays":       strings.Repeat("[", n) + "1" + strings.Repeat("]", n),
			"objects":      strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1),
		} {
			if got, want := validJSON([]byte(doc)), json.Valid([]byte(doc)); got != want {
				t.Errorf("%d nested %s: validJSON %v, json.Valid %v", n, name, got, want)
			}
		}
	}
}

func BenchmarkValidJSON(b *testing.B) {
	meta := []byte(`{"secretPath":"/backend/db","environment":"prod","numberOfSecrets":3,"keys":["A_KEY","B_KEY"],` +
		`"permission":{"metadata":{},"auth":{"method":"oidc","ttl":3600.5}},"note":"r\u00e9sum\u00e9 \"quoted\""}`)
	for _, c := range []struct {
		name string
		f    func([]byte) bool
	}{{"ours", validJSON}, {"encoding-json", json.Valid}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(meta)))
			for b.Loop() {
				if !c.f(meta) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
