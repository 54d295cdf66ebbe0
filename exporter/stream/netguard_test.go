package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers from a table the test changes (DNS rebinding).
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]netip.Addr
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f *fakeResolver) set(host string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[host] = nil
	for _, a := range addrs {
		f.hosts[host] = append(f.hosts[host], netip.MustParseAddr(a))
	}
}

func TestInternalAddresses(t *testing.T) {
	for _, tc := range []struct {
		addr, reason string
	}{
		{"127.0.0.1", "loopback"}, {"127.9.9.9", "loopback"}, {"::1", "loopback"},
		{"10.1.2.3", "private"}, {"172.16.0.1", "private"}, {"192.168.1.1", "private"}, {"fd00::1", "private"},
		{"169.254.169.254", "link-local"}, {"fe80::1", "link-local"},
		{"0.0.0.0", "unspecified"}, {"::", "unspecified"}, {"0.1.2.3", "unspecified"},
		{"224.0.0.1", "multicast"}, {"239.1.2.3", "multicast"}, {"ff02::1", "multicast"}, {"ff05::1", "multicast"},
		{"100.64.0.1", "shared (carrier-grade NAT)"}, {"198.18.0.1", "benchmarking"}, {"255.255.255.255", "reserved"},
		{"::ffff:127.0.0.1", "loopback"}, {"::ffff:10.0.0.1", "private"}, {"64:ff9b::a9fe:a9fe", "link-local"},
		{"2002:7f00:1::", "loopback"},
		{"93.184.216.34", ""}, {"8.8.8.8", ""}, {"2606:4700::1111", ""}, {"203.0.113.10", ""},
	} {
		if got := internalReason(netip.MustParseAddr(tc.addr)); got != tc.reason {
			t.Errorf("internalReason(%s)=%q, want %q", tc.addr, got, tc.reason)
		}
	}
}

// TestDialerRefusesInternalAddresses: the dialer itself refuses, whatever
// asked for the connection, and never touches the network for them.
func TestDialerRefusesInternalAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	res := &fakeResolver{hosts: map[string][]netip.Addr{}}
	res.set("loopback.example", "127.0.0.1")
	g := &guardedDialer{resolver: res}
	g.dialer.Control = g.control
	for _, addr := range []string{"127.0.0.1:" + port, "[::1]:" + port, "[::ffff:127.0.0.1]:" + port,
		"10.0.0.1:80", "169.254.169.254:80", "loopback.example:" + port} {
		_, err := g.DialContext(context.Background(), "tcp", addr)
		var re *refusedError
		if !errors.As(err, &re) {
			t.Errorf("dial %s: %v, want refused", addr, err)
		}
	}
	select {
	case <-accepted:
		t.Fatal("a refused address was connected to")
	case <-time.After(50 * time.Millisecond):
	}
	// Control alone (a dial that bypassed the resolution step) refuses too.
	d := net.Dialer{Control: g.control, Timeout: time.Second}
	if _, err := d.Dial("tcp", "127.0.0.1:"+port); err == nil || !strings.Contains(err.Error(), "non-public") {
		t.Fatalf("raw dial through Control: %v, want refused", err)
	}
}

// TestPrivateDestinationsRefused: without AllowPrivate, loopback, private
// and link-local destinations are refused when the stream is created, and
// a name re-pointed at one afterwards is refused when connecting.
func TestPrivateDestinationsRefused(t *testing.T) {
	res := &fakeResolver{hosts: map[string][]netip.Addr{}}
	res.set("internal.example", "93.184.216.34", "10.0.0.5")
	res.set("public.example", "93.184.216.34")
	res.set("rebind.example", "93.184.216.34")
	f := newCustom(t, "X-Token", "ssrf-token-0123456789", true)
	_, port, _ := net.SplitHostPort(f.srv.Listener.Addr().String())
	h := newHarness(t, func(c *Config) { c.AllowPrivate = false; c.Resolver = res; c.FailingProbe = 100 * time.Millisecond })
	for _, tc := range []struct {
		provider string
		config   map[string]any
		code     string
	}{
		{"custom", map[string]any{"url": "https://127.0.0.1:" + port + "/hook"}, "private_address"},
		{"custom", map[string]any{"url": "https://10.1.2.3/hook"}, "private_address"},
		{"custom", map[string]any{"url": "https://169.254.169.254/latest/meta-data"}, "private_address"},
		{"custom", map[string]any{"url": "https://[::1]:" + port + "/hook"}, "private_address"},
		{"custom", map[string]any{"url": "https://[::ffff:127.0.0.1]/hook"}, "private_address"},
		{"custom", map[string]any{"url": "https://internal.example/hook"}, "private_address"},
		{"custom", map[string]any{"url": "http://public.example/hook"}, "https_required"},
		{"custom", map[string]any{"url": "http://127.0.0.1:" + port + "/hook"}, "https_required"},
		{"custom", map[string]any{"url": "https://user:pw@public.example/hook"}, "url"},
		{"custom", map[string]any{"url": "https://nowhere.example/hook"}, "unresolvable"},
		{"splunk", map[string]any{"host": "127.0.0.1", "token": "tok-0123456789"}, "private_address"},
		{"cribl", map[string]any{"url": "https://192.168.0.10:10080/cribl/_bulk"}, "private_address"},
		{"azure", map[string]any{"tenantId": azTenant, "clientId": azClient, "clientSecret": "s-0123456789",
			"dceUrl": "https://169.254.1.1", "dcrImmutableId": azDCR, "tableName": "T"}, "private_address"},
	} {
		code, out, raw := h.do(t, "acme", "POST", "/v1/streams", map[string]any{"name": "x", "provider": tc.provider, "config": tc.config})
		details, _ := out["error"].(map[string]any)["details"].([]any)
		if code != http.StatusBadRequest || len(details) == 0 || details[0].(map[string]any)["code"] != tc.code {
			t.Errorf("create %s %v: %d %s, want 400 %s", tc.provider, tc.config, code, raw, tc.code)
		}
	}
	// Public when checked, loopback when dialed.
	id := h.mustCreate(t, "acme", map[string]any{"name": "rebind", "provider": "custom",
		"config": map[string]any{"url": fmt.Sprintf("https://rebind.example:%s/hook", port), "headers": map[string]string{"X-Token": "ssrf-token-0123456789"}}})
	res.set("rebind.example", "127.0.0.1")
	h.insertN(t, "acme", 3, 0)
	eventually(t, 10*time.Second, "the refusal in the status", func() bool {
		st := h.status(t, "acme", id)
		msg, _ := st["lastError"].(string)
		return st["state"] == StateFailing && strings.Contains(msg, "non-public") && !strings.Contains(msg, "127.0.0.1")
	})
	code, out, _ := h.do(t, "acme", "POST", "/v1/streams/"+id+"/test", nil)
	if code != http.StatusOK || out["ok"] != false || !strings.Contains(out["error"].(string), "non-public") {
		t.Fatalf("test through a rebound name: %d %v, want refused", code, out)
	}
	if n := f.count(); n != 0 {
		t.Fatalf("the loopback destination got %d requests", n)
	}
}
