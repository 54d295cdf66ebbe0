package exporter

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/schema"
)

func TestEveryFormatReadsBackEqual(t *testing.T) {
	e := newEnv(t)
	acme := genRows("acme", 250, 1)
	other := genRows("other", 60, 2)
	chtest.InsertRows(t, e.db, append(append([]schema.Row{}, acme...), other...))

	var logins []schema.Row
	for _, r := range acme {
		if r.EventType == "USER_LOGIN" {
			logins = append(logins, r)
		}
	}
	for _, tt := range []struct {
		query string
		want  []schema.Row
	}{
		{"", sortLikeExport(acme)},
		{"eventType=USER_LOGIN", sortLikeExport(logins)},
	} {
		t.Run("parquet "+tt.query, func(t *testing.T) {
			b := e.download(t, "acme", "format=parquet&"+tt.query)
			got, sch := readParquet(t, b)
			compare(t, "parquet", got, tt.want)
			checkSchema(t, sch)
			if e.db.Kind == "embedded" {
				compare(t, "parquet via clickhouse", e.readWithClickHouse(t, writeTemp(t, b, "x.parquet"), "Parquet"), tt.want)
			}
		})
		t.Run("arrow "+tt.query, func(t *testing.T) {
			b := e.download(t, "acme", "format=arrow&"+tt.query)
			got, sch := readArrow(t, b)
			compare(t, "arrow", got, tt.want)
			checkSchema(t, sch)
			if e.db.Kind == "embedded" {
				compare(t, "arrow via clickhouse", e.readWithClickHouse(t, writeTemp(t, b, "x.arrows"), "ArrowStream"), tt.want)
			}
		})
		t.Run("csv "+tt.query, func(t *testing.T) {
			b := e.download(t, "acme", "format=csv&"+tt.query)
			if !strings.HasPrefix(string(b), `"id","timestamp","eventType",`) || !strings.Contains(string(b), "\r\n") {
				t.Fatalf("csv header or line ends: %.120q", b)
			}
			compare(t, "csv", parseCSV(t, b), tt.want)
			if e.db.Kind == "embedded" {
				compare(t, "csv via clickhouse", e.readWithClickHouse(t, writeTemp(t, b, "x.csv"), "CSVWithNames"), tt.want)
			}
		})
		t.Run("ndjson "+tt.query, func(t *testing.T) {
			b := e.download(t, "acme", "format=ndjson&"+tt.query)
			compare(t, "ndjson", readNDJSON(t, b), tt.want)
		})
	}
	// Another org's rows never leave with acme's key, in any format.
	for _, f := range []string{"parquet", "arrow", "csv", "ndjson"} {
		b := e.download(t, "acme", "format="+f)
		for _, r := range other {
			if strings.Contains(string(b), r.ID.String()) {
				t.Fatalf("%s export of acme holds event %s of another org", f, r.ID)
			}
		}
	}
	if evs := e.rec.Events(); len(evs) == 0 || evs[0].Event.Type != "audit-log.export" || evs[0].OrgID != "acme" {
		t.Fatalf("export audit events: %d, first %+v", len(evs), evs)
	}
}

// checkSchema pins the typed columns of the binary formats.
func checkSchema(t *testing.T, sch interface{ String() string }) {
	t.Helper()
	s := sch.String()
	for _, want := range []string{"timestamp: type=timestamp[ms", "receivedAt: type=timestamp[ms", "id: type=utf8", "eventMetadata: type=utf8"} {
		if !strings.Contains(s, want) {
			t.Errorf("schema lacks %q:\n%s", want, s)
		}
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"", "format=xml", "format=csv&format=parquet", "format=csv&nope=1"} {
		resp := e.get(t, "acme", q)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"code"`) {
			t.Errorf("%q: %d %s, want 400 in the error shape", q, resp.StatusCode, b)
		}
	}
}

func TestCancelledDownloadStopsTheQuery(t *testing.T) {
	e := newEnv(t)
	// Two million rows, made inside ClickHouse: an export that takes a while.
	err := e.db.Conn.Exec(context.Background(), `INSERT INTO events (org_id, timestamp, id, event_type, event_metadata, actor_type, received_at, expires_at)
		SELECT 'acme', now64(3) - number, generateUUIDv4(), 'bulk', repeat('x', 200), 'user', now64(3), now64(3) + INTERVAL 1 DAY
		FROM numbers(2000000)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"csv", "parquet"} {
		t.Run(format, func(t *testing.T) {
			resp := e.get(t, "acme", "format="+format)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			buf := make([]byte, 64<<10)
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				t.Fatal(err)
			}
			id := e.runningExport(t)
			if id == "" {
				t.Skip("export finished before it could be cancelled")
			}
			resp.Body.Close() // the client goes away
			deadline := time.Now().Add(20 * time.Second)
			for {
				running, err := e.x.ch.running(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if !running {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("query %s still running 20s after the client left", id)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// runningExport returns the id of a running export query, if any.
func (e *env) runningExport(t *testing.T) string {
	t.Helper()
	var id string
	rows, err := e.db.Conn.Query(context.Background(),
		"SELECT query_id FROM system.processes WHERE startsWith(query_id, 'auditstore-export-') LIMIT 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

var _ = http.StatusOK
