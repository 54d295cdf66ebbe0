package chconn_test

import (
	"context"
	"slices"
	"testing"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/chtest"
)

// Hostile are strings every store must keep exactly.
var Hostile = []string{
	`back\slash`, `\`, `\\`, `ends with \`, `\N`, `\0`, `\t literal`, `it's`, `'`, `"quoted"`, "`tick`",
	"nul\x00byte", "new\nline", "tab\there", "cr\rlf\n", "{x:String}", "'; DROP TABLE x; --",
	"unicode é ✓ 日本 \u2028 🙂", "", " spaced ", "[1,2]", "['a']",
}

// TestParamsRoundTrip: every hostile string, bound through Params and
// WithParams' arrays, reaches ClickHouse unchanged.
func TestParamsRoundTrip(t *testing.T) {
	db := chtest.NewDB(t)
	ctx := context.Background()
	for _, v := range Hostile {
		var got string
		if err := db.Conn.QueryRow(chconn.WithParams(ctx, map[string]string{"v": v}, nil), "SELECT {v:String}").Scan(&got); err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if got != v {
			t.Errorf("scalar %q came back as %q", v, got)
		}
	}
	var got []string
	err := db.Conn.QueryRow(chconn.WithParams(ctx, nil, map[string][]string{"a": Hostile}),
		"SELECT {a:Array(String)}").Scan(&got)
	if err != nil {
		t.Fatalf("array: %v", err)
	}
	if !slices.Equal(got, Hostile) {
		t.Fatalf("array came back as %q", got)
	}
}
