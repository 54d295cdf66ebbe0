package ingest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// TestBodyBudget: bodies held at once never pass the budget; past it a
// request is told to retry, and what is released can be used again.
func TestBodyBudget(t *testing.T) {
	b := &budget{max: 128 << 10}
	first, err := readRaw(strings.NewReader(strings.Repeat("a", 100<<10)), 1<<20, b, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b.used > b.max || b.used < int64(first.Len()) {
		t.Fatalf("used=%d for a body of %d (max %d)", b.used, first.Len(), b.max)
	}
	_, err = readRaw(strings.NewReader(strings.Repeat("b", 60<<10)), 1<<20, b, time.Second)
	var se *schema.Error
	if e, ok := err.(*schema.Error); ok {
		se = e
	}
	if se == nil || se.Code != "busy" || se.Kind != schema.KindUnavailable || se.RetryAfter != time.Second {
		t.Fatalf("second body past the budget: err=%v, want 503 busy with Retry-After", err)
	}
	first.release()
	if b.used != 0 {
		t.Fatalf("used=%d after every body was released", b.used)
	}
	second, err := readRaw(bytes.NewReader(bytes.Repeat([]byte("b"), 60<<10)), 1<<20, b, time.Second)
	if err != nil || second.Len() != 60<<10 {
		t.Fatalf("after release: err=%v len=%d", err, second.Len())
	}
	second.release()
	// A body past the bound is refused whole, and holds nothing after.
	if _, err := readRaw(strings.NewReader(strings.Repeat("c", 10<<10)), 8<<10, b, time.Second); schema.KindOf(err) != schema.KindTooLarge {
		t.Fatalf("body over max: err=%v, want 413", err)
	}
	if b.used != 0 {
		t.Fatalf("used=%d after a refused body", b.used)
	}
}
