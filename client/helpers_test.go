package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/client"
	"github.com/auditstore/auditstore/internal/servertest"
)

// newClient returns a client of base with key.
func newClient(tb testing.TB, base, key string) *client.Client {
	tb.Helper()
	c, err := client.New(client.DefaultConfig(base, key))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// org creates org on s through the client and returns a key per role.
func org(tb testing.TB, s *servertest.Server, id string) map[string]string {
	tb.Helper()
	ctx := context.Background()
	op := newClient(tb, s.Base, servertest.AdminToken)
	if _, err := op.CreateOrg(ctx, id, "pro"); err != nil {
		tb.Fatal(err)
	}
	keys := map[string]string{}
	for _, role := range []string{"ingest", "read", "admin"} {
		k, err := op.CreateKey(ctx, id, role, role)
		if err != nil {
			tb.Fatal(err)
		}
		keys[role] = k.Secret
	}
	return keys
}

// sample returns a valid event of type typ.
func sample(typ string, n int) client.Event {
	return client.Event{
		Action:   client.Action{Type: typ, Metadata: map[string]any{"n": n}},
		Actor:    client.Actor{Type: "service", Metadata: map[string]any{"serviceId": "billing"}},
		Resource: &client.Resource{Type: "invoice", ID: fmt.Sprintf("inv-%d", n%10)},
		TraceID:  "trace-" + uuid.NewString()[:8], UserAgentType: "sdk-go",
	}
}

// proxy forwards to a target that can be swapped, or answers 503 while
// down: a fixed address for producers while servers come and go.
type proxy struct {
	*httptest.Server
	target atomic.Pointer[url.URL]
	down   atomic.Bool
}

func newProxy(tb testing.TB) *proxy {
	p := &proxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(p.target.Load())
			r.Out.Host = r.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() || p.target.Load() == nil {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"proxy_down","message":"the test proxy is down"}}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(p.Close)
	return p
}

func (p *proxy) point(base string) {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	p.target.Store(u)
}

// waitCount waits until the read key sees n events of type typ.
func waitCount(tb testing.TB, rd *client.Client, typ string, n int64) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last int64 = -1
	for time.Now().Before(deadline) {
		p, err := rd.Events(context.Background(), client.ListOptions{Filter: client.Filter{EventTypes: []string{typ}}, Limit: 1})
		if err == nil && p.Total != nil {
			if last = *p.Total; last == n {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("events of type %s: %d, want %d", typ, last, n)
}
