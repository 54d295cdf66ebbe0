package readsql

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/auditstore/auditstore/schema"
)

// parseAs runs the parser the way endpoint kind ("list" or "aggregate")
// does and returns its error.
func parseAs(kind, raw string) (schema.Filter, error) {
	p, err := NewParser(raw, DefaultLimits())
	if err != nil {
		return schema.Filter{}, err
	}
	f := p.Filter()
	if kind == "aggregate" {
		p.Aggregate()
	} else {
		p.Listing()
	}
	return f, p.Err()
}

func TestBadParametersAreNamed(t *testing.T) {
	many := strings.TrimSuffix(strings.Repeat("u,", 101), ",")
	var meta []string
	for i := range 21 {
		meta = append(meta, fmt.Sprintf("metadata.k%02d=x", i))
	}
	for _, tt := range []struct {
		kind, query, field, code string
	}{
		{"list", "limit=0", "limit", "range"},
		{"list", "limit=1001", "limit", "range"},
		{"list", "limit=ten", "limit", "range"},
		{"list", "limit=1&limit=2", "limit", "repeated"},
		{"list", "page=0", "page", "range"},
		{"list", "page=2002&limit=50", "page", "too_deep"},
		{"list", "page=1&cursor=abc", "page", "conflict"},
		{"list", "cursor=", "cursor", "invalid_cursor"},
		{"list", "sort=name", "sort", "enum"},
		{"list", "order=up", "order", "enum"},
		{"list", "eventType=bad%20type", "eventType", "pattern"},
		{"list", "eventType=", "eventType", "pattern"},
		{"list", "eventType=a,,b", "eventType", "pattern"},
		{"list", "resourceType=se'cret", "resourceType", "pattern"},
		{"list", "userAgentType=-web", "userAgentType", "pattern"},
		{"list", "actorType=admin", "actorType", "enum"},
		{"list", "actorId=", "actorId", "required"},
		{"list", "actorId=" + strings.Repeat("x", 16<<10+1), "actorId", "too_long"},
		{"list", "traceId=a%00b", "traceId", "pattern"},
		{"list", "projectId=%ff", "projectId", "utf8"},
		{"list", "actorEmail=" + strings.Repeat("x", 321), "actorEmail", "too_long"},
		{"list", "actorEmailPrefix=", "actorEmailPrefix", "required"},
		{"list", "ipAddress=1.2.3", "ipAddress", "ip_address"},
		{"list", "ipAddress=10.0.0.0/33", "ipAddress", "ip_range"},
		{"list", "ipAddress=fe80::1%25eth0", "ipAddress", "ip_address"},
		{"list", "from=yesterday", "from", "timestamp_format"},
		{"list", "from=1960-01-01T00:00:00Z", "from", "range"},
		{"list", "to=2026-05-01", "to", "timestamp_format"},
		{"list", "from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z", "to", "range"},
		{"list", "from=2026-05-01T00:00:00Z&to=2026-05-01T00:00:00Z", "to", "range"},
		{"list", "metadata=x", "metadata", "pattern"},
		{"list", "metadata.=x", "metadata.", "pattern"},
		{"list", "metadata.a..b=x", "metadata.a..b", "pattern"},
		{"list", "metadata.a%20b=x", "metadata.a b", "pattern"},
		{"list", "metadata.a.b.c.d.e.f.g.h.i=x", "metadata.a.b.c.d.e.f.g.h.i", "pattern"},
		{"list", "metadata." + strings.Repeat("k", 65) + "=x", "metadata." + strings.Repeat("k", 55), "pattern"},
		{"list", "actorId=" + many, "actorId", "too_many_values"},
		{"list", strings.Join(meta, "&"), "metadata.k20", "too_many_values"},
		{"list", "bogus=1", "bogus", "unknown_parameter"},
		{"list", "eventtype=login", "eventtype", "unknown_parameter"},
		{"list", "groupBy=eventType", "groupBy", "unknown_parameter"},
		{"aggregate", "groupBy=traceId", "groupBy", "enum"},
		{"aggregate", "groupBy=eventType,actorId,projectId,ipAddress", "groupBy", "too_many_values"},
		{"aggregate", "groupBy=eventType&groupBy=eventType", "groupBy", "repeated"},
		{"aggregate", "interval=year", "interval", "enum"},
		{"aggregate", "metrics=sum", "metrics", "enum"},
		{"aggregate", "metrics=count,count", "metrics", "repeated"},
		{"aggregate", "top=5", "top", "requires"},
		{"aggregate", "groupBy=eventType&top=0", "top", "range"},
		{"aggregate", "groupBy=eventType&top=1001", "top", "range"},
		{"aggregate", "limit=5", "limit", "unknown_parameter"},
	} {
		t.Run(tt.query[:min(len(tt.query), 60)], func(t *testing.T) {
			_, err := parseAs(tt.kind, tt.query)
			var se *schema.Error
			if !errors.As(err, &se) || se.Kind != schema.KindInvalid {
				t.Fatalf("err=%v, want a 400", err)
			}
			d := se.Details[0]
			if d.Field != tt.field || d.Code != tt.code || d.Index != -1 || d.Message == "" {
				t.Fatalf("detail %+v, want field %q code %q", d, tt.field, tt.code)
			}
		})
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	_, err := parseAs("list", "limit=0&sort=x&bogus=1&actorType=root")
	var se *schema.Error
	if !errors.As(err, &se) || len(se.Details) != 4 || se.Code != "invalid_parameter" {
		t.Fatalf("%v", err)
	}
	if _, err := NewParser("a=%zz", DefaultLimits()); err == nil {
		t.Fatal("a malformed query string was accepted")
	}
}

func TestParsedFilters(t *testing.T) {
	for _, tt := range []struct {
		query string
		check func(schema.Filter) bool
	}{
		{"eventType=a,b&eventType=b", func(f schema.Filter) bool {
			return fmt.Sprint(f.Match[schema.FieldEventType]) == "[a b]"
		}},
		{"actorId=u-1,u-2", func(f schema.Filter) bool { // free-form: parts and the whole
			return fmt.Sprint(f.Match[schema.FieldActorID]) == "[u-1 u-1,u-2 u-2]"
		}},
		{"actorId=u-1,", func(f schema.Filter) bool { return fmt.Sprint(f.Match[schema.FieldActorID]) == "[u-1 u-1,]" }},
		{"actorEmailPrefix=AdA%C3%89", func(f schema.Filter) bool { return f.EmailPrefixes[0] == "adaÉ" }},
		{"ipAddress=::ffff:10.1.2.3,::ffff:10.0.0.0/104,10.9.9.9/8", func(f schema.Filter) bool {
			return fmt.Sprint(f.IPs, f.IPRanges) == "[10.1.2.3] [10.0.0.0/8]"
		}},
		{"from=2026-05-01T02:00:00.0001%2B02:00", func(f schema.Filter) bool {
			return f.From.Format("2006-01-02T15:04:05.000Z07:00") == "2026-05-01T00:00:00.001Z"
		}},
		{"metadata.a.b=1&metadata.a.b=x&metadata.env=", func(f schema.Filter) bool {
			return len(f.Metadata) == 2 && f.Metadata[0].Key() == "a.b" && fmt.Sprint(f.Metadata[0].Values) == "[1 x]" &&
				fmt.Sprint(f.Metadata[1].Values) == "[]"
		}},
	} {
		f, err := parseAs("list", tt.query)
		if err != nil || !tt.check(f) {
			t.Errorf("%s: %+v %v", tt.query, f, err)
		}
	}
	p, _ := NewParser(url.Values{"sort": {"eventType"}}.Encode(), DefaultLimits())
	if s, _, _ := p.Listing(); s.Desc || s.By != schema.SortEventType {
		t.Errorf("sort=eventType defaults to ascending, got %+v", s)
	}
}
