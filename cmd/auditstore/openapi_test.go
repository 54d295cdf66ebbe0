package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/internal/openapi"
	"github.com/auditstore/auditstore/internal/servertest"
)

const specFile = "internal/openapi/openapi.json"

// specOperations returns the described operations: path → methods.
func specOperations(t *testing.T) map[string]map[string]bool {
	t.Helper()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.JSON, &doc); err != nil {
		t.Fatalf("%s: %v", specFile, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("%s: openapi %q, want 3.1.x", specFile, doc.OpenAPI)
	}
	ops := map[string]map[string]bool{}
	for path, item := range doc.Paths {
		ops[path] = map[string]bool{}
		for m := range item {
			switch m {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				ops[path][strings.ToUpper(m)] = true
			}
		}
	}
	return ops
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPICoversEveryRoute checks that every route the server's router
// registers is described, and that nothing described is missing from it.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	r := newRouter(slog.New(slog.DiscardHandler), newHealth(nil, nil, ""), prometheus.NewRegistry(), routes{access: access{metricsOnMain: true}})
	ops := specOperations(t)
	registered := map[string]bool{}
	for _, rt := range r.Routes() {
		path := ginParam.ReplaceAllString(rt.Path, "{$1}")
		registered[rt.Method+" "+path] = true
		if !ops[path][rt.Method] {
			t.Errorf("route %s %s (gin %s) is not described in %s: add paths[%q].%s",
				rt.Method, path, rt.Path, specFile, path, strings.ToLower(rt.Method))
		}
	}
	if len(registered) < 20 {
		t.Fatalf("the router registers %d routes; the check would prove little", len(registered))
	}
	for path, methods := range ops {
		for m := range methods {
			if !registered[m+" "+path] {
				t.Errorf("%s describes %s %s, which the server does not register", specFile, m, path)
			}
		}
	}
}

// TestOpenAPIDocumentIsValid checks the document against the OpenAPI 3.1
// schema.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	v := newSpecValidator(t)
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("%s: %v", specFile, e)
		}
	}
}

func newSpecValidator(t *testing.T) validator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(openapi.JSON)
	if err != nil {
		t.Fatalf("%s: %v", specFile, err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", specFile, errs)
	}
	return v
}

// checker sends requests to a real server and validates each request and
// answer against the description; it records which operations were seen.
type checker struct {
	t    *testing.T
	s    *servertest.Server
	v    validator.Validator
	ops  map[string]map[string]bool
	mu   sync.Mutex
	seen map[string]bool // "METHOD path status"
}

type callOpt struct {
	header   []string
	encoding string // gzip or zstd: compress the body (the request body is then not validated)
	// invalid marks a request that breaks the description on purpose:
	// only the answer is validated.
	invalid bool
}

func (c *checker) call(method, path, token string, body []byte, want int, o callOpt) []byte {
	c.t.Helper()
	sent := body
	switch o.encoding {
	case "gzip":
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		_ = zw.Close()
		sent = b.Bytes()
	case "zstd":
		zw, _ := zstd.NewWriter(nil)
		sent = zw.EncodeAll(body, nil)
	}
	req, err := http.NewRequest(method, c.s.Base+path, bytes.NewReader(sent))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil && o.encoding == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.encoding != "" {
		req.Header.Set("Content-Encoding", o.encoding)
	}
	for i := 0; i+1 < len(o.header); i += 2 {
		req.Header.Set(o.header[i], o.header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, out, want)
	}
	// Validate with the body as the client meant it.
	vreq, _ := http.NewRequest(method, c.s.Base+path, bytes.NewReader(body))
	vreq.Header = req.Header.Clone()
	vreq.Header.Del("Content-Encoding")
	resp.Body = io.NopCloser(bytes.NewReader(out))
	var verrs []error
	validate := c.v.ValidateHttpRequestResponse
	if o.encoding != "" || o.invalid {
		validate = c.v.ValidateHttpResponse // the request body is compressed, or wrong on purpose
	}
	if _, vs := validate(vreq, resp); len(vs) > 0 {
		for _, e := range vs {
			verrs = append(verrs, e)
		}
	}
	if len(verrs) > 0 {
		c.t.Errorf("%s %s → %d does not match %s:\n%v\nbody: %.500s", method, path, resp.StatusCode, specFile, verrs, out)
	}
	c.mu.Lock()
	c.seen[method+" "+c.template(req.URL.Path)+" "+fmt.Sprint(resp.StatusCode)] = true
	c.mu.Unlock()
	return out
}

// template finds the described path a request path matches.
func (c *checker) template(p string) string {
	segs := strings.Split(p, "/")
	for tpl := range c.ops {
		ts := strings.Split(tpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		match := true
		for i := range ts {
			if ts[i] != segs[i] && !(strings.HasPrefix(ts[i], "{") && segs[i] != "") {
				match = false
				break
			}
		}
		if match {
			return tpl
		}
	}
	return p
}
