package main

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
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
