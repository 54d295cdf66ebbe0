package lake

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func s3Target(s *s3Server, prefix string) map[string]any {
	return map[string]any{"kind": "s3", "every": "100ms", "s3": map[string]any{
		"endpoint": s.endpoint, "bucket": "lake", "prefix": prefix, "pathStyle": true,
		"accessKeyId": s.access, "secretAccessKey": s.secret}}
}

// Events land in Hive partitions of their org and day, listed by the
// manifests; read back by arrow/go's Parquet reader and by ClickHouse's s3
// function, they equal /v1/export of the same events.
func TestS3DeliveryEqualsExport(t *testing.T) {
	s3 := startS3(t)
	db := migrated(t)
	h := newHarness(t, db, "node-a", nil)
	id := h.mustCreate(t, "acme", map[string]any{"name": "lake", "target": s3Target(s3, "audit")})
	now := time.Now().UTC()
	ids := h.insert(t, now, events("acme", 60, now, 3), false)
	h.insert(t, now, events("beta", 10, now, 1), true) // another org's: never delivered here
	root := filepath.Join(s3.dir, "lake", "audit")
	eventually(t, 60*time.Second, "60 events in the manifests", func() bool {
		_, n := manifestFiles(t, root)
		return n == 60
	})

	// Layout: org_id=acme/event_date=<day>/, one partition per day.
	ms := manifests(t, root)
	if len(ms) != 3 {
		t.Fatalf("partitions=%d (%v), want 3 days", len(ms), keys(ms))
	}
	for part, m := range ms {
		day := strings.TrimSuffix(strings.TrimPrefix(part, "org_id=acme/event_date="), "/")
		if _, err := time.Parse(time.DateOnly, day); err != nil || !strings.HasPrefix(part, "org_id=acme/event_date=") {
			t.Fatalf("partition %q, want org_id=acme/event_date=YYYY-MM-DD/", part)
		}
		if m.Destination != id || m.Partition != part || len(m.Files) != 1 {
			t.Fatalf("manifest %+v", m)
		}
		f := m.Files[0]
		st, err := os.Stat(filepath.Join(root, part, f.Name))
		if err != nil || uint64(st.Size()) != f.Bytes || !strings.HasPrefix(f.Checksum, "etag:") {
			t.Fatalf("file %+v: stat %v, %v", f, st, err)
		}
		if f.MinTime.Format(time.DateOnly) != day || f.MaxTime.Format(time.DateOnly) != day {
			t.Fatalf("file %s time range %s..%s is not within %s", f.Name, f.MinTime, f.MaxTime, day)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "org_id=beta")); err == nil {
		t.Fatal("another org's events were delivered")
	}

	// arrow/go reads the same rows and schema as /v1/export's Parquet.
	files, _ := manifestFiles(t, root)
	got, gotSchema := readFiles(t, files)
	want, wantSchema := readParquet(t, exportParquet(t, db, "acme"))
	sortRows(want)
	if !gotSchema.Equal(wantSchema) {
		t.Fatalf("schema:\n%s\nwant /v1/export's:\n%s", gotSchema, wantSchema)
	}
	sameRows(t, got, want)
	if len(want) != len(ids) {
		t.Fatalf("export rows=%d, want %d", len(want), len(ids))
	}

	// ClickHouse's s3 function reads the same.
	viaS3 := chQuery(t, db, "SELECT * EXCEPT (org_id, event_date) FROM s3({u:String}, {k:String}, {s:String}, 'Parquet') ORDER BY id FORMAT TSV",
		map[string]string{"u": s3.endpoint + "/lake/audit/org_id=acme/*/*.parquet", "k": s3.access, "s": s3.secret})
	viaEvents := chQuery(t, db, "SELECT "+exportSelect()+" FROM events WHERE org_id = 'acme' ORDER BY id FORMAT TSV", nil)
	if viaS3 != viaEvents || strings.Count(viaS3, "\n") != 60 {
		t.Fatalf("s3() read:\n%.2000s\nwant:\n%.2000s", viaS3, viaEvents)
	}

	// Status.
	code, out, raw := h.do(t, "acme", "GET", "/v1/lake/destinations/"+id, nil)
	st := out["status"].(map[string]any)
	if code != http.StatusOK || st["rows"].(float64) != 60 || st["files"].(float64) != 3 || st["lastFile"] == "" {
		t.Fatalf("status: %d %s", code, raw)
	}
	if strings.Contains(raw, s3.secret) || strings.Contains(raw, s3.access) {
		t.Fatalf("credentials shown: %s", raw)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
