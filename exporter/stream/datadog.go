package stream

import (
	"context"
	"net/http"
	"strings"
)

// Datadog: the logs intake API v2, "Send logs"
// (https://docs.datadoghq.com/api/latest/logs/#send-logs).
//
//	POST https://http-intake.logs.<site>/api/v2/logs
//	DD-API-KEY: <api key>
//	Content-Type: application/json, Content-Encoding: gzip
//	[{"ddsource": ..., "ddtags": ..., "hostname": ..., "service": ..., "message": ..., <attributes>}, ...]
//
// Limits per request (uncompressed): 5 MB, 1,000 entries, 1 MB per log.
// Success is 202 Accepted; 408, 429 and 5xx are to be retried; 400, 401,
// 403 and 413 are not. The record's fields are sent as top-level
// attributes, with a one-line message; ddsource is "auditstore". Datadog
// dates a log by its intake time unless a date remapper is set on createdAt
// (sending the event time as the log's date would make Datadog refuse
// events older than 18 hours, as after a long outage).
type datadogConfig struct {
	// Site is the Datadog site (datadoghq.com, us3.datadoghq.com,
	// us5.datadoghq.com, datadoghq.eu, ap1.datadoghq.com, ap2.datadoghq.com,
	// uk1.datadoghq.com, ddog-gov.com, us2.ddog-gov.com) or its region
	// (us1, us3, us5, eu1, ap1, ap2, uk1, us1-fed, us2-fed).
	Site    string `json:"site"`
	APIKey  string `json:"apiKey"`
	Service string `json:"service,omitempty"` // default "auditstore"
	Tags    string `json:"tags,omitempty"`    // ddtags, e.g. "env:prod,team:security"
}

// datadogSites maps each Datadog site to its logs intake host.
var datadogSites = map[string]string{
	"datadoghq.com":     "http-intake.logs.datadoghq.com",
	"us3.datadoghq.com": "http-intake.logs.us3.datadoghq.com",
	"us5.datadoghq.com": "http-intake.logs.us5.datadoghq.com",
	"datadoghq.eu":      "http-intake.logs.datadoghq.eu",
	"ap1.datadoghq.com": "http-intake.logs.ap1.datadoghq.com",
	"ap2.datadoghq.com": "http-intake.logs.ap2.datadoghq.com",
	"uk1.datadoghq.com": "http-intake.logs.uk1.datadoghq.com",
	"ddog-gov.com":      "http-intake.logs.ddog-gov.com",
	"us2.ddog-gov.com":  "http-intake.logs.us2.ddog-gov.com",
}

var datadogRegions = map[string]string{
	"us1": "datadoghq.com", "us3": "us3.datadoghq.com", "us5": "us5.datadoghq.com",
	"eu1": "datadoghq.eu", "eu": "datadoghq.eu", "ap1": "ap1.datadoghq.com", "ap2": "ap2.datadoghq.com",
	"uk1": "uk1.datadoghq.com", "us1-fed": "ddog-gov.com", "us2-fed": "us2.ddog-gov.com",
}

func (c *datadogConfig) check(context.Context, guard) error {
	site := strings.ToLower(strings.TrimSpace(c.Site))
	site = strings.TrimPrefix(strings.TrimPrefix(site, "https://"), "app.")
	if s, ok := datadogRegions[site]; ok {
		site = s
	}
	if _, ok := datadogSites[site]; !ok {
		return fieldError("site", "enum", "must be a Datadog site (datadoghq.com, us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu, ap1.datadoghq.com, ap2.datadoghq.com, uk1.datadoghq.com, ddog-gov.com, us2.ddog-gov.com) or region (us1, us3, us5, eu1, ap1, ap2, uk1, us1-fed, us2-fed)")
	}
	c.Site = site
	if err := checkSecret("apiKey", c.APIKey); err != nil {
		return err
	}
	if err := checkText("service", c.Service, false, 100); err != nil {
		return err
	}
	return checkText("tags", c.Tags, false, 1000)
}

func (c *datadogConfig) masked() any {
	m := *c
	m.APIKey = mask(c.APIKey)
	return m
}

func (c *datadogConfig) keepSecrets(old destConfig) {
	if o, ok := old.(*datadogConfig); ok {
		c.APIKey = keep(c.APIKey, o.APIKey)
	}
}

func (c *datadogConfig) secrets() []string { return []string{c.APIKey} }

func (c *datadogConfig) target() (string, []string) { return c.Site, []string{"apiKey"} }

func (c *datadogConfig) open(e *env) provider {
	base := e.datadogURL
	if base == "" {
		base = "https://" + datadogSites[c.Site]
	}
	svc := c.Service
	if svc == "" {
		svc = "auditstore"
	}
	var prefix []byte
	prefix = append(prefix, `"ddsource":"auditstore",`...)
	if c.Tags != "" {
		prefix = append(jsonString(append(prefix, `"ddtags":`...), c.Tags), ',')
	}
	prefix = append(jsonString(append(prefix, `"hostname":`...), e.hostname), ',')
	prefix = append(jsonString(append(prefix, `"service":`...), svc), ',')
	return &datadog{url: strings.TrimRight(base, "/") + "/api/v2/logs", key: c.APIKey, prefix: prefix}
}

type datadog struct {
	url, key string
	prefix   []byte // the members every log carries
}

func (d *datadog) wire() wire {
	return wire{maxEvents: 1000, maxBytes: 5_000_000, maxItem: 1_000_000, open: "[", sep: ",", close: "]", gzip: true}
}

func (d *datadog) element(buf []byte, r *row, rec *record) []byte {
	p := append(append([]byte(nil), d.prefix...), `"message":`...)
	p = append(jsonString(p, r.summary()), ',')
	return spliceFields(buf, p, rec)
}

func (d *datadog) request(ctx context.Context, body []byte) (*http.Request, error) {
	req, err := post(ctx, d.url, body, true, "application/json")
	if err != nil {
		return nil, err
	}
	req.Header.Set("DD-API-KEY", d.key)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

func (d *datadog) unauthorized() bool { return false }
