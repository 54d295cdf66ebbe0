package stream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Custom: any HTTPS endpoint (Better Stack, a webhook, a collector).
//
//	POST <url>
//	Content-Type: application/json, plus the stream's headers (e.g. Authorization: Bearer ...)
//	[{<record>}, ...]
//
// Requests stay under 1 MiB and 500 events; any 2xx is success. Every
// header value counts as a credential: all are masked, none is logged.
// Everything after the URL's host counts as one too (Slack- and
// Teams-style webhooks carry their secret in the path): answers show
// https://host/****.
type customConfig struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")

// reservedHeaders are set by the transport or by the stream itself.
var reservedHeaders = []string{"Host", "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding",
	"Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Expect"}

func (c *customConfig) check(ctx context.Context, g guard) error {
	u, err := g.checkURL(ctx, strings.TrimSpace(c.URL), "url")
	if err != nil {
		return err
	}
	c.URL = u.String()
	if len(c.Headers) > maxHeaders {
		return fieldError("headers", "too_many", "at most 20 headers")
	}
	canon := make(map[string]string, len(c.Headers))
	for k, v := range c.Headers {
		if !headerName.MatchString(k) {
			return fieldError("headers", "invalid", "header names must be HTTP tokens (letters, digits, '-')")
		}
		if slices.Contains(reservedHeaders, http.CanonicalHeaderKey(k)) {
			return fieldError("headers", "reserved", http.CanonicalHeaderKey(k)+" is set by the stream itself")
		}
		if len(v) > maxHeaderBytes || strings.ContainsAny(v, "\r\n\x00") || hasControl(strings.ReplaceAll(v, "\t", " ")) {
			return fieldError("headers", "invalid", "header "+http.CanonicalHeaderKey(k)+" has an invalid value (control characters, or over 4 KiB)")
		}
		if _, dup := canon[http.CanonicalHeaderKey(k)]; dup {
			return fieldError("headers", "duplicate", "header "+http.CanonicalHeaderKey(k)+" is given twice")
		}
		canon[http.CanonicalHeaderKey(k)] = v
	}
	c.Headers = canon
	if len(canon) == 0 {
		c.Headers = nil
	}
	return nil
}

func (c *customConfig) masked() any {
	m := customConfig{URL: maskURL(c.URL)}
	if len(c.Headers) > 0 {
		m.Headers = map[string]string{}
		for k, v := range c.Headers {
			m.Headers[k] = mask(v)
		}
	}
	return m
}

// maskURL keeps a URL's scheme and host (with its port) and masks the
// rest: path and query may carry a credential.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "****"
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		out += "/****"
	}
	return out
}

func (c *customConfig) keepSecrets(old destConfig) {
	o, ok := old.(*customConfig)
	if !ok {
		return
	}
	olds := map[string]string{}
	for k, v := range o.Headers {
		olds[http.CanonicalHeaderKey(k)] = v
	}
	for k, v := range c.Headers {
		if ov, ok := olds[http.CanonicalHeaderKey(k)]; ok {
			c.Headers[k] = keep(v, ov)
		}
	}
	if c.URL == maskURL(o.URL) {
		c.URL = o.URL
	}
}

// secrets are the header values, and the words of those with several (the
// token of "Bearer <token>"), and what follows the URL's host: the whole,
// each path segment and each query value.
func (c *customConfig) secrets() []string {
	var out []string
	for _, v := range c.Headers {
		out = append(out, v)
		if f := strings.Fields(v); len(f) > 1 {
			for _, w := range f {
				if len(w) >= 8 {
					out = append(out, w)
				}
			}
		}
	}
	if u, err := url.Parse(c.URL); err == nil {
		if rest := strings.TrimPrefix(c.URL, u.Scheme+"://"+u.Host); len(rest) > 1 {
			out = append(out, rest, u.EscapedPath(), u.RawQuery)
		}
		for _, seg := range strings.Split(u.EscapedPath(), "/") {
			out = append(out, seg)
			if us, err := url.PathUnescape(seg); err == nil {
				out = append(out, us)
			}
		}
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	return slices.DeleteFunc(out, func(s string) bool { return len(s) < 4 }) // too short to scrub
}

func (c *customConfig) target() (string, []string) { return c.URL, []string{"headers"} }

func (c *customConfig) open(*env) provider {
	return &custom{url: c.URL, headers: c.Headers}
}

type custom struct {
	url     string
	headers map[string]string
}

func (c *custom) wire() wire {
	return wire{maxEvents: 500, maxBytes: 1 << 20, maxItem: 1 << 20, open: "[", sep: ",", close: "]"}
}

func (c *custom) element(buf []byte, _ *row, rec *record) []byte {
	b, _ := json.Marshal(rec)
	return append(buf, b...)
}

func (c *custom) request(ctx context.Context, body []byte) (*http.Request, error) {
	req, err := post(ctx, c.url, body, false, "application/json")
	if err != nil {
		return nil, err
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	return req, nil
}

func (c *custom) unauthorized() bool { return false }
