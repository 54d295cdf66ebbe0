package console

import (
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerHeaders(t *testing.T) {
	for _, c := range []struct {
		name      string
		cfg       Config
		ancestors string
		xfo       string
	}{
		{"default", DefaultConfig(), "frame-ancestors 'none'", "DENY"},
		{"embeddable", Config{FrameAncestors: []string{"https://app.example.com", "'self'"}}, "frame-ancestors https://app.example.com 'self'", ""},
	} {
		h, err := New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/", "/assets/app.js", "/assets/style.css", "/console-config.json"} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
			csp := w.Header().Get("Content-Security-Policy")
			if w.Code != 200 || !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe") ||
				!strings.HasSuffix(csp, c.ancestors) || w.Header().Get("X-Frame-Options") != c.xfo {
				t.Errorf("%s %s: %d csp=%q xfo=%q", c.name, path, w.Code, csp, w.Header().Get("X-Frame-Options"))
			}
		}
	}
}

func TestHandlerFiles(t *testing.T) {
	h, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for path, code := range map[string]int{"/assets/../console.go": 404, "/index.html": 404, "/assets/index.html": 404,
		"/assets/nope.js": 404, "/v1/events": 404, "/assets/log.js": 200} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != code {
			t.Errorf("GET %s: %d, want %d", path, w.Code, code)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	if w.Code != 405 {
		t.Errorf("POST /: %d, want 405", w.Code)
	}
	// gzip when asked, the same bytes once decompressed.
	plain := httptest.NewRecorder()
	h.ServeHTTP(plain, httptest.NewRequest("GET", "/assets/log.js", nil))
	req := httptest.NewRequest("GET", "/assets/log.js", nil)
	req.Header.Set("Accept-Encoding", "br, gzip")
	zw := httptest.NewRecorder()
	h.ServeHTTP(zw, req)
	if zw.Header().Get("Content-Encoding") != "gzip" || zw.Body.Len() >= plain.Body.Len() {
		t.Fatalf("gzip: encoding %q, %d bytes vs %d", zw.Header().Get("Content-Encoding"), zw.Body.Len(), plain.Body.Len())
	}
	r, err := gzip.NewReader(zw.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if string(b) != plain.Body.String() || plain.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("gzip body differs, or type %q", plain.Header().Get("Content-Type"))
	}
}

// TestHandlerRevalidates: a file asked again with its ETag is a 304 without
// a body; another ETag gets the file.
func TestHandlerRevalidates(t *testing.T) {
	h, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/assets/app.js"} {
		first := httptest.NewRecorder()
		h.ServeHTTP(first, httptest.NewRequest("GET", path, nil))
		etag := first.Header().Get("ETag")
		if first.Code != 200 || !strings.HasPrefix(etag, `W/"`) {
			t.Fatalf("GET %s: %d, ETag %q", path, first.Code, etag)
		}
		for inm, code := range map[string]int{etag: 304, strings.TrimPrefix(etag, "W/"): 304, `"other", ` + etag: 304, `"other"`: 200} {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("If-None-Match", inm)
			req.Header.Set("Accept-Encoding", "gzip")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != code || (code == 304 && w.Body.Len() != 0) {
				t.Errorf("GET %s If-None-Match %s: %d with %d bytes, want %d", path, inm, w.Code, w.Body.Len(), code)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{FrameAncestors: []string{"*"}},
		{FrameAncestors: []string{"https://a.example.com; script-src *"}},
		{FrameAncestors: []string{"https://a.example.com/path"}},
		{FrameAncestors: []string{"javascript:x"}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", c)
		}
	}
	ok := Config{FrameAncestors: []string{"https://app.example.com:8443", "'self'"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}
