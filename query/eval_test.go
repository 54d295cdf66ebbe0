package query

// An in-memory evaluation of the query API, written from the documented
// semantics and independently of the parser and the compiler: it reads the
// same URL parameters and decides, event by event, what must be returned.

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// spec is a request as the test builds it: parameters in order, each with
// the raw values of its occurrences.
type spec struct {
	names  []string
	values map[string][]string
}

func newSpec() *spec { return &spec{values: map[string][]string{}} }

func (s *spec) add(name string, vals ...string) *spec {
	if _, ok := s.values[name]; !ok {
		s.names = append(s.names, name)
	}
	s.values[name] = append(s.values[name], vals...)
	return s
}

func (s *spec) query() string {
	q := url.Values{}
	for _, n := range s.names {
		q[n] = s.values[n]
	}
	return q.Encode()
}

func (s *spec) clone() *spec {
	c := newSpec()
	for _, n := range s.names {
		c.add(n, s.values[n]...)
	}
	return c
}

// rowField returns the stored value a filter parameter looks at.
func rowField(r *schema.Row, name string) string {
	switch name {
	case "eventType":
		return r.EventType
	case "actorType":
		return r.ActorType
	case "actorId":
		return r.ActorID
	case "actorEmail":
		return r.ActorEmail
	case "ipAddress":
		return r.IPAddress
	case "userAgentType":
		return r.UserAgentType
	case "projectId":
		return r.ProjectID
	case "resourceType":
		return r.ResourceType
	case "resourceId":
		return r.ResourceID
	case "traceId":
		return r.TraceID
	}
	panic("no field " + name)
}

// names whose values cannot hold commas, so commas always separate.
var commaSeparated = map[string]bool{"eventType": true, "actorType": true, "userAgentType": true, "resourceType": true, "ipAddress": true}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// occurrenceMatches says whether one occurrence of a parameter admits r.
func occurrenceMatches(r *schema.Row, name, v string) bool {
	switch name {
	case "actorEmailPrefix":
		return strings.HasPrefix(lowerASCII(r.ActorEmail), lowerASCII(v))
	case "actorEmailContains":
		return strings.Contains(lowerASCII(r.ActorEmail), lowerASCII(v))
	case "ipAddress":
		addr, err := netip.ParseAddr(r.IPAddress)
		for _, part := range strings.Split(v, ",") {
			if p, perr := netip.ParsePrefix(part); perr == nil {
				if p.Addr().Is4In6() && p.Bits() >= 96 {
					p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
				}
				if err == nil && p.Masked().Contains(addr) {
					return true
				}
			} else if a, aerr := netip.ParseAddr(part); aerr == nil && err == nil && a.Unmap() == addr {
				return true
			}
		}
		return false
	}
	got := rowField(r, name)
	if commaSeparated[name] {
		return slices.Contains(strings.Split(v, ","), got)
	}
	if got == v {
		return true
	}
	return got != "" && strings.Contains(v, ",") && slices.Contains(strings.Split(v, ","), got)
}

// metadataAt walks event.metadata along path; ok is false when absent.
func metadataAt(md string, path []string) (any, bool) {
	if md == "" {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(md))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// asJSONNumber parses v as a JSON number, the whole of it.
func asJSONNumber(v string) (float64, bool) {
	if v != strings.TrimSpace(v) {
		return 0, false
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.UseNumber()
	var x any
	if dec.Decode(&x) != nil || dec.More() {
		return 0, false
	}
	n, ok := x.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

func metadataMatches(r *schema.Row, key, want string) bool {
	v, ok := metadataAt(r.EventMetadata, strings.Split(key, "."))
	if !ok {
		return false
	}
	switch x := v.(type) {
	case string:
		return x == want
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		w, ok := asJSONNumber(want)
		return err == nil && ok && f == w
	case bool:
		return strconv.FormatBool(x) == want
	}
	return false
}

// evalMatch says whether the request s of org admits r at now.
func evalMatch(r *schema.Row, org string, s *spec, now time.Time) bool {
	if r.OrgID != org || !r.ExpiresAt.After(now) {
		return false
	}
	for _, name := range s.names {
		vals := s.values[name]
		switch {
		case name == "from" || name == "to":
			t, err := time.Parse(time.RFC3339Nano, vals[0])
			if err != nil {
				panic(err)
			}
			if name == "from" && r.Timestamp.Before(t) || name == "to" && !r.Timestamp.Before(t) {
				return false
			}
		case strings.HasPrefix(name, "metadata."):
			key := strings.TrimPrefix(name, "metadata.")
			if !slices.ContainsFunc(vals, func(v string) bool { return metadataMatches(r, key, v) }) {
				return false
			}
		case slices.Contains([]string{"sort", "order", "limit", "page", "cursor", "groupBy", "interval", "metrics", "top"}, name):
		default:
			if !slices.ContainsFunc(vals, func(v string) bool { return occurrenceMatches(r, name, v) }) {
				return false
			}
		}
	}
	return true
}

// compareUUID orders ids as ClickHouse does: by the last eight bytes, then
// the first eight.
func compareUUID(a, b [16]byte) int {
	if c := bytes.Compare(a[8:], b[8:]); c != 0 {
		return c
	}
	return bytes.Compare(a[:8], b[:8])
}

// evalList returns the events s selects, in the order it asks for.
func evalList(rows []schema.Row, org string, s *spec, now time.Time) []schema.Row {
	var out []schema.Row
	seen := map[[16]byte]bool{}
	for i := range rows {
		if evalMatch(&rows[i], org, s, now) && !seen[rows[i].ID] {
			seen[rows[i].ID] = true
			out = append(out, rows[i])
		}
	}
	by, order := "timestamp", ""
	if v := s.values["sort"]; len(v) > 0 {
		by = v[0]
	}
	if v := s.values["order"]; len(v) > 0 {
		order = v[0]
	}
	desc := order == "desc" || (order == "" && by == "timestamp")
	slices.SortStableFunc(out, func(a, b schema.Row) int {
		c := 0
		switch by {
		case "eventType":
			c = strings.Compare(a.EventType, b.EventType)
		case "actor":
			c = strings.Compare(a.ActorID, b.ActorID)
		}
		if c != 0 {
			if desc {
				return -c
			}
			return c
		}
		tieDesc := by != "timestamp" || desc
		c = a.Timestamp.Compare(b.Timestamp)
		if c == 0 {
			c = compareUUID(a.ID, b.ID)
		}
		if tieDesc {
			return -c
		}
		return c
	})
	return out
}

func rowIDs(rows []schema.Row) []string {
	out := make([]string, len(rows))
	for i := range rows {
		out[i] = rows[i].ID.String()
	}
	return out
}
