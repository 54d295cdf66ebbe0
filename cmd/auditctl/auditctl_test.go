package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/client"
	"github.com/auditstore/auditstore/internal/servertest"
)

func events(n int, typ string) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"id":%q,"timestamp":%q,"event":{"type":%q,"metadata":{"i":%d}},"actor":{"type":"user","metadata":{"email":"ada@example.com"}},"resource":{"type":"secret","id":"s%d"}}`+"\n",
			uuid.NewString(), time.Now().Add(-time.Duration(i)*time.Second).UTC().Format(time.RFC3339Nano), typ, i, i)
	}
	return b.Bytes()
}

// ctl runs auditctl in-process and returns what it printed.
func ctl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out bytes.Buffer
	errf, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	runErr := run(context.Background(), args, func(string) string { return "" }, &out, errf)
	errb, _ := os.ReadFile(errf.Name())
	return out.String(), string(errb), runErr
}

func TestAuditctl(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	s := servertest.Start(t)
	keys := s.Org(t, "acme", "ingest", "read")
	s.Ingest(t, keys["ingest"], events(23, "USER_LOGIN"))
	s.Ingest(t, keys["ingest"], events(5, "create-secret"))
	s.WaitTotal(t, keys["read"], "eventType=USER_LOGIN", 23)
	base := []string{"-server", s.Base, "-key", keys["read"]}

	t.Run("events table", func(t *testing.T) {
		out, _, err := ctl(t, append(append([]string{"events"}, base...), "-limit", "10", "eventType=USER_LOGIN")...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "TIME") || !strings.Contains(out, "Page 1 of 3 (23 total)") || strings.Count(out, "USER_LOGIN") != 10 {
			t.Fatalf("table output:\n%s", out)
		}
	})
	t.Run("events all json", func(t *testing.T) {
		out, _, err := ctl(t, append(append([]string{"events"}, base...), "-all", "-limit", "7", "-o", "json", "eventType=USER_LOGIN")...)
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Count(out, "\n"); lines != 23 {
			t.Fatalf("-all printed %d lines, want 23:\n%s", lines, out)
		}
	})
	t.Run("export csv and parquet", func(t *testing.T) {
		dir := t.TempDir()
		csvPath := filepath.Join(dir, "e.csv")
		if _, errOut, err := ctl(t, append(append([]string{"export"}, base...), "-format", "csv", "-o", csvPath, "eventType=USER_LOGIN")...); err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		b, err := os.ReadFile(csvPath)
		if err != nil || strings.Count(string(b), "\r\n") != 24 {
			t.Fatalf("csv: %d lines, err %v", strings.Count(string(b), "\r\n"), err)
		}
		pq := filepath.Join(dir, "e.parquet")
		if _, errOut, err := ctl(t, append(append([]string{"export"}, base...), "-format", "parquet", "-o", pq)...); err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		b, err = os.ReadFile(pq)
		if err != nil || !bytes.HasPrefix(b, []byte("PAR1")) || !bytes.HasSuffix(b, []byte("PAR1")) {
			t.Fatalf("parquet file: %d bytes, err %v", len(b), err)
		}
		left, _ := filepath.Glob(filepath.Join(dir, ".*part*"))
		if len(left) != 0 {
			t.Fatalf("temporary files left: %v", left)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, _, err := ctl(t, append(append([]string{"events"}, base...), "nope=1")...)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("unknown filter: %v, want a 400 naming it", err)
		}
		_, _, err = ctl(t, append(append([]string{"export"}, base...), "-format", "xls", "-o", "x")...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Fatalf("bad format: %v, want a usage error", err)
		}
		_, _, err = ctl(t, "events", "-server", s.Base, "-key", "ask_wrong")
		if !errors.As(err, &ae) || ae.Status != 401 {
			t.Fatalf("bad key: %v, want 401", err)
		}
		_, _, err = ctl(t, append(append([]string{"export"}, base...), "-format", "csv", "-o", filepath.Join(t.TempDir(), "x.csv"), "nope=1")...)
		if !errors.As(err, &ae) || ae.Status != 400 {
			t.Fatalf("export with a bad filter: %v", err)
		}
	})
	t.Run("tail", func(t *testing.T) {
		var out bytes.Buffer
		var mu sync.Mutex
		ctx, cancel := context.WithCancel(context.Background())
		errf, _ := os.CreateTemp(t.TempDir(), "stderr")
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, append(append([]string{"tail"}, base...), "-interval", "100ms", "-since", "1m", "-o", "json", "eventType=TAILED"),
				func(string) string { return "" }, writerFunc(func(p []byte) (int, error) {
					mu.Lock()
					defer mu.Unlock()
					return out.Write(p)
				}), errf)
		}()
		time.Sleep(300 * time.Millisecond)
		s.Ingest(t, keys["ingest"], events(4, "TAILED"))
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			n := strings.Count(out.String(), "\n")
			mu.Unlock()
			if n == 4 {
				break
			}
			if n > 4 || time.Now().After(deadline) {
				t.Fatalf("tail printed %d events, want 4", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(400 * time.Millisecond) // a few more polls: nothing printed twice
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out.String(), "\n"); n != 4 {
			t.Fatalf("tail printed %d events after more polls, want 4", n)
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestAuditctlQuarantine drives the quarantine commands against the real
// server with the operator token (what fills the quarantine is tested in
// package ingest).
func TestAuditctlQuarantine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	s := servertest.Start(t)
	keys := s.Org(t, "acme", "read")
	op := []string{"quarantine", "-server", s.Base, "-key", servertest.AdminToken}
	out, _, err := ctl(t, append(op, "list")...)
	if err != nil || !strings.Contains(out, "the quarantine is empty") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, _, err = ctl(t, append(op, "-o", "json", "list")...)
	if err != nil || !strings.Contains(out, `"entries": []`) {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	for _, verb := range []string{"replay", "discard"} {
		_, _, err = ctl(t, append(op, verb, "abc-1-2")...)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" {
			t.Fatalf("%s of a missing entry: err=%v, want 404 not_found", verb, err)
		}
	}
	_, _, err = ctl(t, "quarantine", "-server", s.Base, "-key", keys["read"], "list")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("list with a read key: err=%v, want 403", err)
	}
	for _, verb := range []string{"replay", "discard"} {
		if _, _, err := ctl(t, append(op, verb, "all")...); err != nil {
			t.Fatalf("%s all of an empty quarantine: %v", verb, err)
		}
	}
	_, _, err = ctl(t, append(op, "replay")...)
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("replay without an id: err=%v, want a usage error", err)
	}
}
