package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditstore/auditstore/internal/servertest"
)

// TestStreamDeliversThroughTheServer wires a custom stream end to end: the
// events an ingest key sends arrive at the destination, in order.
func TestStreamDeliversThroughTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	var mu sync.Mutex
	var got []string
	var auth string
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []struct {
			EventType     string          `json:"eventType"`
			EventMetadata json.RawMessage `json:"eventMetadata"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &batch); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		auth = r.Header.Get("Authorization")
		for _, e := range batch {
			if e.EventType == "deploy" {
				got = append(got, string(e.EventMetadata))
			}
		}
		mu.Unlock()
	}))
	defer dest.Close()

	s := servertest.Start(t, "-allow-private-destinations")
	keys := s.Org(t, "acme", "ingest", "admin")
	code, body := s.JSON(t, "POST", "/v1/streams", keys["admin"], map[string]any{
		"name": "siem", "provider": "custom",
		"config": map[string]any{"url": dest.URL + "/in", "headers": map[string]string{"Authorization": "Bearer dest-secret-123"}},
		"filter": map[string]any{"eventTypes": []string{"deploy"}},
	})
	if code != 201 {
		t.Fatalf("create stream: %d %v", code, body)
	}
	if raw, _ := json.Marshal(body); strings.Contains(string(raw), "dest-secret-123") {
		t.Fatalf("stream answer shows the credential: %s", raw)
	}
	var lines strings.Builder
	for i := 0; i < 30; i++ {
		typ := "deploy"
		if i%3 == 0 {
			typ = "other"
		}
		fmt.Fprintf(&lines, `{"event":{"type":%q,"metadata":{"n":%d}},"actor":{"type":"service"}}`+"\n", typ, i)
	}
	s.Ingest(t, keys["ingest"], []byte(lines.String()))

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("destination got %d of 20 events", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	want := 0
	for i := 0; i < 30; i++ {
		if i%3 == 0 {
			continue
		}
		if got[want] != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("event %d delivered as %s, want {\"n\":%d} (in order)", want, got[want], i)
		}
		want++
	}
	if auth != "Bearer dest-secret-123" {
		t.Fatalf("destination saw Authorization %q", auth)
	}
	if strings.Contains(s.Output(), "dest-secret-123") {
		t.Fatal("the server logged the credential")
	}
}
