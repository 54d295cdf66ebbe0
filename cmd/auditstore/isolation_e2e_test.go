package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditstore/auditstore/internal/servertest"
)

// trickle opens a connection that sends an ingest request's headers and
// then its body one byte at a time, and returns the status line the server
// answers with (or the error), once it does.
func trickle(t *testing.T, base, key string, stop <-chan struct{}) <-chan string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{", u.Host, key)
	answer := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			line = "error: " + err.Error()
		}
		answer <- strings.TrimSpace(line)
	}()
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	return answer
}

// TestSlowBodiesDoNotStallIngest: 32 connections trickle request bodies
// (as many as there are ingest slots); another tenant's ingest must still
// answer at once, and the slow bodies are cut at -body-read-timeout.
func TestSlowBodiesDoNotStallIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	const bodyTimeout = 8 * time.Second
	s := servertest.Start(t, "-body-read-timeout", bodyTimeout.String())
	slow := s.Org(t, "org-slow", "ingest")["ingest"]
	other := s.Org(t, "org-other", "ingest")["ingest"]

	stop := make(chan struct{})
	defer close(stop)
	started := time.Now()
	var answers []<-chan string
	for i := 0; i < 32; i++ {
		answers = append(answers, trickle(t, s.Base, slow, stop))
	}
	time.Sleep(time.Second) // every slow request is in its handler

	var worst time.Duration
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		s.Ingest(t, other, []byte(fmt.Sprintf(`{"event":{"type":"login"},"actor":{"type":"user","metadata":{"userId":"u%d"}}}`+"\n", i)))
		worst = max(worst, time.Since(t0))
	}
	t.Logf("5 ingests of another tenant while 32 bodies trickle: slowest %s", worst)
	if worst > time.Second {
		t.Fatalf("another tenant's ingest took %s while 32 bodies trickled, want < 1s", worst)
	}
	if elapsed := time.Since(started); elapsed > bodyTimeout-time.Second {
		t.Fatalf("the measurement took %s, past the slow bodies' deadline: not conclusive", elapsed)
	}

	// The slow bodies are cut with 408 at their deadline.
	var wg sync.WaitGroup
	got := make([]string, len(answers))
	for i, a := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case got[i] = <-a:
			case <-time.After(bodyTimeout + 20*time.Second):
				got[i] = "no answer"
			}
		}()
	}
	wg.Wait()
	cut := time.Since(started)
	for i, line := range got {
		if !strings.Contains(line, " 408 ") {
			t.Fatalf("slow body %d answered %q, want 408", i, line)
		}
	}
	t.Logf("32 slow bodies answered 408 after %s (deadline %s)", cut.Round(100*time.Millisecond), bodyTimeout)
}

// stallingClient reads through connections with a small receive buffer,
// so that a download it stops reading fills the buffers quickly.
func stallingClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// TestOneOrgCannotStallAnother: one org holds its most exports open
// without reading them; its next export gets 429, while another org's
// ingest, queries and export take about what they took before.
func TestOneOrgCannotStallAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	s := servertest.Start(t, "-write-timeout", "30s", "-max-exports-per-org", "2")
	a := s.Org(t, "org-heavy", "ingest", "read")
	b := s.Org(t, "org-other", "ingest", "read")

	// About 12 MB of org-heavy's events: an export far larger than the
	// socket buffers between the server and a client that stops reading.
	pad := strings.Repeat("p", 900)
	for r := 0; r < 6; r++ {
		var body strings.Builder
		for i := 0; i < 2000; i++ {
			fmt.Fprintf(&body, `{"event":{"type":"bulk","metadata":{"r":%d,"i":%d,"pad":%q}},"actor":{"type":"user","metadata":{"userId":"u%d"}}}`+"\n", r, i, pad, i)
		}
		s.Ingest(t, a["ingest"], []byte(body.String()))
	}
	s.WaitTotal(t, a["read"], "eventType=bulk", 12000)
	s.Ingest(t, b["ingest"], []byte(`{"event":{"type":"login"},"actor":{"type":"user","metadata":{"userId":"u1"}}}`+"\n"))
	s.WaitTotal(t, b["read"], "eventType=login", 1)

	// What org-other's requests take, slowest of 5 each.
	measure := func() (ingest, query, export time.Duration) {
		for i := 0; i < 5; i++ {
			t0 := time.Now()
			s.Ingest(t, b["ingest"], []byte(`{"event":{"type":"login"},"actor":{"type":"user","metadata":{"userId":"u2"}}}`+"\n"))
			ingest = max(ingest, time.Since(t0))
			t0 = time.Now()
			if code, out := s.Do(t, "GET", "/v1/events?limit=50", b["read"], nil); code != 200 {
				t.Fatalf("org-other query: %d %s", code, out)
			}
			query = max(query, time.Since(t0))
		}
		t0 := time.Now()
		if code, out := s.Do(t, "GET", "/v1/export?format=ndjson", b["read"], nil); code != 200 {
			t.Fatalf("org-other export: %d %s", code, out)
		}
		export = time.Since(t0)
		return
	}
	bi, bq, bx := measure()

	client := stallingClient()
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("GET", s.Base+"/v1/export?format=ndjson", nil)
		req.Header.Set("Authorization", "Bearer "+a["read"])
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("heavy export %d: status %d", i, resp.StatusCode)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		// ... and stops reading.
	}
	stalled := time.Now()
	req, _ := http.NewRequest("GET", s.Base+"/v1/export?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+a["read"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(out), `"too_many_exports"`) {
		t.Fatalf("third export of org-heavy: %d Retry-After=%q %s, want 429 too_many_exports with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}
	si, sq, sx := measure()
	if time.Since(stalled) > 25*time.Second {
		t.Fatalf("measuring took %s, past the stalled exports' write timeout: not conclusive", time.Since(stalled))
	}
	t.Logf("org-other, slowest of 5 (export: 1) before / while org-heavy stalls 2 exports: ingest %s / %s, query %s / %s, export %s / %s",
		bi.Round(time.Millisecond), si.Round(time.Millisecond), bq.Round(time.Millisecond), sq.Round(time.Millisecond),
		bx.Round(time.Millisecond), sx.Round(time.Millisecond))
	if si > 2*time.Second || sq > 2*time.Second || sx > 2*time.Second { // generous: a loaded machine
		t.Fatalf("org-other slowed while org-heavy stalls: ingest %s, query %s, export %s", si, sq, sx)
	}
}
