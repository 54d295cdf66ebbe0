package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/auditstore/auditstore/exporter/lake"
	"github.com/auditstore/auditstore/internal/s3test"
	"github.com/auditstore/auditstore/internal/servertest"
)

// TestLakeServerKilledMidFile kills the server (SIGKILL: its embedded
// engine dies with it) while ClickHouse uploads a file to S3, then starts
// it again on the same data: a reader going by the manifests never sees a
// partial file, and in the end sees every event once.
func TestLakeServerKilledMidFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	s3 := s3test.Start(t, "lake")
	proxy := s3test.NewThrottle(t, s3.Endpoint)
	data := t.TempDir()
	s := servertest.StartIn(t, data, "-allow-private-destinations")
	keys := s.Org(t, "acme", "ingest", "admin", "read")
	// ~4 MB of incompressible metadata: seconds through the slow proxy.
	var lines strings.Builder
	for i := 0; i < 2000; i++ {
		pad := make([]byte, 1000)
		_, _ = rand.Read(pad)
		fmt.Fprintf(&lines, `{"event":{"type":"deploy","metadata":{"n":%d,"pad":%q}},"actor":{"type":"service"}}`+"\n", i, hex.EncodeToString(pad))
	}
	s.Ingest(t, keys["ingest"], []byte(lines.String()))
	s.WaitTotal(t, keys["read"], "eventType=deploy", 2000)
	code, body := s.JSON(t, "POST", "/v1/lake/destinations", keys["admin"], map[string]any{"name": "lake", "target": map[string]any{
		"kind": "s3", "s3": map[string]any{"endpoint": proxy.Endpoint(), "bucket": "lake", "prefix": "kill", "pathStyle": true,
			"accessKeyId": s3.Access, "secretAccessKey": s3.Secret}}})
	if code != 201 {
		t.Fatalf("create destination: %d %v", code, body)
	}
	id := body["id"].(string)
	now := time.Now().UTC()
	before := proxy.Uploaded()
	if code, body := s.JSON(t, "POST", "/v1/lake/destinations/"+id+"/backfills", keys["admin"], map[string]any{
		"from": now.Add(-24 * time.Hour).Format(time.RFC3339), "to": now.Add(time.Hour).Format(time.RFC3339)}); code != 202 {
		t.Fatalf("backfill: %d %v", code, body)
	}
	for deadline := time.Now().Add(60 * time.Second); proxy.Uploaded() < before+512<<10; {
		if time.Now().After(deadline) {
			t.Fatalf("no upload under way:\n%s", s.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Process().Kill(); err != nil {
		t.Fatal(err)
	}
	_ = s.WaitExit(t, 30*time.Second)
	s.WaitEngineGone(t)

	root := filepath.Join(s3.Dir, "lake", "kill")
	if ids := manifestIDs(t, root); len(ids) != 0 {
		t.Fatalf("after the kill the manifests list %d events", len(ids))
	}
	proxy.Slow.Store(false)
	s = servertest.StartIn(t, data, "-allow-private-destinations")
	for deadline := time.Now().Add(90 * time.Second); ; {
		_, body := s.JSON(t, "GET", "/v1/lake/destinations/"+id+"/backfills", keys["admin"], nil)
		if bs, _ := body["backfills"].([]any); len(bs) == 1 && bs[0].(map[string]any)["state"] == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backfill not done after the restart: %v\n%s", body, s.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	ids := manifestIDs(t, root)
	deploys := 0
	for _, typ := range ids {
		if typ == "deploy" {
			deploys++
		}
	}
	if deploys != 2000 {
		t.Fatalf("deploy events in the manifests' files: %d, want 2000", deploys)
	}
}

// manifestIDs reads every file the manifests under root list and returns
// the event type by id; an id found twice fails the test.
func manifestIDs(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.Name() != lake.ManifestName {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m lake.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("manifest %s: %v", p, err)
		}
		for _, f := range m.Files {
			data, err := os.ReadFile(filepath.Join(filepath.Dir(p), f.Name))
			if err != nil {
				t.Fatal(err)
			}
			pf, err := file.NewParquetReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := fr.ReadTable(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if uint64(tbl.NumRows()) != f.Rows {
				t.Fatalf("%s: %d rows, the manifest says %d", f.Name, tbl.NumRows(), f.Rows)
			}
			tr := array.NewTableReader(tbl, 4096)
			for tr.Next() {
				rec := tr.Record()
				var idCol, typeCol int
				for i, fl := range rec.Schema().Fields() {
					switch fl.Name {
					case "id":
						idCol = i
					case "eventType":
						typeCol = i
					}
				}
				for r := 0; r < int(rec.NumRows()); r++ {
					id := rec.Column(idCol).ValueStr(r)
					if _, dup := out[id]; dup {
						t.Fatalf("event %s delivered twice", id)
					}
					out[id] = rec.Column(typeCol).ValueStr(r)
				}
			}
			tr.Release()
			tbl.Release()
			pf.Close()
		}
		return nil
	})
	return out
}
