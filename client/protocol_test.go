package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/auditstore/auditstore/client"
)

// fakeIngest is a stand-in for POST /v1/events that speaks the protocol's
// edges: 429 with Retry-After on the first request, 413 past maxEvents,
// 400 naming events whose metadata says bad.
type fakeIngest struct {
	mu        sync.Mutex
	maxEvents int
	requests  int
	got       map[string]int // id → times stored
}

func (f *fakeIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	dec := json.NewDecoder(body)
	var evs []client.Event
	for {
		var e client.Event
		if err := dec.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		evs = append(evs, e)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	answer := func(code int, v string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, v)
	}
	if f.requests == 1 {
		w.Header().Set("Retry-After", "1")
		answer(429, `{"error":{"code":"rate_limited","message":"slow down"}}`)
		return
	}
	if len(evs) > f.maxEvents {
		answer(413, `{"error":{"code":"too_many_events","message":"too many"}}`)
		return
	}
	var details []string
	for i, e := range evs {
		if e.Action.Metadata["bad"] == true {
			details = append(details, fmt.Sprintf(`{"index":%d,"field":"event.metadata","code":"bad","message":"bad"}`, i))
		}
	}
	if len(details) > 0 {
		answer(400, `{"error":{"code":"invalid_events","message":"bad events","details":[`+join(details)+`]}}`)
		return
	}
	for _, e := range evs {
		f.got[e.ID]++
	}
	answer(202, fmt.Sprintf(`{"accepted":%d}`, len(evs)))
}

func join(xs []string) string { return strings.Join(xs, ",") }

// TestProducerProtocol: a Retry-After is honoured, a 413 splits the batch,
// a 400 drops the events it names (reported by their index in the call)
// and the rest is stored once.
func TestProducerProtocol(t *testing.T) {
	f := &fakeIngest{maxEvents: 4, got: map[string]int{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var mu sync.Mutex
	var waits []time.Duration
	p, err := newClient(t, srv.URL, "k").NewProducer(client.ProducerConfig{BatchEvents: 10, Senders: 1,
		Hooks: client.Hooks{Retry: func(_ int, wait time.Duration, _ error) { mu.Lock(); waits = append(waits, wait); mu.Unlock() }}})
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]client.Event, 10)
	for i := range evs {
		evs[i] = sample("x", i)
	}
	evs[4].Action.Metadata = map[string]any{"bad": true}
	evs[8].Action.Metadata = map[string]any{"bad": true}
	err = p.SendWait(context.Background(), evs...)
	var re *client.RejectedError
	if !errors.As(err, &re) || len(re.Rejections) != 2 {
		t.Fatalf("SendWait: %v", err)
	}
	idx := map[int]bool{}
	for _, r := range re.Rejections {
		idx[r.Index] = true
	}
	if !idx[4] || !idx[8] {
		t.Fatalf("rejected indexes %v, want 4 and 8", idx)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.got) != 8 {
		t.Fatalf("stored %d events, want 8", len(f.got))
	}
	for id, n := range f.got {
		if n != 1 {
			t.Fatalf("event %s stored %d times", id, n)
		}
	}
	if len(waits) != 1 || waits[0] < time.Second {
		t.Fatalf("retry waits %v, want one of at least the Retry-After (1s)", waits)
	}
}

// TestSpoolDropsTornTail: a spool file whose last line was cut by a crash
// is sent without that line, and removed once acknowledged.
func TestSpoolDropsTornTail(t *testing.T) {
	f := &fakeIngest{maxEvents: 100, got: map[string]int{}, requests: 1}
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := t.TempDir()
	var b bytes.Buffer
	for i := range 3 {
		e := sample("x", i)
		e.ID = fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i)
		line, _ := json.Marshal(e)
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString(`{"id":"00000000-0000-4000-8000-000000000009","event":{"ty`)
	if err := os.WriteFile(filepath.Join(dir, "000000000007.ndjson"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := newClient(t, srv.URL, "k").NewProducer(client.ProducerConfig{SpoolDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.got) != 3 || f.got["00000000-0000-4000-8000-000000000009"] != 0 {
		t.Fatalf("sent %v, want the 3 whole lines", f.got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
}

// TestRetriesNetworkErrors: while nothing listens on the server's address
// the producer retries; once a server answers there, the events arrive.
func TestRetriesNetworkErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	netErrs := make(chan error, 100)
	p, err := newClient(t, "http://"+addr, "k").NewProducer(client.ProducerConfig{MaxBackoff: 200 * time.Millisecond,
		Hooks: client.Hooks{Retry: func(_ int, _ time.Duration, err error) {
			select {
			case netErrs <- err:
			default:
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := p.Send(context.Background(), sample("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	var ae *client.APIError
	if err := <-netErrs; err == nil || errors.As(err, &ae) {
		t.Fatalf("first retry after %v, want a network error", err)
	}
	f := &fakeIngest{maxEvents: 100, got: map[string]int{}, requests: 1}
	srv := httptest.NewUnstartedServer(f)
	if srv.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv.Start()
	defer srv.Close()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) != 5 {
		t.Fatalf("stored %d events, want 5", len(f.got))
	}
}
