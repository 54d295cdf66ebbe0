package schema

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestStoredEvent(t *testing.T) {
	ts := time.Date(2026, 5, 1, 12, 0, 0, 123e6, time.UTC)
	r := Row{OrgID: "acme", Timestamp: ts, ID: uuid.MustParse("0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a"),
		EventType: "create-secret", EventMetadata: `{"a":1}`, ActorType: "user", ActorMetadata: `{"userId":"u-1"}`,
		ResourceType: "secret", ResourceID: "s-1", IPAddress: "10.0.0.1", ReceivedAt: ts.Add(time.Second),
		ExpiresAt: ts.Add(90 * 24 * time.Hour)}
	var created time.Time
	if n := len(r.ScanTargets(&created)); n != len(StoredColumns) {
		t.Fatalf("%d scan targets for %d columns", n, len(StoredColumns))
	}
	raw, err := json.Marshal(r.Stored(ts.Add(2 * time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a","timestamp":"2026-05-01T12:00:00.123Z",` +
		`"event":{"type":"create-secret","metadata":{"a":1}},"actor":{"type":"user","metadata":{"userId":"u-1"}},` +
		`"orgId":"acme","resource":{"type":"secret","id":"s-1"},"ipAddress":"10.0.0.1",` +
		`"receivedAt":"2026-05-01T12:00:01.123Z","createdAt":"2026-05-01T12:00:02.123Z","expiresAt":"2026-07-30T12:00:00.123Z"}`
	if string(raw) != want {
		t.Fatalf("got  %s\nwant %s", raw, want)
	}
	r.ResourceType, r.ResourceID, r.EventMetadata, r.ActorMetadata = "", "", "", "{broken"
	raw, _ = json.Marshal(r.Stored(ts))
	if strings.Contains(string(raw), "resource") || strings.Contains(string(raw), "metadata") {
		t.Fatalf("absent parts present: %s", raw)
	}
	if StoredColumns[len(StoredColumns)-1] != "created_at" || len(InsertColumns) != len(StoredColumns)-1 {
		t.Fatalf("StoredColumns changed InsertColumns: %v", InsertColumns)
	}
}
