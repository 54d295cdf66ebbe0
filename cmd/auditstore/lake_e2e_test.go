package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/exporter/lake"
	"github.com/auditstore/auditstore/internal/servertest"
)

// TestLakeThroughTheServer wires data-lake delivery end to end: an org's
// admin key creates a directory destination, a backfill delivers the events
// ingested before it, and the manifests list them once.
func TestLakeThroughTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	dir := t.TempDir()
	s := servertest.Start(t, "-lake-dir", dir)
	keys := s.Org(t, "acme", "ingest", "admin", "read")
	var lines strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&lines, `{"event":{"type":"deploy","metadata":{"n":%d}},"actor":{"type":"service"}}`+"\n", i)
	}
	s.Ingest(t, keys["ingest"], []byte(lines.String()))
	s.WaitTotal(t, keys["read"], "eventType=deploy", 30)

	if code, _ := s.JSON(t, "GET", "/v1/lake/destinations", keys["read"], nil); code != 403 {
		t.Fatalf("a read key lists destinations: %d", code)
	}
	code, body := s.JSON(t, "POST", "/v1/lake/destinations", keys["admin"], map[string]any{
		"name": "lake", "target": map[string]any{"kind": "dir", "dir": map[string]any{"path": "audit"}}})
	if code != 201 {
		t.Fatalf("create destination: %d %v", code, body)
	}
	id := body["id"].(string)
	now := time.Now().UTC()
	code, body = s.JSON(t, "POST", "/v1/lake/destinations/"+id+"/backfills", keys["admin"], map[string]any{
		"from": now.Add(-24 * time.Hour).Format(time.RFC3339), "to": now.Add(time.Hour).Format(time.RFC3339)})
	if code != 202 {
		t.Fatalf("backfill: %d %v", code, body)
	}
	root := filepath.Join(dir, "org", "acme", "audit")
	part := "org_id=acme/event_date=" + now.Format(time.DateOnly) + "/"
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(root, part, lake.ManifestName))
		var m lake.Manifest
		if err == nil && json.Unmarshal(b, &m) == nil && m.Rows >= 30 {
			if len(m.Files) != 1 || !strings.HasPrefix(m.Files[0].Name, "backfill-") {
				t.Fatalf("manifest: %s", b)
			}
			if _, err := os.Stat(filepath.Join(root, part, m.Files[0].Name)); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no manifest with the 30 events under %s (%v):\n%s", root, err, s.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The operator's destinations receive every org's events.
	code, body = s.JSON(t, "POST", "/v1/lake/destinations", servertest.AdminToken, map[string]any{
		"name": "all", "target": map[string]any{"kind": "dir", "dir": map[string]any{"path": "all"}}})
	if code != 201 || body["scope"] != "all" {
		t.Fatalf("operator destination: %d %v", code, body)
	}
	if code, _ := s.JSON(t, "GET", "/v1/lake/destinations/"+id, servertest.AdminToken, nil); code != 404 {
		t.Fatalf("the operator reads an org's destination: %d", code)
	}
}
