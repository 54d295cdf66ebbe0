package stream

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// wire is the framing and the documented limits of one destination's
// requests. Sizes are of the uncompressed body.
type wire struct {
	maxEvents int    // elements per request
	maxBytes  int    // body bytes per request
	maxItem   int    // bytes of one element
	open, sep string // body = open + elem (sep elem)* + close
	close     string
	gzip      bool // send Content-Encoding: gzip
}

// provider speaks one destination's API for one stream.
type provider interface {
	wire() wire
	// element appends the element carrying one event to buf: r is the
	// event as read, rec its streamed form (possibly shrunk).
	element(buf []byte, r *row, rec *record) []byte
	// request returns the request carrying body (framed, compressed when
	// wire().gzip). It may first obtain a credential (Azure); its errors
	// are *destError when the destination's side answered.
	request(ctx context.Context, body []byte) (*http.Request, error)
	// unauthorized is told of a 401 answer: it drops cached credentials
	// and reports whether one retry with fresh ones may succeed.
	unauthorized() bool
}

// destConfig is a provider's stream configuration, credentials included.
// Its JSON form is what the stream's owner gives and what is sealed.
type destConfig interface {
	// check validates and normalizes the configuration; URLs go through g.
	check(ctx context.Context, g guard) error
	// masked is the configuration as the API shows it.
	masked() any
	// keepSecrets restores old's credentials where c holds their masked
	// form (a client sending back what it read).
	keepSecrets(old destConfig)
	// secrets lists the credentials, to scrub them from errors and answers.
	secrets() []string
	// target says where the configuration delivers (normalized by check)
	// and names the fields holding its credentials: a change of target
	// must give them again (see retargeted).
	target() (where string, credentialFields []string)
	// open returns the provider speaking this configuration.
	open(e *env) provider
}

// env is what providers share: the guarded HTTP client and server-side
// settings.
type env struct {
	client        *http.Client
	hostname      string
	datadogURL    string
	azureLoginURL string
	timeout       time.Duration
	now           func() time.Time
}

// Provider names.
const (
	ProviderDatadog = "datadog"
	ProviderSplunk  = "splunk"
	ProviderCribl   = "cribl"
	ProviderAzure   = "azure"
	ProviderCustom  = "custom"
)

var providers = map[string]func() destConfig{
	ProviderDatadog: func() destConfig { return &datadogConfig{} },
	ProviderSplunk:  func() destConfig { return &splunkConfig{} },
	ProviderCribl:   func() destConfig { return &criblConfig{} },
	ProviderAzure:   func() destConfig { return &azureConfig{} },
	ProviderCustom:  func() destConfig { return &customConfig{} },
}

func providerNames() []string {
	names := make([]string, 0, len(providers))
	for n := range providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func configError(msg string) error {
	return schema.Invalid("invalid_stream_config", "config: "+msg,
		schema.FieldError{Index: -1, Field: "config", Code: "invalid", Message: msg})
}

func fieldError(field, code, msg string) error {
	return schema.Invalid("invalid_stream_config", fmt.Sprintf("config.%s: %s", field, msg),
		schema.FieldError{Index: -1, Field: "config." + field, Code: code, Message: msg})
}

// decodeConfig decodes a provider's configuration strictly (unknown fields
// are errors) without checking it.
func decodeConfig(provider string, raw []byte) (destConfig, error) {
	mk, ok := providers[provider]
	if !ok {
		return nil, schema.Invalid("invalid_stream", fmt.Sprintf("unknown provider %q; providers are: %s",
			schema.Truncate(provider, 64), strings.Join(providerNames(), ", ")),
			schema.FieldError{Index: -1, Field: "provider", Code: "enum", Message: "provider must be one of " + strings.Join(providerNames(), ", ")})
	}
	c := mk()
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, configError("a config object is required for provider " + provider)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		msg := "must be an object with the documented fields of provider " + provider
		if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			msg = "unknown field " + s + " for provider " + provider
		}
		return nil, configError(msg)
	}
	return c, nil
}

// mergeConfig applies a PATCH's config object to old: fields it names
// replace old's (a credential sent back masked keeps its value), the
// others keep theirs.
func mergeConfig(provider string, old destConfig, patch []byte) (destConfig, error) {
	base, err := json.Marshal(old)
	if err != nil {
		return nil, err
	}
	var fields, changes map[string]json.RawMessage
	if err := json.Unmarshal(base, &fields); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &changes); err != nil || changes == nil {
		return nil, configError("must be a JSON object")
	}
	for k, v := range changes {
		fields[k] = v
	}
	merged, _ := json.Marshal(fields)
	c, err := decodeConfig(provider, merged)
	if err != nil {
		return nil, err
	}
	c.keepSecrets(old)
	return c, nil
}

// retargeted checks a PATCH that changes where a stream delivers: every
// credential of the new configuration must be given in the patch itself
// (not kept from the stored one, nor sent back masked), or an admin key
// could send a stored token, secret or header to a host of its choice.
func retargeted(provider string, old, cfg destConfig, patch []byte) error {
	was, _ := old.target()
	now, fields := cfg.target()
	if was == now {
		return nil
	}
	given, err := decodeConfig(provider, patch)
	if err != nil {
		return err
	}
	sent := given.secrets()
	for _, s := range cfg.secrets() {
		if s != "" && !slices.Contains(sent, s) {
			msg := "changing where the stream delivers needs its credentials again: send config." +
				strings.Join(fields, ", config.") + " in the same request"
			return schema.Invalid("credentials_required", "config: "+msg,
				schema.FieldError{Index: -1, Field: "config." + fields[0], Code: "credentials_required", Message: msg})
		}
	}
	return nil
}

// checkText validates a plain configuration string.
func checkText(field, v string, required bool, max int) error {
	switch {
	case v == "" && required:
		return fieldError(field, "required", "is required")
	case len(v) > max:
		return fieldError(field, "too_long", fmt.Sprintf("must be at most %d bytes", max))
	case hasControl(v):
		return fieldError(field, "invalid", "must not contain control characters")
	}
	return nil
}

// checkSecret validates a credential: required, printable, no spaces
// around it.
func checkSecret(field, v string) error {
	if err := checkText(field, v, true, maxConfigStrBytes); err != nil {
		return err
	}
	if strings.TrimSpace(v) != v {
		return fieldError(field, "invalid", "must not start or end with spaces")
	}
	return nil
}

// post returns a POST of body to url with a JSON or NDJSON content type,
// gzip-encoded when gz.
func post(ctx context.Context, url string, body []byte, gz bool, contentType string) (*http.Request, error) {
	var rd io.Reader = bytes.NewReader(body)
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return nil, err
		}
		rd = &b
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, rd)
	if err != nil {
		return nil, errors.New("cannot build the request to the destination")
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "auditstore-stream/1")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	return req, nil
}

// epoch formats t as epoch seconds with milliseconds, e.g. 1700000000.123.
func epoch(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// jsonString appends s as a JSON string.
func jsonString(buf []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(buf, b...)
}

// spliceFields appends rec's JSON object with the given members (already
// encoded as `"k":v,` pairs) placed first.
func spliceFields(buf []byte, prefix []byte, rec *record) []byte {
	b, _ := json.Marshal(rec) // records always marshal; b starts with '{'
	buf = append(buf, '{')
	buf = append(buf, prefix...)
	return append(buf, b[1:]...)
}
