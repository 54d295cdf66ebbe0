package stream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func customStream(f *fake, header, value string) map[string]any {
	return map[string]any{"name": "hook", "provider": "custom",
		"config": map[string]any{"url": f.srv.URL + "/hook", "headers": map[string]string{header: value}}}
}

// TestRetriesTransientFaults: 429 with Retry-After, 500, a timeout after
// the destination took the batch, a dropped connection and a 503 are all
// retried; every event arrives, in order, duplicated only by the ambiguous
// timeout, and Retry-After is honoured.
func TestRetriesTransientFaults(t *testing.T) {
	var mu sync.Mutex
	ambiguous := 0 // events of the batch whose answer was lost
	f := newCustom(t, "Authorization", "Bearer fault-token-0123456789", true)
	f.fault = func(n int, w http.ResponseWriter, _ *http.Request, recs []map[string]any) bool {
		switch n {
		case 0:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 1:
			http.Error(w, "oops", http.StatusInternalServerError)
		case 2:
			f.accept(recs) // taken, but the answer never comes in time
			mu.Lock()
			ambiguous = len(recs)
			mu.Unlock()
			time.Sleep(6 * time.Second) // well past the request timeout below
		case 3:
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
		case 4:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		default:
			return false
		}
		return true
	}
	// 2 s: long enough for every honest answer on a busy machine, short
	// enough that the lost answer above times out.
	h := newHarness(t, func(c *Config) { c.RequestTimeout = 2 * time.Second })
	id := h.mustCreate(t, "acme", customStream(f, "Authorization", "Bearer fault-token-0123456789"))
	want := h.insertN(t, "acme", 1200, 0)
	eventually(t, 30*time.Second, "every event", func() bool { return f.distinct() == len(want) })
	f.checkClean(t)
	dups := checkOrder(t, want, f.received())
	mu.Lock()
	if dups > ambiguous {
		t.Fatalf("duplicates=%d, want at most the %d events of the batch whose answer was lost", dups, ambiguous)
	}
	mu.Unlock()
	f.mu.Lock()
	gap := f.arrivals[1].Sub(f.arrivals[0])
	f.mu.Unlock()
	if gap < 950*time.Millisecond {
		t.Fatalf("retried %v after a 429 with Retry-After: 1", gap)
	}
	st := h.status(t, "acme", id)
	if st["failed"].(float64) < 5 || st["lastError"] == nil {
		t.Fatalf("status %v: want the failed attempts and the last error", st)
	}
	eventually(t, 5*time.Second, "active again", func() bool { return h.status(t, "acme", id)["state"] == StateActive })
}

// TestDestinationDownThenBack: while the destination is down the stream
// shows it and keeps its place; when it is back, delivery resumes with
// nothing lost.
func TestDestinationDownThenBack(t *testing.T) {
	f := newCustom(t, "X-Token", "outage-token-0123456789", false)
	addr := f.srv.Listener.Addr().String()
	h := newHarness(t, nil)
	id := h.mustCreate(t, "acme", customStream(f, "X-Token", "outage-token-0123456789"))
	want := h.insertN(t, "acme", 100, 0)
	eventually(t, 10*time.Second, "first events", func() bool { return f.distinct() == len(want) })
	f.srv.Close() // down: connections refused
	want = append(want, h.insertN(t, "acme", 300, 0)...)
	eventually(t, 10*time.Second, "the outage in the status", func() bool {
		st := h.status(t, "acme", id)
		return st["state"] == StateFailing && st["lagEvents"].(float64) == 300
	})
	ln, err := net.Listen("tcp", addr) // back, at the same address
	if err != nil {
		t.Fatal(err)
	}
	back := &httptest.Server{Listener: ln, Config: &http.Server{Handler: f}}
	back.Start()
	t.Cleanup(back.Close)
	eventually(t, 15*time.Second, "every event after the outage", func() bool { return f.distinct() == len(want) })
	f.checkClean(t)
	if dups := checkOrder(t, want, f.received()); dups != 0 {
		t.Fatalf("duplicates=%d after refused connections (nothing ambiguous)", dups)
	}
	eventually(t, 5*time.Second, "active again", func() bool { return h.status(t, "acme", id)["state"] == StateActive })
}

// TestRefusedBatchKeepsPlace: a 4xx answer marks the stream failing
// without losing its place, it does not retry in a loop, and fixing the
// credential with PATCH resumes delivery at once. The credential the
// destination echoes back appears neither in the status nor in the logs.
func TestRefusedBatchKeepsPlace(t *testing.T) {
	const oldToken, newToken = "old-secret-token-0123456789", "new-secret-token-9876543210"
	f := newCustom(t, "X-Token", newToken, true)
	f.fault = func(_ int, w http.ResponseWriter, r *http.Request, _ []map[string]any) bool {
		if got := r.Header.Get("X-Token"); got != newToken {
			http.Error(w, "unauthorized: bad token "+got, http.StatusUnauthorized)
			return true
		}
		return false
	}
	h := newHarness(t, func(c *Config) { c.FailingProbe = time.Hour })
	id := h.mustCreate(t, "acme", customStream(f, "X-Token", oldToken))
	want := h.insertN(t, "acme", 10, 0)
	eventually(t, 10*time.Second, "failing state", func() bool { return h.status(t, "acme", id)["state"] == StateFailing })
	time.Sleep(300 * time.Millisecond)
	if n := f.count(); n != 1 {
		t.Fatalf("a refused stream sent %d requests before its next probe, want 1", n)
	}
	st := h.status(t, "acme", id)
	msg, _ := st["lastError"].(string)
	if !contains(msg, "401") || contains(msg, oldToken) || st["delivered"].(float64) != 0 || st["lagEvents"].(float64) != 10 {
		t.Fatalf("status %v: want failing on 401, credential scrubbed, nothing delivered, 10 behind", st)
	}
	code, out, raw := h.do(t, "acme", "POST", "/v1/streams/"+id+"/test", nil)
	if code != http.StatusOK || out["ok"] != false || out["status"].(float64) != 401 || contains(raw, oldToken) {
		t.Fatalf("test: %d %s", code, raw)
	}
	code, _, raw = h.do(t, "acme", "PATCH", "/v1/streams/"+id, map[string]any{"config": map[string]any{"headers": map[string]string{"X-Token": newToken}}})
	if code != http.StatusOK || contains(raw, newToken) {
		t.Fatalf("patch: %d %s", code, raw)
	}
	eventually(t, 5*time.Second, "delivery after the fix", func() bool { return f.distinct() == len(want) })
	checkOrder(t, want, f.received())
	for _, secret := range []string{oldToken, newToken} {
		if contains(h.logs.String(), secret) {
			t.Fatalf("a credential appears in the logs")
		}
	}
}

// TestSuccessfulTestWakesFailingStream: once the destination is fixed, a
// successful POST /test makes a failing stream try again at once.
func TestSuccessfulTestWakesFailingStream(t *testing.T) {
	var mu sync.Mutex
	broken := true
	f := newCustom(t, "X-Token", "wake-token-0123456789", true)
	f.fault = func(_ int, w http.ResponseWriter, _ *http.Request, _ []map[string]any) bool {
		mu.Lock()
		defer mu.Unlock()
		if broken {
			http.Error(w, "no such index", http.StatusNotFound)
		}
		return broken
	}
	h := newHarness(t, func(c *Config) { c.FailingProbe = time.Hour })
	id := h.mustCreate(t, "acme", customStream(f, "X-Token", "wake-token-0123456789"))
	want := h.insertN(t, "acme", 5, 0)
	eventually(t, 10*time.Second, "failing state", func() bool { return h.status(t, "acme", id)["state"] == StateFailing })
	mu.Lock()
	broken = false
	mu.Unlock()
	code, out, raw := h.do(t, "acme", "POST", "/v1/streams/"+id+"/test", nil)
	if code != http.StatusOK || out["ok"] != true {
		t.Fatalf("test: %d %s", code, raw)
	}
	eventually(t, 5*time.Second, "delivery after the test", func() bool { return f.distinct() == len(want)+1 }) // + the sample
}

// TestDeadDestinationDoesNotDelayHealthy: a destination that accepts
// connections and never answers holds only its own stream.
func TestDeadDestinationDoesNotDelayHealthy(t *testing.T) {
	hole := blackHole(t)
	healthy := newCustom(t, "X-Token", "healthy-token-0123456789", true)
	h := newHarness(t, func(c *Config) { c.RequestTimeout = 20 * time.Second })
	dead := h.mustCreate(t, "acme", map[string]any{"name": "dead", "provider": "custom",
		"config": map[string]any{"url": "https://" + hole + "/hook"}})
	h.mustCreate(t, "acme", customStream(healthy, "X-Token", "healthy-token-0123456789"))
	var want []string
	for range 4 {
		want = append(want, h.insertN(t, "acme", 300, 0)...)
		eventually(t, 10*time.Second, "the healthy stream's events", func() bool { return healthy.distinct() == len(want) })
	}
	checkOrder(t, want, healthy.received())
	// The dead stream's first request is still waiting for its answer.
	if st := h.status(t, "acme", dead); st["delivered"].(float64) != 0 || st["failed"].(float64) != 0 {
		t.Fatalf("dead stream status %v: its first attempt should still be pending", st)
	}
}

// TestNoEventLostAcrossRestart: a server stopped while a batch is in
// flight, then started again on the same database, delivers every event;
// only the batch in flight is sent twice.
func TestNoEventLostAcrossRestart(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	f := newCustom(t, "X-Token", "restart-token-0123456789", true)
	f.fault = func(n int, _ http.ResponseWriter, r *http.Request, recs []map[string]any) bool {
		if n == 2 {
			f.accept(recs) // the destination takes the batch; the answer is lost in the stop
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return true
		}
		return false
	}
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	h := newHarness(t, nil)
	id := h.mustCreate(t, "acme", customStream(f, "X-Token", "restart-token-0123456789"))
	want := h.insertN(t, "acme", 3000, 0)
	eventually(t, 20*time.Second, "a batch in flight", func() bool { return f.count() >= 3 })
	h.stop()
	once.Do(func() { close(release) })
	before := f.distinct()
	h.start(t, nil)
	eventually(t, 30*time.Second, "every event after the restart", func() bool { return f.distinct() == len(want) })
	f.checkClean(t)
	dups := checkOrder(t, want, f.received())
	if dups == 0 || dups > 500 || before >= len(want) {
		t.Fatalf("duplicates=%d (%d delivered before the stop): want only the in-flight batch (at most 500) again", dups, before)
	}
	eventually(t, 5*time.Second, "status after the restart", func() bool {
		st := h.status(t, "acme", id)
		return st["lagEvents"].(float64) == 0 && st["delivered"].(float64) == float64(len(want))
	})
}
