package stream

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSeal(t *testing.T) {
	s, err := newSealer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"apiKey":"secret-value"}`)
	sealed := s.seal("acme", "id-1", plain)
	if !strings.HasPrefix(sealed, "v1.") || strings.Contains(sealed, "secret-value") || sealed == s.seal("acme", "id-1", plain) {
		t.Fatalf("sealed %q: want v1., opaque, a fresh nonce each time", sealed)
	}
	if got, err := s.open("acme", "id-1", sealed); err != nil || string(got) != string(plain) {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.open("acme", "id-2", sealed); err == nil {
		t.Fatal("a sealed config moved to another stream opened")
	}
	if _, err := s.open("globex", "id-1", sealed); err == nil {
		t.Fatal("a sealed config moved to another org opened")
	}
	other, _ := newSealer([]byte("ffffffffffffffffffffffffffffffff"))
	if _, err := other.open("acme", "id-1", sealed); !errors.Is(err, errOtherKey) {
		t.Fatalf("open under another key: %v, want errOtherKey", err)
	}
	if _, err := newSealer([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-3", 0}, {"junk", 0}, {"5", 5 * time.Second}, {"99999999", time.Minute},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tc.h, now, time.Minute); got != tc.want {
			t.Errorf("retryAfter(%q)=%v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestBackoffAndBreaker(t *testing.T) {
	cfg := testConfig()
	cfg.RetryMin, cfg.RetryMax, cfg.BreakerFailures = 100*time.Millisecond, time.Second, 4
	cfg.BreakerOpen, cfg.BreakerMaxOpen, cfg.FailingProbe = 10*time.Second, 25*time.Second, time.Hour
	b := backoff{cfg: cfg}
	retry := outcome{retryable: true}
	for i, max := range []time.Duration{100, 200, 400} {
		d, failing := b.failed(retry)
		if failing || d < max*time.Millisecond/2 || d > max*time.Millisecond {
			t.Fatalf("failure %d: delay %v failing %v, want (%v/2, %v], retrying", i+1, d, failing, max*time.Millisecond, max*time.Millisecond)
		}
	}
	for _, open := range []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second, 25 * time.Second} {
		if d, failing := b.failed(retry); !failing || d != open {
			t.Fatalf("breaker: delay %v failing %v, want open for %v", d, failing, open)
		}
	}
	b.reset()
	if d, _ := b.failed(outcome{retryable: true, retryAfter: 7 * time.Second}); d != 7*time.Second {
		t.Fatalf("Retry-After 7s: delay %v", d)
	}
	if d, failing := b.failed(outcome{status: 400}); !failing || d != time.Hour {
		t.Fatalf("refused: delay %v failing %v, want the slow probe", d, failing)
	}
}

func TestMaskAndMerge(t *testing.T) {
	if mask("short") != "********" || mask("0123456789abcdefWXYZ") != "****WXYZ" {
		t.Fatalf("mask: %q %q", mask("short"), mask("0123456789abcdefWXYZ"))
	}
	old := &customConfig{URL: "https://h.example/hook?token=abcdef0123456789abcdef&x=1",
		Headers: map[string]string{"Authorization": "Bearer 0123456789abcdef0123", "X-Other": "keep-me-0123456789abcd"}}
	m := old.masked().(customConfig)
	if strings.Contains(m.URL, "abcdef0123") || m.Headers["Authorization"] != "****0123" {
		t.Fatalf("masked %+v", m)
	}
	patch, _ := json.Marshal(map[string]any{"url": m.URL, "headers": map[string]string{"authorization": m.Headers["Authorization"], "X-New": "v"}})
	c, err := mergeConfig(ProviderCustom, old, patch)
	if err != nil {
		t.Fatal(err)
	}
	got := c.(*customConfig)
	if got.URL != old.URL || got.Headers["authorization"] != old.Headers["Authorization"] || got.Headers["X-New"] != "v" {
		t.Fatalf("merged %+v: masked values must keep the stored ones", got)
	}
	if _, ok := got.Headers["X-Other"]; ok {
		t.Fatal("headers are replaced as a whole, X-Other should be gone")
	}
	for _, s := range old.secrets() {
		if strings.Contains(scrub("echo: "+old.Headers["Authorization"], old.secrets()), s) {
			t.Fatalf("scrub left %q", s)
		}
	}
}

func TestOversizedEventIsShrunk(t *testing.T) {
	r := sampleRow("acme", "s-1", time.Now())
	r.eventMeta = `{"pad":"` + strings.Repeat("x", 1_200_000) + `"}`
	for _, p := range []provider{(&azureConfig{}).open(&env{azureLoginURL: "https://login"}), &custom{}, &splunk{}} {
		w := p.wire()
		el := encodeElement(nil, p, w, &r)
		if len(el) > w.maxItem {
			t.Fatalf("%T: element of %d bytes over %d", p, len(el), w.maxItem)
		}
		if !strings.Contains(string(el), `"truncated":true`) || !strings.Contains(string(el), r.id.String()) {
			t.Fatalf("%T: a shrunk element keeps its id and says it was cut: %.200s", p, el)
		}
	}
	small := sampleRow("acme", "s-1", time.Now())
	if el := encodeElement(nil, &custom{}, (&custom{}).wire(), &small); strings.Contains(string(el), "truncated") {
		t.Fatalf("a small event was cut: %s", el)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil {
		t.Fatal("a config without a key validated")
	}
	cfg := DefaultConfig()
	cfg.Key = testKey
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.RetryMax = cfg.RetryMin / 2
	if err := cfg.Validate(); err == nil {
		t.Fatal("RetryMax < RetryMin validated")
	}
}

func TestParseKey(t *testing.T) {
	k := NewKey()
	got, err := ParseKey(" " + k + "\n")
	if err != nil || len(got) != KeyBytes {
		t.Fatalf("ParseKey(NewKey()): %d bytes, %v", len(got), err)
	}
	if _, err := ParseKey(strings.TrimRight(k, "=")); err != nil {
		t.Fatalf("unpadded key: %v", err)
	}
	for _, bad := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
