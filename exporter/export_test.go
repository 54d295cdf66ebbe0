package exporter

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/internal/testkit"
	"github.com/auditstore/auditstore/schema"
)

func quiet() *slog.Logger { return testkit.Quiet() }

type fakeRecorder = testkit.Recorder

type env struct {
	db  *chtest.DB
	x   *Exporter
	srv *httptest.Server
	rec *fakeRecorder
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	db := testkit.Migrated(tb)
	if db.HTTPAddr == "" {
		tb.Skip("needs the HTTP address of the test ClickHouse (CLICKHOUSE_HTTP_ADDR)")
	}
	cfg := DefaultConfig()
	cfg.ClickHouseHTTP, cfg.Database = db.HTTPAddr, db.Name
	cfg.User, cfg.Password = db.Config.Username, db.Config.Password
	rec := &fakeRecorder{}
	x, err := New(db.Conn, rec, cfg, quiet())
	if err != nil {
		tb.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.Recover(quiet()), httpx.Errors(quiet()), func(c *gin.Context) {
		p := schema.Principal{OrgID: c.GetHeader("X-Test-Org"), Role: schema.RoleRead, KeyID: "k1"}
		c.Request = c.Request.WithContext(schema.WithPrincipal(c.Request.Context(), p))
	})
	x.Routes(r, tenant.Require)
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	return &env{db: db, x: x, srv: srv, rec: rec}
}

func (e *env) get(tb testing.TB, org, query string) *http.Response {
	tb.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/export?"+query, nil)
	req.Header.Set("X-Test-Org", org)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}

func (e *env) download(tb testing.TB, org, query string) []byte {
	tb.Helper()
	resp := e.get(tb, org, query)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("download %s: %v", query, err)
	}
	if resp.StatusCode != 200 {
		tb.Fatalf("download %s: %d %s", query, resp.StatusCode, b)
	}
	return b
}

// genRows makes rows with every kind of content an export must carry.
func genRows(org string, n int, seed uint64) []schema.Row {
	rng := rand.New(rand.NewPCG(seed, 7))
	plan := schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}
	now := time.Now().UTC().Truncate(time.Millisecond)
	types := []string{"create-secret", "USER_LOGIN", "api_key.create", "execute"}
	var rows []schema.Row
	for i := 0; i < n; i++ {
		e := schema.Event{ID: uuid.NewString(), Timestamp: now.Add(-time.Duration(rng.IntN(86400000)) * time.Millisecond),
			Event: schema.EventInfo{Type: types[i%len(types)]}, Actor: schema.Actor{Type: "user"}}
		switch i % 5 {
		case 0: // everything empty that can be
		case 1:
			e.Event.Metadata = json.RawMessage(`{"path":"/ünïcødé/路径","emoji":"🔐","quote":"a \"b\", c","nl":"x\ny"}`)
			e.Actor.Metadata = json.RawMessage(`{"userId":"u-1","email":"Ada@Example.com","name":"Ada, \"the\" first"}`)
			e.ProjectID, e.ProjectName = "p-1", "Projet été"
			e.Resource = &schema.Resource{Type: "secret", ID: "s-1", Name: "DB_PASSWORD"}
			e.IPAddress, e.UserAgent, e.UserAgentType, e.TraceID = "2001:db8::1", "curl/8.0", "cli", "trace-1"
		case 2:
			e.Event.Metadata = json.RawMessage(`{"blob":"` + strings.Repeat("x", 60_000) + `"}`)
			e.IPAddress = "203.0.113.9"
		case 3:
			e.Event.Metadata = json.RawMessage(`{"nested":{"a":[1,2,{"b":null}]},"empty":{}}`)
			e.Actor.Metadata = json.RawMessage(`{"serviceId":"svc-9"}`)
		case 4:
			e.Event.Metadata = json.RawMessage(`{"tab":"a\tb","cr":"a\rb","nul":"a\u0000b"}`)
		}
		rows = append(rows, schema.NewRow(&e, org, now, plan))
	}
	return rows
}

// record is one exported row: column name → value, nil for NULL.
type record map[string]*string

func str(s string) *string { return &s }

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ts(t time.Time) *string { return str(t.UTC().Format("2006-01-02T15:04:05.000Z")) }

// expected is what every format must carry for a row (createdAt aside).
func expected(r schema.Row) record {
	return record{
		"id": str(r.ID.String()), "timestamp": ts(r.Timestamp), "eventType": str(r.EventType),
		"eventMetadata": optional(r.EventMetadata), "actorType": str(r.ActorType), "actorId": optional(r.ActorID),
		"actorEmail": optional(r.ActorEmail), "actorUsername": optional(r.ActorUsername), "actorName": optional(r.ActorName),
		"actorMetadata": optional(r.ActorMetadata), "orgId": str(r.OrgID), "projectId": optional(r.ProjectID),
		"projectName": optional(r.ProjectName), "resourceType": optional(r.ResourceType), "resourceId": optional(r.ResourceID),
		"resourceName": optional(r.ResourceName), "ipAddress": optional(r.IPAddress), "userAgent": optional(r.UserAgent),
		"userAgentType": optional(r.UserAgentType), "traceId": optional(r.TraceID), "receivedAt": ts(r.ReceivedAt),
		"expiresAt": ts(r.ExpiresAt),
	}
}

func show(p *string) string {
	if p == nil {
		return "NULL"
	}
	if len(*p) > 80 {
		return fmt.Sprintf("%q...(%d bytes)", (*p)[:80], len(*p))
	}
	return fmt.Sprintf("%q", *p)
}

// compare checks got against want in order, field by field.
func compare(tb testing.TB, format string, got []record, want []schema.Row) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d rows, want %d", format, len(got), len(want))
	}
	for i := range want {
		exp := expected(want[i])
		for _, col := range Columns {
			if col.Name == "createdAt" {
				if got[i][col.Name] == nil {
					tb.Fatalf("%s row %d: createdAt is NULL", format, i)
				}
				continue
			}
			g, w := got[i][col.Name], exp[col.Name]
			if (g == nil) != (w == nil) || (g != nil && *g != *w) {
				tb.Fatalf("%s row %d (%s) column %s: got %s, want %s", format, i, want[i].ID, col.Name, show(g), show(w))
			}
		}
	}
}

// sortLikeExport orders rows as the export does: by time, then id.
func sortLikeExport(rows []schema.Row) []schema.Row {
	out := append([]schema.Row(nil), rows...)
	less := func(a, b schema.Row) bool {
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.Before(b.Timestamp)
		}
		return bytes.Compare(a.ID[:], b.ID[:]) < 0
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && less(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func writeTemp(tb testing.TB, b []byte, name string) string {
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func parseCSV(tb testing.TB, b []byte) []record {
	tb.Helper()
	rd := csv.NewReader(bytes.NewReader(b))
	all, err := rd.ReadAll()
	if err != nil {
		tb.Fatalf("csv: %v", err)
	}
	header := all[0]
	var out []record
	for _, line := range all[1:] {
		r := record{}
		for i, v := range line {
			r[header[i]] = optional(v)
		}
		out = append(out, r)
	}
	return out
}
