package stream

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// violation is a request that breaks the destination's wire format; the
// fake answers it with status.
type violation struct {
	status int
	msg    string
}

func (v *violation) Error() string { return v.msg }

func bad(format string, args ...any) *violation {
	return &violation{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// fake is a destination that checks one provider's wire format strictly
// (method, path, headers, credentials, body shape, limits) and keeps the
// records it accepted, in arrival order.
type fake struct {
	srv      *httptest.Server
	parse    func(r *http.Request, raw, body []byte) ([]map[string]any, *violation)
	okStatus int
	okBody   string
	// fault, when set, may answer request n itself (returning true); it may
	// call accept first, to play a destination that took the batch but
	// whose answer was lost.
	fault func(n int, w http.ResponseWriter, r *http.Request, recs []map[string]any) bool

	mu         sync.Mutex
	requests   int
	arrivals   []time.Time
	ids        []string
	orgs       []string
	violations []string
	batches    []int
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	body := raw
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			body = nil
		}
	}
	f.mu.Lock()
	n := f.requests
	f.requests++
	f.arrivals = append(f.arrivals, time.Now())
	f.mu.Unlock()
	recs, v := f.parse(r, raw, body)
	if f.fault != nil && f.fault(n, w, r, recs) {
		return
	}
	if v != nil {
		f.mu.Lock()
		if v.status == http.StatusBadRequest {
			f.violations = append(f.violations, v.msg)
		}
		f.mu.Unlock()
		http.Error(w, v.msg, v.status)
		return
	}
	f.accept(recs)
	w.WriteHeader(f.okStatus)
	_, _ = io.WriteString(w, f.okBody)
}

func (f *fake) accept(recs []map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rec := range recs {
		f.ids = append(f.ids, rec["id"].(string))
		f.orgs = append(f.orgs, rec["orgId"].(string))
	}
	f.batches = append(f.batches, len(recs))
}

// received returns the ids accepted so far, in order.
func (f *fake) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids)
}

func (f *fake) distinct() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	for _, id := range f.ids {
		seen[id] = true
	}
	return len(seen)
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *fake) checkClean(tb testing.TB) {
	tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.violations) > 0 {
		tb.Fatalf("%d wire format violations, first: %s", len(f.violations), f.violations[0])
	}
	for _, o := range f.orgs {
		if o != f.orgs[0] {
			tb.Fatalf("records of orgs %q and %q reached one stream", f.orgs[0], o)
		}
	}
}

// serve starts f over TLS (or plain http) on 127.0.0.1.
func (f *fake) serve(tb testing.TB, tlsOn bool) *fake {
	f.srv = httptest.NewUnstartedServer(f)
	if tlsOn {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	tb.Cleanup(f.srv.Close)
	return f
}

// The record every provider carries: the flat form, and nothing else.
var (
	recordRequired = []string{"id", "actor", "actorMetadata", "ipAddress", "eventType", "eventMetadata",
		"expiresAt", "createdAt", "updatedAt", "orgId"}
	recordOptional = []string{"userAgent", "userAgentType", "projectId", "projectName", "resource", "traceId", "truncated"}
)

func checkRecord(m map[string]any) *violation {
	for _, k := range recordRequired {
		if _, ok := m[k]; !ok {
			return bad("record lacks %q", k)
		}
	}
	for k := range m {
		if !slices.Contains(recordRequired, k) && !slices.Contains(recordOptional, k) {
			return bad("record has unexpected field %q", k)
		}
	}
	for _, k := range []string{"actorMetadata", "eventMetadata"} {
		if _, ok := m[k].(map[string]any); !ok {
			return bad("%s is not an object", k)
		}
	}
	for _, k := range []string{"expiresAt", "createdAt", "updatedAt"} {
		s, _ := m[k].(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") {
			return bad("%s %q is not an RFC 3339 UTC time", k, s)
		}
	}
	return nil
}

// checkPost checks the method, path and content type common to all.
func checkPost(r *http.Request, path string, gz bool) *violation {
	switch {
	case r.Method != http.MethodPost:
		return bad("method %s, want POST", r.Method)
	case r.URL.Path != path:
		return bad("path %q, want %q", r.URL.Path, path)
	case gz && r.Header.Get("Content-Encoding") != "gzip":
		return bad("Content-Encoding %q, want gzip", r.Header.Get("Content-Encoding"))
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		return bad("Content-Type %q, want application/json", r.Header.Get("Content-Type"))
	}
	return nil
}

// jsonArray decodes a JSON array body, checking counts and sizes.
func jsonArray(body []byte, maxEvents, maxBytes, maxItem int) ([]map[string]any, *violation) {
	if len(body) > maxBytes {
		return nil, bad("body of %d bytes, limit %d", len(body), maxBytes)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, bad("body is not a JSON array: %v", err)
	}
	if len(raws) == 0 || len(raws) > maxEvents {
		return nil, bad("%d elements, want 1 to %d", len(raws), maxEvents)
	}
	out := make([]map[string]any, len(raws))
	for i, raw := range raws {
		if len(raw) > maxItem {
			return nil, bad("element of %d bytes, limit %d", len(raw), maxItem)
		}
		if err := json.Unmarshal(raw, &out[i]); err != nil || out[i] == nil {
			return nil, bad("element %d is not an object", i)
		}
	}
	return out, nil
}

// take removes key from m and returns its value.
func take(m map[string]any, key string) any {
	v := m[key]
	delete(m, key)
	return v
}

// newDatadog fakes the Datadog logs intake v2.
func newDatadog(tb testing.TB, apiKey string) *fake {
	f := &fake{okStatus: http.StatusAccepted, okBody: "{}"}
	f.parse = func(r *http.Request, _, body []byte) ([]map[string]any, *violation) {
		if v := checkPost(r, "/api/v2/logs", true); v != nil {
			return nil, v
		}
		if r.Header.Get("DD-API-KEY") != apiKey {
			return nil, &violation{status: http.StatusForbidden, msg: "invalid API key"}
		}
		els, v := jsonArray(body, 1000, 5_000_000, 1_000_000)
		if v != nil {
			return nil, v
		}
		for _, e := range els {
			if take(e, "ddsource") != "auditstore" || take(e, "hostname") != "test-host" {
				return nil, bad("ddsource or hostname missing")
			}
			if s, _ := take(e, "service").(string); s == "" {
				return nil, bad("service missing")
			}
			if s, _ := take(e, "message").(string); s == "" {
				return nil, bad("message missing")
			}
			take(e, "ddtags")
			if v := checkRecord(e); v != nil {
				return nil, v
			}
		}
		return els, nil
	}
	return f.serve(tb, true)
}

// newSplunk fakes the HTTP Event Collector.
func newSplunk(tb testing.TB, token string) *fake {
	f := &fake{okStatus: http.StatusOK, okBody: `{"text":"Success","code":0}`}
	f.parse = func(r *http.Request, _, body []byte) ([]map[string]any, *violation) {
		if v := checkPost(r, "/services/collector/event", false); v != nil {
			return nil, v
		}
		if r.Header.Get("Authorization") != "Splunk "+token {
			return nil, &violation{status: http.StatusUnauthorized, msg: `{"text":"Invalid token","code":4}`}
		}
		if len(body) > 1_000_000 {
			return nil, bad("body of %d bytes over 1 MB", len(body))
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var out []map[string]any
		for {
			var e map[string]any
			if err := dec.Decode(&e); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, bad("not a sequence of event objects: %v", err)
			}
			if _, ok := take(e, "time").(json.Number); !ok {
				return nil, bad("time is not epoch seconds")
			}
			if take(e, "host") != "test-host" {
				return nil, bad("host missing")
			}
			for _, k := range []string{"source", "sourcetype"} {
				if s, _ := take(e, k).(string); s == "" {
					return nil, bad("%s missing", k)
				}
			}
			take(e, "index")
			ev, ok := take(e, "event").(map[string]any)
			if !ok || len(e) != 0 {
				return nil, bad("want exactly time, host, source, sourcetype, index and event; extra %v", e)
			}
			if v := checkRecord(ev); v != nil {
				return nil, v
			}
			out = append(out, ev)
		}
		if len(out) == 0 || len(out) > 1000 {
			return nil, bad("%d events in one request", len(out))
		}
		return out, nil
	}
	return f.serve(tb, true)
}

// newCribl fakes a Cribl HTTP source's bulk endpoint.
func newCribl(tb testing.TB, token string) *fake {
	f := &fake{okStatus: http.StatusOK, okBody: ""}
	f.parse = func(r *http.Request, _, body []byte) ([]map[string]any, *violation) {
		if v := checkPost(r, "/cribl/_bulk", true); v != nil {
			return nil, v
		}
		if r.Header.Get("Authorization") != token {
			return nil, &violation{status: http.StatusUnauthorized, msg: "Unauthorized"}
		}
		if len(body) > 2_000_000 {
			return nil, bad("body of %d bytes over 2 MB", len(body))
		}
		var out []map[string]any
		for _, line := range bytes.Split(body, []byte("\n")) {
			var e map[string]any
			if err := json.Unmarshal(line, &e); err != nil {
				return nil, bad("line is not a JSON record: %v", err)
			}
			if _, ok := take(e, "_time").(float64); !ok {
				return nil, bad("_time missing")
			}
			rawRec, ok := take(e, "_raw").(string)
			if !ok || take(e, "host") != "test-host" || take(e, "source") != "auditstore" || len(e) != 0 {
				return nil, bad("want _time, _raw, host and source only")
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(rawRec), &rec); err != nil {
				return nil, bad("_raw is not the record's JSON")
			}
			if v := checkRecord(rec); v != nil {
				return nil, v
			}
			out = append(out, rec)
		}
		if len(out) > 1000 {
			return nil, bad("%d events in one request", len(out))
		}
		return out, nil
	}
	return f.serve(tb, true)
}

// newCustom fakes an HTTPS endpoint that wants one header.
func newCustom(tb testing.TB, header, value string, tlsOn bool) *fake {
	f := &fake{okStatus: http.StatusOK, okBody: "ok"}
	f.parse = func(r *http.Request, _, body []byte) ([]map[string]any, *violation) {
		if v := checkPost(r, "/hook", false); v != nil {
			return nil, v
		}
		if r.Header.Get(header) != value {
			return nil, &violation{status: http.StatusUnauthorized, msg: "unauthorized"}
		}
		els, v := jsonArray(body, 500, 1<<20, 1<<20)
		if v != nil {
			return nil, v
		}
		for _, e := range els {
			if v := checkRecord(e); v != nil {
				return nil, v
			}
		}
		return els, nil
	}
	return f.serve(tb, tlsOn)
}

// blackHole accepts TCP connections and never answers.
func blackHole(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}
