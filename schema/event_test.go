package schema

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testNow is the fixed "now" of these tests.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// seedEvent is the Infisical example of the wire format, placeholders filled.
const seedEvent = `{ "id": "0190a3f2-7b1c-7d3e-8f00-1234567890ab", "ipAddress": "203.0.113.7",
  "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
  "userAgentType": "web", "orgId": "7f1c0b9e-6a55-4c43-9d1e-0a3b5c7d9e11",
  "projectId": "c2d4e6f8-1a3b-4c5d-8e9f-0a1b2c3d4e5f", "projectName": "payments-api",
  "event": { "type": "get-secrets", "metadata": { "secretPath": "/", "environment": "prod", "numberOfSecrets": 3 } },
  "actor": { "type": "user", "metadata": { "email": "jane@example.com", "userId": "5b0f7c1e-2d3a-4b5c-9d8e-7f6a5b4c3d2e",
    "username": "jane", "permission": { "metadata": {}, "auth": {} } } } }`

// fullEvent uses every field of the wire format.
const fullEvent = `{"id":"0190A3F2-7B1C-7D3E-8F00-1234567890AB","timestamp":"2025-06-01T13:59:58.123456+02:00",
 "event":{"type":"api_key.iam_rule.create","metadata":{"rule":{"effect":"allow","actions":["read","write"]},"n":1.5,"ok":true,"none":null,"nul":"a\u0000b"}},
 "actor":{"type":"apiKey","metadata":{"keyId":"key_123","name":"ci key","email":"ci@example.com","permission":{"role":"admin"},"custom":[1,2]}},
 "orgId":"org_1","projectId":"prj_1","projectName":"Payments <prod>","resource":{"type":"secret","id":"sec_1","name":"DB_PASSWORD"},
 "ipAddress":"::ffff:192.0.2.1","userAgent":"auditctl/1.0","userAgentType":"cli","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}`

// mustDecode decodes raw with the default limits and fails on any error.
func mustDecode(tb testing.TB, raw []byte) Event {
	tb.Helper()
	ev, errs := DecodeEvent(raw, 0, DefaultLimits(), testNow)
	if len(errs) > 0 {
		tb.Fatalf("DecodeEvent(%.200s): unexpected errors %v", raw, errs)
	}
	return ev
}

// wantOne decodes raw and checks that it reports a problem with field and
// code (among possibly others).
func wantOne(t *testing.T, raw []byte, field, code string) {
	t.Helper()
	_, errs := DecodeEvent(raw, 7, DefaultLimits(), testNow)
	if len(errs) == 0 {
		t.Fatalf("DecodeEvent(%.200s): no error, want field=%q code=%q", raw, field, code)
	}
	for _, e := range errs {
		if e.Field == field && e.Code == code {
			if e.Index != 7 {
				t.Errorf("index=%d, want 7", e.Index)
			}
			if e.Message == "" {
				t.Errorf("empty message in %+v", e)
			}
			return
		}
	}
	t.Errorf("errors %v: want field=%q, code=%q", errs, field, code)
}

func TestDecodeEventSeed(t *testing.T) {
	ev := mustDecode(t, []byte(seedEvent))
	if ev.Event.Type != "get-secrets" || ev.Actor.Type != "user" || ev.UserAgentType != "web" {
		t.Errorf("event=%+v", ev)
	}
	if !ev.Timestamp.IsZero() {
		t.Errorf("timestamp=%v, want zero (absent)", ev.Timestamp)
	}
	if ev.Resource != nil {
		t.Errorf("resource=%+v, want nil", ev.Resource)
	}
	id := ev.Actor.Identity()
	want := ActorIdentity{ID: "5b0f7c1e-2d3a-4b5c-9d8e-7f6a5b4c3d2e", Email: "jane@example.com", Username: "jane"}
	if id != want {
		t.Errorf("identity=%+v, want %+v", id, want)
	}
}

func TestDecodeEventNormalizes(t *testing.T) {
	ev := mustDecode(t, []byte(fullEvent))
	if ev.ID != "0190a3f2-7b1c-7d3e-8f00-1234567890ab" {
		t.Errorf("id=%q, want lowercase", ev.ID)
	}
	wantTS := time.Date(2025, 6, 1, 11, 59, 58, 123456000, time.UTC)
	if !ev.Timestamp.Equal(wantTS) || ev.Timestamp.Location() != time.UTC {
		t.Errorf("timestamp=%v, want %v in UTC", ev.Timestamp, wantTS)
	}
	if ev.IPAddress != "192.0.2.1" {
		t.Errorf("ipAddress=%q, want 192.0.2.1", ev.IPAddress)
	}
	if !bytes.Contains(ev.Event.Metadata, []byte(`"a\u0000b"`)) {
		t.Errorf("metadata=%s, want the NUL string kept", ev.Event.Metadata)
	}
	if id := ev.Actor.Identity(); id.ID != "key_123" || id.Name != "ci key" {
		t.Errorf("identity=%+v, want keyId as ID for an apiKey actor", id)
	}
}

func TestDecodeEventRoundTrip(t *testing.T) {
	for _, raw := range []string{seedEvent, fullEvent} {
		ev := mustDecode(t, []byte(raw))
		if ev.Timestamp.IsZero() {
			ev.Timestamp = testNow // as the ingest path does
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev2 := mustDecode(t, out)
		assertSameEvent(t, ev, ev2)
	}
}

// assertSameEvent compares events, metadata semantically.
func assertSameEvent(tb testing.TB, a, b Event) {
	tb.Helper()
	for _, m := range [][2]json.RawMessage{{a.Event.Metadata, b.Event.Metadata}, {a.Actor.Metadata, b.Actor.Metadata}} {
		if !sameJSON(tb, m[0], m[1]) {
			tb.Errorf("metadata=%s, want %s", m[1], m[0])
		}
	}
	a.Event.Metadata, b.Event.Metadata, a.Actor.Metadata, b.Actor.Metadata = nil, nil, nil, nil
	if !a.Timestamp.Equal(b.Timestamp) {
		tb.Errorf("timestamp=%v, want %v", b.Timestamp, a.Timestamp)
	}
	a.Timestamp, b.Timestamp = time.Time{}, time.Time{}
	if !reflect.DeepEqual(a, b) {
		tb.Errorf("event=%+v, want %+v", b, a)
	}
}

func sameJSON(tb testing.TB, a, b []byte) bool {
	tb.Helper()
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		tb.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		tb.Fatalf("unmarshal %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestDecodeEventStructure(t *testing.T) {
	const body = `"event":{"type":"x"},"actor":{"type":"user"}`
	tests := []struct {
		name, raw, field, code string
	}{
		{"empty", ``, "", "json"},
		{"null", `null`, "", "json"},
		{"array", `[{` + body + `}]`, "", "json"},
		{"string", `"event"`, "", "json"},
		{"truncated", `{` + body, "", "json"},
		{"missing value", `{"id":,` + body + `}`, "", "json"},
		{"trailing data", `{` + body + `} {}`, "", "json"},
		{"trailing comma", `{` + body + `,}`, "", "json"},
		{"raw control char", "{\"orgId\":\"a\x01b\"," + body + `}`, "orgId", "json"},
		{"bad literal", `{"orgId":nul,` + body + `}`, "orgId", "json"},
		{"unknown top-level", `{"receivedAt":"2025-06-01T00:00:00Z",` + body + `}`, "receivedAt", "unknown_field"},
		{"output-only createdAt", `{"createdAt":"2025-06-01T00:00:00Z",` + body + `}`, "createdAt", "unknown_field"},
		{"output-only expiresAt", `{"expiresAt":"2025-06-01T00:00:00Z",` + body + `}`, "expiresAt", "unknown_field"},
		{"wrong case key", `{"Event":{"type":"x"},"actor":{"type":"user"}}`, "Event", "unknown_field"},
		{"wrong case key leaves event missing", `{"Event":{"type":"x"},"actor":{"type":"user"}}`, "event", "required"},
		{"escaped wrong case", `{"\u0045vent":{"type":"x"},"actor":{"type":"user"}}`, "Event", "unknown_field"},
		{"unknown in event", `{"event":{"type":"x","Type":"y"},"actor":{"type":"user"}}`, "event.Type", "unknown_field"},
		{"unknown in actor", `{"event":{"type":"x"},"actor":{"type":"user","foo":1}}`, "actor.foo", "unknown_field"},
		{"unknown in resource", `{` + body + `,"resource":{"type":"secret","kind":"x"}}`, "resource.kind", "unknown_field"},
		{"duplicate id", `{"id":"0190a3f2-7b1c-7d3e-8f00-1234567890ab","id":"0190a3f2-7b1c-7d3e-8f00-1234567890ac",` + body + `}`, "id", "duplicate_field"},
		{"duplicate event.type", `{"event":{"type":"x","type":"y"},"actor":{"type":"user"}}`, "event.type", "duplicate_field"},
		{"event number", `{"event":5,"actor":{"type":"user"}}`, "event", "type"},
		{"event array", `{"event":[],"actor":{"type":"user"}}`, "event", "type"},
		{"event malformed", `{"event":{"type" "x"},"actor":{"type":"user"}}`, "event", "json"},
		{"timestamp number", `{"timestamp":7,` + body + `}`, "timestamp", "type"},
		{"id object", `{"id":{},` + body + `}`, "id", "type"},
		{"invalid utf8 top", "{\"projectName\":\"caf\xe9\"," + body + `}`, "projectName", "utf8"},
		{"invalid utf8 metadata", "{\"event\":{\"type\":\"x\",\"metadata\":{\"a\":\"\xff\"}},\"actor\":{\"type\":\"user\"}}", "event.metadata", "utf8"},
		{"invalid utf8 key", "{\"\xc0\":1," + body + `}`, "", "utf8"},
		{"lone surrogate escape", `{"event":{"type":"x","metadata":{"a":"\udc00"}},"actor":{"type":"user"}}`, "event.metadata", "utf8"},
		{"lone high surrogate", `{"orgId":"\ud800x",` + body + `}`, "orgId", "utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOne(t, []byte(tt.raw), tt.field, tt.code)
		})
	}
}

func TestDecodeEventNullIsAbsent(t *testing.T) {
	raw := `{"id":null,"timestamp":null,"event":{"type":"x","metadata":null},"actor":{"type":"user","metadata":null},
	 "orgId":null,"resource":null,"ipAddress":null,"userAgentType":null,"traceId":null}`
	ev := mustDecode(t, []byte(raw))
	if ev.ID != "" || !ev.Timestamp.IsZero() || ev.Resource != nil || ev.Event.Metadata != nil || ev.Actor.Metadata != nil {
		t.Errorf("event=%+v, want null fields absent", ev)
	}
}

func TestDecodeEventDeepNesting(t *testing.T) {
	const n = 100_000
	open, closeB := strings.Repeat("[", n), strings.Repeat("]", n)
	objs := strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
	huge := DefaultLimits()
	huge.MaxMetadataBytes = 1 << 30
	tests := []struct {
		name, raw   string
		lim         Limits
		field, code string
	}{
		{"unbalanced arrays", `{"event":{"type":"x","metadata":` + open, DefaultLimits(), "", "json"},
		{"balanced arrays in metadata", `{"event":{"type":"x","metadata":` + open + closeB + `},"actor":{"type":"user"}}`, DefaultLimits(), "event.metadata", "type"},
		{"objects in metadata", `{"event":{"type":"x","metadata":` + objs + `},"actor":{"type":"user"}}`, DefaultLimits(), "event.metadata", "too_large"},
		{"objects in metadata, no size limit", `{"event":{"type":"x","metadata":` + objs + `},"actor":{"type":"user"}}`, huge, "event.metadata", "too_deep"},
		{"objects in actor metadata, no size limit", `{"event":{"type":"x"},"actor":{"type":"user","metadata":` + objs + `}}`, huge, "actor.metadata", "too_deep"},
		{"unbalanced objects, no size limit", `{"event":{"type":"x","metadata":` + strings.Repeat(`{"a":`, n) + `1}},"actor":{"type":"user"}}`, huge, "", "json"},
		{"arrays in unknown field", `{"x":` + open + closeB + `,"event":{"type":"x"},"actor":{"type":"user"}}`, DefaultLimits(), "x", "unknown_field"},
		{"arrays in orgId", `{"orgId":` + open + closeB + `,"event":{"type":"x"},"actor":{"type":"user"}}`, DefaultLimits(), "orgId", "type"},
		{"bare arrays", open + closeB, DefaultLimits(), "", "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := DecodeEvent([]byte(tt.raw), 0, tt.lim, testNow)
			if len(errs) != 1 || errs[0].Field != tt.field || errs[0].Code != tt.code {
				t.Errorf("errors %v: want field=%q, code=%q", errs, tt.field, tt.code)
			}
		})
	}
}

func TestDecodeEventErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"event":{"type":"x"},"actor":{"type":"user"}`)
	for i := range 10_000 {
		b.WriteString(`,"k`)
		b.WriteString(strings.Repeat("x", i%50))
		b.WriteString(`":1`)
	}
	b.WriteString("}")
	_, errs := DecodeEvent([]byte(b.String()), 0, DefaultLimits(), testNow)
	if len(errs) != maxErrorsPerEvent {
		t.Errorf("errors=%d, want %d", len(errs), maxErrorsPerEvent)
	}
}

func TestActorIdentity(t *testing.T) {
	tests := []struct {
		actor Actor
		want  ActorIdentity
	}{
		{Actor{Type: "user", Metadata: json.RawMessage(`{"userId":"u1","email":"a@b.c","username":"ann","name":"Ann"}`)},
			ActorIdentity{ID: "u1", Email: "a@b.c", Username: "ann", Name: "Ann"}},
		{Actor{Type: "service", Metadata: json.RawMessage(`{"serviceId":"s1","name":"svc"}`)}, ActorIdentity{ID: "s1", Name: "svc"}},
		{Actor{Type: "identity", Metadata: json.RawMessage(`{"userId":"","identityId":"i1"}`)}, ActorIdentity{ID: "i1"}},
		{Actor{Type: "apiKey", Metadata: json.RawMessage(`{"keyId":"k1"}`)}, ActorIdentity{ID: "k1"}},
		{Actor{Type: "user", Metadata: json.RawMessage(`{"keyId":"k1"}`)}, ActorIdentity{}},
		{Actor{Type: "user", Metadata: json.RawMessage(`{"userId":"caf\u00e9"}`)}, ActorIdentity{ID: "café"}},
		{Actor{Type: "user", Metadata: json.RawMessage(`{"userId":5,"email":null}`)}, ActorIdentity{}},
		{Actor{Type: "platform"}, ActorIdentity{}},
		{Actor{Type: "user", Metadata: json.RawMessage(`not json`)}, ActorIdentity{}},
	}
	for _, tt := range tests {
		if got := tt.actor.Identity(); got != tt.want {
			t.Errorf("Identity(%s)=%+v, want %+v", tt.actor.Metadata, got, tt.want)
		}
	}
}

func TestNewEventID(t *testing.T) {
	a, b := NewEventID(), NewEventID()
	if a == b {
		t.Fatalf("ids equal: %s", a)
	}
	for _, id := range []string{a, b} {
		ev := mustDecode(t, []byte(`{"id":"`+id+`","event":{"type":"x"},"actor":{"type":"user"}}`))
		if ev.ID != id || id[14] != '7' {
			t.Errorf("id=%q, want a lowercase v7 UUID", id)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{seedEvent, fullEvent, `{}`, `null`, `{"event":{"type":"a.b"},"actor":{"type":"user"}}`,
		`{"event":{"type":"x","metadata":{"a":[{"b":"\ud83d\ude00"}]}},"actor":{"type":"service","metadata":{"serviceId":"s"}},"resource":{"type":"t"}}`,
		"{\"orgId\":\"\xff\"}", `{"id":"{0190a3f2-7b1c-7d3e-8f00-1234567890ab}"}`, `{"timestamp":"2025-06-01T12:00:00Z","ipAddress":"fe80::1%eth0"}`} {
		f.Add([]byte(s))
	}
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, errs := DecodeEvent(raw, 3, lim, testNow)
		for _, e := range errs {
			if e.Index != 3 || e.Code == "" || e.Message == "" {
				t.Fatalf("bad FieldError %+v", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		if ev.Timestamp.IsZero() {
			ev.Timestamp = testNow
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal accepted event: %v", err)
		}
		ev2, errs := DecodeEvent(out, 3, lim, testNow)
		if len(errs) > 0 {
			t.Fatalf("accepted event %s re-encoded as %s does not re-validate: %v", raw, out, errs)
		}
		assertSameEvent(t, ev, ev2)
		_ = ev.Actor.Identity()
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	raw := []byte(`{"id":"0190a3f2-7b1c-7d3e-8f00-1234567890ab","timestamp":"2025-06-01T11:59:30.123Z",` +
		`"event":{"type":"get-secrets","metadata":{"secretPath":"/backend/db","environment":"prod","numberOfSecrets":3}},` +
		`"actor":{"type":"user","metadata":{"email":"jane@example.com","userId":"5b0f7c1e-2d3a-4b5c-9d8e-7f6a5b4c3d2e","username":"jane","permission":{"metadata":{},"auth":{}}}},` +
		`"orgId":"7f1c0b9e-6a55-4c43-9d1e-0a3b5c7d9e11","projectId":"c2d4e6f8-1a3b-4c5d-8e9f-0a1b2c3d4e5f","projectName":"payments-api",` +
		`"resource":{"type":"secret","id":"sec_01HZX3","name":"DB_PASSWORD"},"ipAddress":"203.0.113.7",` +
		`"userAgent":"Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0","userAgentType":"web","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}`)
	lim := DefaultLimits()
	mustDecode(b, raw)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := DecodeEvent(raw, 0, lim, testNow); errs != nil {
			b.Fatal(errs)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
