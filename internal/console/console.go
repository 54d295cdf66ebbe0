// Package console serves the web console: a page of plain HTML, CSS and
// JavaScript (no build step, no framework) embedded in the binary. The
// console is a client of the public API and nothing more: it signs in with
// an API key or a viewer session and calls the same endpoints curl does.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

//go:embed assets
var assets embed.FS

// Config configures the console.
type Config struct {
	// FrameAncestors are the origins allowed to embed the console in a
	// frame (the CSP frame-ancestors directive), e.g.
	// "https://app.example.com", or "'self'". Empty: no page may frame it.
	FrameAncestors []string
	// MaxOffset is how deep the API's page mode reaches (its MaxOffset):
	// the console follows the cursor beyond. Default 100,000.
	MaxOffset int
}

// DefaultConfig returns the defaults: not embeddable. (The trace link-out
// is an org setting: tenant, GET /v1/settings.)
func DefaultConfig() Config { return Config{MaxOffset: 100_000} }

// Validate reports a setting that cannot work.
func (c Config) Validate() error {
	for _, a := range c.FrameAncestors {
		if a == "'self'" {
			continue
		}
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" ||
			u.RawQuery != "" || u.User != nil || strings.ContainsAny(a, " ;,'\"") {
			return fmt.Errorf("console: frame ancestor %q is not an origin like https://app.example.com or 'self'", a)
		}
	}
	if c.MaxOffset < 0 {
		return errors.New("console: max offset must not be negative")
	}
	return nil
}

// Handler serves the console's files; mount it at "/".
type Handler struct {
	files   fs.FS
	gz      map[string][]byte // gzip of each file, made once
	etags   map[string]string // a strong validator of each file
	csp     string
	frames  bool
	setting []byte // /console-config.json
}

// New returns the console handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	files, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	anc := "'none'"
	if len(cfg.FrameAncestors) > 0 {
		anc = strings.Join(cfg.FrameAncestors, " ")
	}
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors " + anc
	setting, _ := json.Marshal(map[string]any{"maxOffset": cfg.MaxOffset})
	gz, etags, err := compress(files)
	if err != nil {
		return nil, err
	}
	return &Handler{files: files, gz: gz, etags: etags, csp: csp, frames: len(cfg.FrameAncestors) > 0, setting: setting}, nil
}

// compress gzips every file once, at start, and names its content (ETag).
func compress(files fs.FS) (map[string][]byte, map[string]string, error) {
	out, etags := map[string][]byte{}, map[string]string{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = w.Write(b)
		if err := w.Close(); err != nil {
			return err
		}
		out[name] = buf.Bytes()
		sum := sha256.Sum256(b)
		etags[name] = `"` + hex.EncodeToString(sum[:12]) + `"` // of the content, whatever its encoding
		return nil
	})
	return out, etags, err
}

// matchesETag reports whether an If-None-Match header names etag (a weak
// match, as RFC 9110 asks of If-None-Match; "*" matches too).
func matchesETag(h, etag string) bool {
	for _, part := range strings.Split(h, ",") {
		t := strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// Paths are the paths the handler serves: the page, its files and its
// settings.
func (h *Handler) Paths() []string {
	return []string{"/", "/console-config.json", "/assets/*file"}
}

// ServeHTTP serves one of the console's files.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if !h.frames {
		hd.Set("X-Frame-Options", "DENY")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	switch {
	case name == "" || name == ".":
		name = "index.html"
	case name == "console-config.json":
		hd.Set("Content-Type", "application/json")
		hd.Set("Cache-Control", "no-store")
		_, _ = w.Write(h.setting)
		return
	case !strings.HasPrefix(name, "assets/"):
		http.NotFound(w, r)
		return
	default:
		name = strings.TrimPrefix(name, "assets/")
	}
	b, err := fs.ReadFile(h.files, name)
	if err != nil || name == "index.html" && r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if path.Ext(name) == ".js" {
		ct = "text/javascript; charset=utf-8"
	}
	hd.Set("Content-Type", ct)
	// The files change only with the binary: revalidate, never guess; a
	// revalidation of an unchanged file is a 304 without a body.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Vary", "Accept-Encoding")
	etag := h.etags[name]
	hd.Set("ETag", "W/"+etag) // weak: the same for the gzip and plain forms
	if inm := r.Header.Get("If-None-Match"); inm != "" && matchesETag(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if z, ok := h.gz[name]; ok && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		hd.Set("Content-Encoding", "gzip")
		b = z
	}
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
