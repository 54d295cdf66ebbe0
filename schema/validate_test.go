package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// remove, as an edit value, deletes the field.
var remove = struct{ remove bool }{true}

// baseEvent returns a valid, fully populated event as nested maps.
func baseEvent() map[string]any {
	return map[string]any{
		"id":        "0190a3f2-7b1c-7d3e-8f00-1234567890ab",
		"timestamp": "2025-06-01T11:00:00Z",
		"event":     map[string]any{"type": "create-secret", "metadata": map[string]any{"secretKey": "DB"}},
		"actor": map[string]any{"type": "user", "metadata": map[string]any{
			"userId": "u1", "email": "ann@example.com", "username": "ann", "name": "Ann", "permission": map[string]any{}}},
		"orgId": "org_1", "projectId": "prj_1", "projectName": "Payments",
		"resource":  map[string]any{"type": "secret", "id": "sec_1", "name": "DB_PASSWORD"},
		"ipAddress": "192.0.2.1", "userAgent": "curl/8.0", "userAgentType": "web", "traceId": "t1",
	}
}

// eventWith returns baseEvent with edits applied, as JSON. An edit maps a
// dotted path to a value: remove deletes it; a json.RawMessage is used
// verbatim.
func eventWith(tb testing.TB, edits map[string]any) []byte {
	tb.Helper()
	ev := baseEvent()
	for path, v := range edits {
		m := ev
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		if v == remove {
			delete(m, parts[len(parts)-1])
		} else {
			m[parts[len(parts)-1]] = v
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

type edits = map[string]any

// nested returns a metadata object nested depth levels deep.
func nested(depth int) json.RawMessage {
	return json.RawMessage(strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth))
}

// manyKeys returns a metadata object with n keys.
func manyKeys(n int) json.RawMessage {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	b.WriteString("}")
	return json.RawMessage(b.String())
}

func TestValidateGood(t *testing.T) {
	tests := []struct {
		name  string
		edits edits
	}{
		{"base", nil},
		{"kebab type", edits{"event.type": "create-secret"}},
		{"upper snake type", edits{"event.type": "USER_LOGIN"}},
		{"dotted type", edits{"event.type": "api_key.create"}},
		{"dotted snake type", edits{"event.type": "api_key.iam_rule.create"}},
		{"plain verb type", edits{"event.type": "execute"}},
		{"mixed type", edits{"event.type": "audit-log.query"}},
		{"colon type", edits{"event.type": "org:member.invite"}},
		{"one letter type", edits{"event.type": "a"}},
		{"max type", edits{"event.type": strings.Repeat("a", 128)}},
		{"actor service", edits{"actor.type": "service", "actor.metadata": edits{"serviceId": "s1", "name": "svc"}}},
		{"actor identity", edits{"actor.type": "identity", "actor.metadata": edits{"identityId": "i1"}}},
		{"actor platform", edits{"actor.type": "platform", "actor.metadata": remove}},
		{"actor scimClient", edits{"actor.type": "scimClient"}},
		{"actor unknownUser", edits{"actor.type": "unknownUser"}},
		{"actor apiKey", edits{"actor.type": "apiKey", "actor.metadata": edits{"keyId": "k1"}}},
		{"id uppercase", edits{"id": "0190A3F2-7B1C-7D3E-8F00-1234567890AB"}},
		{"id v4", edits{"id": "f47ac10b-58cc-4372-a567-0e02b2c3d479"}},
		{"id absent", edits{"id": remove}},
		{"timestamp absent", edits{"timestamp": remove}},
		{"timestamp now", edits{"timestamp": "2025-06-01T12:00:00Z"}},
		{"timestamp 4 min ahead", edits{"timestamp": "2025-06-01T12:04:00Z"}},
		{"timestamp 29 days old", edits{"timestamp": "2025-05-03T12:00:00Z"}},
		{"timestamp offset", edits{"timestamp": "2025-06-01T04:00:00-07:00"}},
		{"timestamp fraction", edits{"timestamp": "2025-06-01T11:00:00.123456789Z"}},
		{"ipv6", edits{"ipAddress": "2001:db8::1"}},
		{"ipv6 loopback", edits{"ipAddress": "::1"}},
		{"ipv4 mapped", edits{"ipAddress": "::ffff:1.2.3.4"}},
		{"uat cli", edits{"userAgentType": "cli"}},
		{"uat k8-operator", edits{"userAgentType": "k8-operator"}},
		{"uat terraform", edits{"userAgentType": "terraform"}},
		{"uat other", edits{"userAgentType": "other"}},
		{"uat node-sdk", edits{"userAgentType": "node-sdk"}},
		{"uat go_sdk", edits{"userAgentType": "go_sdk"}},
		{"uat dotted", edits{"userAgentType": "Python.SDK"}},
		{"uat 64", edits{"userAgentType": strings.Repeat("x", 64)}},
		{"resource absent", edits{"resource": remove}},
		{"resource null", edits{"resource": nil}},
		{"resource type only", edits{"resource": edits{"type": "api_key"}}},
		{"orgId max", edits{"orgId": strings.Repeat("o", 256)}},
		{"userAgent max", edits{"userAgent": strings.Repeat("u", 1024)}},
		{"projectName unicode", edits{"projectName": "Zahlungen – prod ✓"}},
		{"actor metadata custom key", edits{"actor.metadata.custom": []int{1, 2}}},
		{"email null", edits{"actor.metadata.email": nil}},
		{"email empty", edits{"actor.metadata.email": ""}},
		{"email unicode", edits{"actor.metadata.email": "jörg@exämple.de"}},
		{"permission null", edits{"actor.metadata.permission": nil}},
		{"event metadata absent", edits{"event.metadata": remove}},
		{"event metadata null", edits{"event.metadata": nil}},
		{"event metadata empty", edits{"event.metadata": edits{}}},
		{"metadata nul string", edits{"event.metadata.s": "a\x00b"}},
		{"metadata max depth", edits{"event.metadata": nested(16)}},
		{"metadata max keys", edits{"event.metadata": manyKeys(1000)}},
		{"metadata max string", edits{"event.metadata.s": strings.Repeat("s", 16<<10)}},
		{"metadata max key", edits{"event.metadata": edits{strings.Repeat("k", 256): 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustDecode(t, eventWith(t, tt.edits))
		})
	}
}

func TestValidateBad(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name        string
		edits       edits
		field, code string
	}{
		{"event.type absent", edits{"event.type": remove}, "event.type", "required"},
		{"event.type empty", edits{"event.type": ""}, "event.type", "required"},
		{"event.type space", edits{"event.type": "create secret"}, "event.type", "pattern"},
		{"event.type leading digit", edits{"event.type": "1create"}, "event.type", "pattern"},
		{"event.type leading dash", edits{"event.type": "-create"}, "event.type", "pattern"},
		{"event.type trailing dash", edits{"event.type": "create-"}, "event.type", "pattern"},
		{"event.type double dot", edits{"event.type": "a..b"}, "event.type", "pattern"},
		{"event.type quote", edits{"event.type": `a"b`}, "event.type", "pattern"},
		{"event.type sql", edits{"event.type": "x'; DROP TABLE events; --"}, "event.type", "pattern"},
		{"event.type non-ascii", edits{"event.type": "créer"}, "event.type", "pattern"},
		{"event.type too long", edits{"event.type": long(129)}, "event.type", "too_long"},
		{"event.type number", edits{"event.type": 5}, "event.type", "type"},
		{"event absent", edits{"event": remove}, "event", "required"},
		{"event null", edits{"event": nil}, "event", "required"},
		{"event string", edits{"event": "create-secret"}, "event", "type"},
		{"actor absent", edits{"actor": remove}, "actor", "required"},
		{"actor.type absent", edits{"actor.type": remove}, "actor.type", "required"},
		{"actor.type unknown", edits{"actor.type": "admin"}, "actor.type", "enum"},
		{"actor.type wrong case", edits{"actor.type": "User"}, "actor.type", "enum"},
		{"actor.type number", edits{"actor.type": 1}, "actor.type", "type"},
		{"id not uuid", edits{"id": "x"}, "id", "uuid"},
		{"id empty", edits{"id": ""}, "id", "uuid"},
		{"id braced", edits{"id": "{0190a3f2-7b1c-7d3e-8f00-1234567890ab}"}, "id", "uuid"},
		{"id urn", edits{"id": "urn:uuid:0190a3f2-7b1c-7d3e-8f00-1234567890ab"}, "id", "uuid"},
		{"id no hyphens", edits{"id": "0190a3f27b1c7d3e8f001234567890ab"}, "id", "uuid"},
		{"id short", edits{"id": "0190a3f2-7b1c-7d3e-8f00-1234567890a"}, "id", "uuid"},
		{"id not hex", edits{"id": "0190a3f2-7b1c-7d3e-8f00-1234567890ag"}, "id", "uuid"},
		{"id number", edits{"id": 12}, "id", "type"},
		{"timestamp space", edits{"timestamp": "2025-06-01 12:00:00Z"}, "timestamp", "timestamp_format"},
		{"timestamp date only", edits{"timestamp": "2025-06-01"}, "timestamp", "timestamp_format"},
		{"timestamp no offset", edits{"timestamp": "2025-06-01T12:00:00"}, "timestamp", "timestamp_format"},
		{"timestamp epoch string", edits{"timestamp": "1748779200"}, "timestamp", "timestamp_format"},
		{"timestamp decimal comma", edits{"timestamp": "2025-06-01T11:00:00,5Z"}, "timestamp", "timestamp_format"},
		{"timestamp offset 24h", edits{"timestamp": "2025-06-01T11:00:00+24:00"}, "timestamp", "timestamp_format"},
		{"timestamp lowercase", edits{"timestamp": "2025-06-01t11:00:00z"}, "timestamp", "timestamp_format"},
		{"timestamp day 31 of June", edits{"timestamp": "2025-06-31T11:00:00Z"}, "timestamp", "timestamp_format"},
		{"timestamp empty", edits{"timestamp": ""}, "timestamp", "timestamp_format"},
		{"timestamp number", edits{"timestamp": 1748779200}, "timestamp", "type"},
		{"timestamp 31 days old", edits{"timestamp": testNow.Add(-31 * 24 * time.Hour).Format(time.RFC3339)}, "timestamp", "timestamp_too_old"},
		{"timestamp 10 min ahead", edits{"timestamp": testNow.Add(10 * time.Minute).Format(time.RFC3339)}, "timestamp", "timestamp_in_future"},
		{"ip short", edits{"ipAddress": "1.2.3"}, "ipAddress", "ip_address"},
		{"ip zone", edits{"ipAddress": "fe80::1%eth0"}, "ipAddress", "ip_address"},
		{"ip leading zero", edits{"ipAddress": "01.2.3.4"}, "ipAddress", "ip_address"},
		{"ip hostname", edits{"ipAddress": "localhost"}, "ipAddress", "ip_address"},
		{"ip with port", edits{"ipAddress": "1.2.3.4:80"}, "ipAddress", "ip_address"},
		{"ip empty", edits{"ipAddress": ""}, "ipAddress", "ip_address"},
		{"ip number", edits{"ipAddress": 5}, "ipAddress", "type"},
		{"uat space", edits{"userAgentType": "my agent"}, "userAgentType", "pattern"},
		{"uat leading dash", edits{"userAgentType": "-cli"}, "userAgentType", "pattern"},
		{"uat slash", edits{"userAgentType": "web/1"}, "userAgentType", "pattern"},
		{"uat too long", edits{"userAgentType": long(65)}, "userAgentType", "pattern"},
		{"uat empty", edits{"userAgentType": ""}, "userAgentType", "pattern"},
		{"resource string", edits{"resource": "secret"}, "resource", "type"},
		{"resource empty", edits{"resource": edits{}}, "resource.type", "required"},
		{"resource.type pattern", edits{"resource.type": "bad type"}, "resource.type", "pattern"},
		{"resource.type too long", edits{"resource.type": long(129)}, "resource.type", "too_long"},
		{"resource.id too long", edits{"resource.id": long(257)}, "resource.id", "too_long"},
		{"resource.id control", edits{"resource.id": "a\nb"}, "resource.id", "pattern"},
		{"resource.id number", edits{"resource.id": 5}, "resource.id", "type"},
		{"resource.name too long", edits{"resource.name": long(1025)}, "resource.name", "too_long"},
		{"orgId too long", edits{"orgId": long(257)}, "orgId", "too_long"},
		{"orgId NUL", edits{"orgId": "a\x00b"}, "orgId", "pattern"},
		{"orgId C1 control", edits{"orgId": "a\u0085b"}, "orgId", "pattern"},
		{"orgId number", edits{"orgId": 5}, "orgId", "type"},
		{"projectId too long", edits{"projectId": long(257)}, "projectId", "too_long"},
		{"traceId DEL", edits{"traceId": "a\x7f"}, "traceId", "pattern"},
		{"traceId too long", edits{"traceId": long(257)}, "traceId", "too_long"},
		{"projectName too long", edits{"projectName": long(1025)}, "projectName", "too_long"},
		{"projectName bool", edits{"projectName": true}, "projectName", "type"},
		{"userAgent too long", edits{"userAgent": long(1025)}, "userAgent", "too_long"},
		{"userId number", edits{"actor.metadata.userId": 5}, "actor.metadata.userId", "type"},
		{"userId too long", edits{"actor.metadata.userId": long(257)}, "actor.metadata.userId", "too_long"},
		{"serviceId tab", edits{"actor.metadata.serviceId": "a\tb"}, "actor.metadata.serviceId", "pattern"},
		{"identityId too long", edits{"actor.metadata.identityId": long(257)}, "actor.metadata.identityId", "too_long"},
		{"keyId too long", edits{"actor.metadata.keyId": long(257)}, "actor.metadata.keyId", "too_long"},
		{"email no at", edits{"actor.metadata.email": "nope"}, "actor.metadata.email", "email"},
		{"email two ats", edits{"actor.metadata.email": "a@b@c"}, "actor.metadata.email", "email"},
		{"email space", edits{"actor.metadata.email": "a b@c.d"}, "actor.metadata.email", "email"},
		{"email no local", edits{"actor.metadata.email": "@c.d"}, "actor.metadata.email", "email"},
		{"email no domain", edits{"actor.metadata.email": "a@"}, "actor.metadata.email", "email"},
		{"email control", edits{"actor.metadata.email": "a\x01@c.d"}, "actor.metadata.email", "email"},
		{"email too long", edits{"actor.metadata.email": long(300) + "@" + long(20)}, "actor.metadata.email", "too_long"},
		{"email number", edits{"actor.metadata.email": 5}, "actor.metadata.email", "type"},
		{"username too long", edits{"actor.metadata.username": long(1025)}, "actor.metadata.username", "too_long"},
		{"name too long", edits{"actor.metadata.name": long(1025)}, "actor.metadata.name", "too_long"},
		{"permission string", edits{"actor.metadata.permission": "admin"}, "actor.metadata.permission", "type"},
		{"permission array", edits{"actor.metadata.permission": []string{}}, "actor.metadata.permission", "type"},
		{"actor metadata string", edits{"actor.metadata": "x"}, "actor.metadata", "type"},
		{"actor metadata array", edits{"actor.metadata": []int{}}, "actor.metadata", "type"},
		{"event metadata string", edits{"event.metadata": "x"}, "event.metadata", "type"},
		{"event metadata number", edits{"event.metadata": 5}, "event.metadata", "type"},
		{"event metadata array", edits{"event.metadata": []int{1}}, "event.metadata", "type"},
		{"metadata 1 MB", edits{"event.metadata.s": long(1 << 20)}, "event.metadata", "too_large"},
		{"metadata too deep", edits{"event.metadata": nested(17)}, "event.metadata", "too_deep"},
		{"metadata too deep arrays", edits{"event.metadata.a": json.RawMessage(strings.Repeat("[", 16) + strings.Repeat("]", 16))}, "event.metadata", "too_deep"},
		{"metadata too many keys", edits{"event.metadata": manyKeys(1001)}, "event.metadata", "too_many_keys"},
		{"metadata too many nested keys", edits{"event.metadata": edits{"a": manyKeys(1000)}}, "event.metadata", "too_many_keys"},
		{"metadata string too long", edits{"event.metadata.s": long(16<<10 + 1)}, "event.metadata", "too_long"},
		{"metadata key too long", edits{"event.metadata": edits{long(257): 1}}, "event.metadata", "too_long"},
		{"actor metadata too deep", edits{"actor.metadata.custom": nested(16)}, "actor.metadata", "too_deep"},
		{"actor metadata too large", edits{"actor.metadata.custom": long(70 << 10)}, "actor.metadata", "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOne(t, eventWith(t, tt.edits), tt.field, tt.code)
		})
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	raw := eventWith(t, edits{"id": "x", "event.type": "a b", "actor.type": "root", "ipAddress": "nope", "extra": 1})
	_, errs := DecodeEvent(raw, 0, DefaultLimits(), testNow)
	if len(errs) != 5 {
		t.Errorf("errors=%d, want 5: %v", len(errs), errs)
	}
}

func TestValidateCustomLimits(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxMetadataBytes, lim.MaxDepth, lim.MaxKeys, lim.MaxMetadataString = 100, 2, 3, 5
	lim.MaxIDBytes, lim.MaxStringBytes, lim.MaxPast, lim.MaxFuture = 4, 6, time.Hour, time.Second
	if err := lim.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		edits       edits
		field, code string
	}{
		{edits{"event.metadata": json.RawMessage(`{"s":"` + strings.Repeat("x", 100) + `"}`)}, "event.metadata", "too_large"},
		{edits{"event.metadata": json.RawMessage(`{"a":{"b":{}}}`)}, "event.metadata", "too_deep"},
		{edits{"event.metadata": json.RawMessage(`{"a":1,"b":2,"c":3,"d":4}`)}, "event.metadata", "too_many_keys"},
		{edits{"event.metadata": json.RawMessage(`{"a":"123456"}`)}, "event.metadata", "too_long"},
		{edits{"event.metadata": json.RawMessage(`{"abcdef":1}`)}, "event.metadata", "too_long"},
		{edits{"orgId": "12345"}, "orgId", "too_long"},
		{edits{"projectName": "1234567"}, "projectName", "too_long"},
		{edits{"timestamp": "2025-06-01T10:59:59Z"}, "timestamp", "timestamp_too_old"},
		{edits{"timestamp": "2025-06-01T12:00:02Z"}, "timestamp", "timestamp_in_future"},
	}
	for _, tt := range tests {
		raw := eventWith(t, tt.edits)
		_, errs := DecodeEvent(raw, -1, lim, testNow)
		found := false
		for _, e := range errs {
			found = found || (e.Field == tt.field && e.Code == tt.code)
		}
		if !found {
			t.Errorf("%s: errors %v, want field=%q, code=%q", raw, errs, tt.field, tt.code)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Errorf("DefaultLimits: %v", err)
	}
	lim := DefaultLimits()
	lim.MaxDepth, lim.MaxPast = 0, -time.Second
	err := lim.Validate()
	if err == nil || !strings.Contains(err.Error(), "MaxDepth") || !strings.Contains(err.Error(), "MaxPast") {
		t.Errorf("err=%v, want MaxDepth and MaxPast reported", err)
	}
	if err := (Limits{}).Validate(); err == nil {
		t.Error("zero Limits: err=nil, want an error")
	}
}

func TestEventTypePattern(t *testing.T) {
	good := []string{"create-secret", "USER_LOGIN", "api_key.create", "api_key.iam_rule.create", "execute",
		"audit-log.query", "a", "A1", "v2.secret:read", "getSecrets"}
	bad := []string{"", " ", "create secret", "1abc", "_abc", ".abc", "abc.", "abc-", "a..b", "a.-b", `a"b`, "a'b",
		"a;b", "SELECT * FROM events", "a/b", "é", "a\nb", strings.Repeat("a", 129)}
	for _, s := range good {
		if !ValidEventType(s) {
			t.Errorf("ValidEventType(%q)=false, want true", s)
		}
	}
	for _, s := range bad {
		if ValidEventType(s) {
			t.Errorf("ValidEventType(%q)=true, want false", s)
		}
	}
}

func TestErrors(t *testing.T) {
	fe := FieldError{Index: 2, Field: "actor.type", Code: "enum", Message: "must be one of user, service"}
	err := fmt.Errorf("ingest: %w", Invalid("invalid_events", "1 event is invalid", fe))
	if got := KindOf(err); got != KindInvalid {
		t.Errorf("KindOf=%v, want invalid", got)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != "invalid_events" || len(e.Details) != 1 {
		t.Fatalf("errors.As: %v", err)
	}
	want := `invalid_events: 1 event is invalid (event 2: field "actor.type": enum: must be one of user, service)`
	if e.Error() != want {
		t.Errorf("Error()=%q, want %q", e.Error(), want)
	}
	if got := KindOf(errors.New("boom")); got != 0 {
		t.Errorf("KindOf(plain)=%v, want 0", got)
	}
	b, _ := json.Marshal(FieldError{Index: -1, Field: "x", Code: "required", Message: "is required"})
	if string(b) != `{"index":-1,"field":"x","code":"required","message":"is required"}` {
		t.Errorf("json=%s", b)
	}
}

// TestPatternsAgree checks the hand-written matchers against the documented
// regexps on every string of up to 4 bytes over an alphabet of interesting
// bytes, and on longer cases.
func TestPatternsAgree(t *testing.T) {
	const alphabet = "aZ09._:-/ \"\xc3"
	var all []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		all = append(all, prefix)
		if n == 0 {
			return
		}
		for i := range len(alphabet) {
			gen(prefix+alphabet[i:i+1], n-1)
		}
	}
	gen("", 4)
	all = append(all, strings.Repeat("a", 64), strings.Repeat("a", 65), "api_key.iam_rule.create", "k8-operator")
	for _, s := range all {
		if got, want := isTypeName(s), EventTypePattern.MatchString(s); got != want {
			t.Errorf("isTypeName(%q)=%v, want %v", s, got, want)
		}
		if got, want := isUserAgentType(s), UserAgentTypePattern.MatchString(s); got != want {
			t.Errorf("isUserAgentType(%q)=%v, want %v", s, got, want)
		}
	}
}
