package stream

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
)

// Splunk: the HTTP Event Collector's JSON event endpoint, "Format events
// for HTTP Event Collector" (https://help.splunk.com/splunk-enterprise/
// get-data-in/collect-http-event-data/format-events-for-http-event-collector).
//
//	POST https://<host>:8088/services/collector/event
//	Authorization: Splunk <HEC token>
//	{"time": 1700000000.123, "host": ..., "source": ..., "sourcetype": ..., "index": ..., "event": {<record>}}
//	{"time": ...}                       (one event object per event, batched back to back)
//
// time is the event's time in epoch seconds with milliseconds; host is this
// server; source defaults to "auditstore" and sourcetype to "_json"; index
// is sent only when set (else the token's default index). HEC answers 200
// {"text":"Success","code":0}; a request is kept under 1 MB, the smallest
// HEC body limit in use (Splunk Cloud), and 1,000 events.
type splunkConfig struct {
	// Host is the HEC host, "splunk.example.com" (port 8088),
	// "host:port" (e.g. http-inputs-<stack>.splunkcloud.com:443) or an
	// https:// URL of the HEC root.
	Host       string `json:"host"`
	Token      string `json:"token"`
	Index      string `json:"index,omitempty"`
	Source     string `json:"source,omitempty"`
	Sourcetype string `json:"sourcetype,omitempty"`
}

func (c *splunkConfig) check(ctx context.Context, g guard) error {
	h := strings.TrimSpace(c.Host)
	if h == "" {
		return fieldError("host", "required", "is required")
	}
	raw := h
	if !strings.Contains(h, "://") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "8088")
		}
		raw = "https://" + h
	}
	u, err := g.checkURL(ctx, raw, "host")
	if err != nil {
		return err
	}
	if p := strings.TrimRight(u.Path, "/"); p != "" && p != "/services/collector/event" || u.RawQuery != "" {
		return fieldError("host", "url", "must be a host, host:port or the HEC root URL (the event endpoint is /services/collector/event)")
	}
	c.Host = u.Scheme + "://" + u.Host // stored normalized: the HEC root
	if err := checkSecret("token", c.Token); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"index", c.Index}, {"source", c.Source}, {"sourcetype", c.Sourcetype}} {
		if err := checkText(f.name, f.v, false, 200); err != nil {
			return err
		}
	}
	return nil
}

func (c *splunkConfig) masked() any {
	m := *c
	m.Token = mask(c.Token)
	return m
}

func (c *splunkConfig) keepSecrets(old destConfig) {
	if o, ok := old.(*splunkConfig); ok {
		c.Token = keep(c.Token, o.Token)
	}
}

func (c *splunkConfig) secrets() []string { return []string{c.Token} }

func (c *splunkConfig) target() (string, []string) { return c.Host, []string{"token"} }

func (c *splunkConfig) open(e *env) provider {
	src, st := c.Source, c.Sourcetype
	if src == "" {
		src = "auditstore"
	}
	if st == "" {
		st = "_json"
	}
	var meta []byte
	meta = append(jsonString(append(meta, `"host":`...), e.hostname), ',')
	meta = append(jsonString(append(meta, `"source":`...), src), ',')
	meta = append(jsonString(append(meta, `"sourcetype":`...), st), ',')
	if c.Index != "" {
		meta = append(jsonString(append(meta, `"index":`...), c.Index), ',')
	}
	return &splunk{url: strings.TrimRight(c.Host, "/") + "/services/collector/event", token: c.Token, meta: meta}
}

type splunk struct {
	url, token string
	meta       []byte
}

func (s *splunk) wire() wire {
	return wire{maxEvents: 1000, maxBytes: 1_000_000, maxItem: 1_000_000, sep: "\n"}
}

func (s *splunk) element(buf []byte, r *row, rec *record) []byte {
	buf = append(buf, `{"time":`...)
	buf = append(buf, epoch(r.ts)...)
	buf = append(buf, ',')
	buf = append(buf, s.meta...)
	buf = append(buf, `"event":`...)
	b, _ := json.Marshal(rec)
	buf = append(buf, b...)
	return append(buf, '}')
}

func (s *splunk) request(ctx context.Context, body []byte) (*http.Request, error) {
	req, err := post(ctx, s.url, body, false, "application/json")
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Splunk "+s.token)
	return req, nil
}

func (s *splunk) unauthorized() bool { return false }
