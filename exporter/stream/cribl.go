package stream

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// Cribl: the Cribl Stream HTTP/S (Bulk API) Source, its Cribl HTTP event
// API ("Format and Endpoint", https://docs.cribl.io/stream/sources-https/).
//
//	POST https://<ingress>:<port>/<cribl HTTP event API path>/_bulk
//	Authorization: <auth token>           (omitted when the stream has none)
//	Content-Encoding: gzip
//	{"_time": 1700000000.123, "host": ..., "source": "auditstore", "_raw": "<record as JSON>"}
//	{"_time": ...}                        (one JSON record per event, newline-delimited)
//
// _raw, the event's body in Cribl, is the record's JSON text (a Parser
// function or a Splunk destination then sees the audit log line as sent
// elsewhere); _time is the event's time in epoch seconds. Requests stay
// under 2 MB (the source's payload limit) and 1,000 events; any 2xx is
// success.
type criblConfig struct {
	// URL is the source's bulk endpoint, ending in /_bulk, e.g.
	// https://default.main.<org>.cribl.cloud:10080/cribl/_bulk.
	URL   string `json:"url"`
	Token string `json:"token,omitempty"`
}

func (c *criblConfig) check(ctx context.Context, g guard) error {
	u, err := g.checkURL(ctx, strings.TrimSpace(c.URL), "url")
	if err != nil {
		return err
	}
	if !strings.HasSuffix(u.Path, "/_bulk") {
		return fieldError("url", "url", "must be the Cribl HTTP source's bulk endpoint, ending in /_bulk (e.g. https://cribl.example.com:10080/cribl/_bulk)")
	}
	c.URL = u.String()
	if c.Token != "" {
		return checkSecret("token", c.Token)
	}
	return nil
}

func (c *criblConfig) masked() any {
	m := *c
	if c.Token != "" {
		m.Token = mask(c.Token)
	}
	return m
}

func (c *criblConfig) keepSecrets(old destConfig) {
	if o, ok := old.(*criblConfig); ok {
		c.Token = keep(c.Token, o.Token)
	}
}

func (c *criblConfig) secrets() []string { return []string{c.Token} }

func (c *criblConfig) target() (string, []string) { return c.URL, []string{"token"} }

func (c *criblConfig) open(e *env) provider {
	var meta []byte
	meta = append(jsonString(append(meta, `"host":`...), e.hostname), ',')
	meta = append(meta, `"source":"auditstore",`...)
	return &cribl{url: c.URL, token: c.Token, meta: meta}
}

type cribl struct {
	url, token string
	meta       []byte
}

func (c *cribl) wire() wire {
	return wire{maxEvents: 1000, maxBytes: 2_000_000, maxItem: 2_000_000, sep: "\n", gzip: true}
}

func (c *cribl) element(buf []byte, r *row, rec *record) []byte {
	buf = append(buf, `{"_time":`...)
	buf = append(buf, epoch(r.ts)...)
	buf = append(buf, ',')
	buf = append(buf, c.meta...)
	buf = append(buf, `"_raw":`...)
	b, _ := json.Marshal(rec)
	buf = jsonString(buf, string(b))
	return append(buf, '}')
}

func (c *cribl) request(ctx context.Context, body []byte) (*http.Request, error) {
	req, err := post(ctx, c.url, body, true, "application/json")
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", c.token)
	}
	return req, nil
}

func (c *cribl) unauthorized() bool { return false }
