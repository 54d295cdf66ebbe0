// Package client is the Go client of the auditstore HTTP API.
//
// A Client reads (filtered pages, cursor iteration, single events,
// timelines, the event-type catalog, aggregates, exports) and manages orgs,
// keys and streams. A Producer, made with NewProducer, sends events: it
// batches them in the background, compresses the batches, gives every event
// an id so that retries are idempotent, retries what the server could not
// take yet (429, 503, network errors) and reports what it refused (400,
// 413) with the index of the failing event. With a spool directory, what
// Send accepted survives a restart of the producer.
//
// The package imports only the standard library and two small modules
// (UUIDs and zstd), so that services outside this repository can use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the server, e.g. "http://127.0.0.1:8080".
	BaseURL string
	// Key is the API key (or the operator's admin token) sent as a bearer
	// token with every request.
	Key string
	// HTTPClient sends the requests; nil means a client without a timeout
	// (exports may stream for long), cancelled through the context.
	HTTPClient *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// DefaultConfig returns a Config for a server on base with key.
func DefaultConfig(base, key string) Config {
	return Config{BaseURL: base, Key: key, UserAgent: "auditstore-go-client"}
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("client: base URL %q: want a URL like http://127.0.0.1:8080", c.BaseURL)
	}
	if c.Key == "" {
		return errors.New("client: no API key")
	}
	return nil
}

// Client calls the auditstore API with one key. It is safe for concurrent
// use.
type Client struct {
	cfg  Config
	base string
	http *http.Client
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), http: hc}, nil
}

// APIError is an error answer of the server, in its JSON shape
// {"error":{"code","message","details"}}.
type APIError struct {
	Status  int      // the HTTP status
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []Detail `json:"details,omitempty"`
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration `json:"-"`
}

// Detail names one problem: of one event (Index, Line) and field, or of a
// query parameter (Field, Index -1).
type Detail struct {
	Index   int    `json:"index"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server answered %d %s: %s", e.Status, e.Code, e.Message)
	for _, d := range e.Details {
		b.WriteString("\n  ")
		if d.Index >= 0 && d.Field != "" && d.Code != "unknown_parameter" && d.Code != "invalid_parameter" {
			fmt.Fprintf(&b, "event %d: ", d.Index)
		}
		fmt.Fprintf(&b, "%s: %s (%s)", d.Field, d.Message, d.Code)
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later: 429, 503
// and the other 5xx answers.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// request is one API call.
type request struct {
	method string
	path   string // escaped path, e.g. "/v1/events"
	query  url.Values
	body   io.Reader
	header http.Header
}

// do sends r and returns the answer when its status is one of ok; any
// other answer becomes an *APIError (or a plain error for a non-API answer).
func (c *Client) do(ctx context.Context, r request, ok ...int) (*http.Response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, r.body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, readError(resp)
}

// readError turns a non-success answer into an error.
func readError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var wrapped struct {
		Error APIError `json:"error"`
	}
	ra := retryAfter(resp.Header.Get("Retry-After"), time.Now())
	if json.Unmarshal(body, &wrapped) == nil && wrapped.Error.Code != "" {
		wrapped.Error.Status, wrapped.Error.RetryAfter = resp.StatusCode, ra
		return &wrapped.Error
	}
	return &APIError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode),
		Message: fmt.Sprintf("%.200s", bytes.TrimSpace(body)), RetryAfter: ra}
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// getJSON sends GET path?q and decodes a 200 answer into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	return c.callJSON(ctx, http.MethodGet, path, q, nil, v, http.StatusOK)
}

// callJSON sends a JSON body (when in is not nil) and decodes the answer
// into out (when not nil).
func (c *Client) callJSON(ctx context.Context, method, path string, q url.Values, in, out any, ok ...int) error {
	r := request{method: method, path: path, query: q}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
		r.body = bytes.NewReader(b)
		r.header = http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := c.do(ctx, r, ok...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("unreadable answer from the server: %w", err)
	}
	return nil
}
