package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/servertest"
	"github.com/auditstore/auditstore/schema"
)

type listResponse struct {
	Events []schema.StoredEvent `json:"events"`
	Total  int                  `json:"total"`
}

// TestIngestQueryExportEndToEnd sends events of two orgs through the real
// server and reads them back through the list and every export format.
func TestIngestQueryExportEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	s := servertest.Start(t)
	a := s.Org(t, "org-a", "ingest", "read")
	ingestA, readA := a["ingest"], a["read"]
	ingestB := s.Org(t, "org-b", "ingest")["ingest"]

	send := func(key, prefix string, n int) []string {
		var ids []string
		var body strings.Builder
		for i := 0; i < n; i++ {
			id := uuid.NewString()
			ids = append(ids, id)
			fmt.Fprintf(&body, `{"id":%q,"timestamp":%q,"event":{"type":"%s.login","metadata":{"i":%d,"ü":"✓ \"q\", x","o":{"k":"v%d"},"d":{"e":{"f":%d}}}},`+
				`"actor":{"type":"user","metadata":{"userId":"%s-u%d","email":"%s@example.com"}},"ipAddress":"203.0.113.%d",`+
				`"resource":{"type":"secret","id":"%s-s%d"},"traceId":"%s-t%d"}`+"\n",
				id, time.Now().Add(-time.Duration(i)*time.Minute).UTC().Format(time.RFC3339Nano), prefix, i, i, i, prefix, i%3, prefix, i%250, prefix, i, prefix, i)
		}
		s.Ingest(t, key, []byte(body.String()))
		return ids
	}
	idsA := send(ingestA, "a", 40)
	idsB := send(ingestB, "b", 30)

	var list listResponse
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b := s.Do(t, "GET", "/v1/events?eventType=a.login&limit=1000", readA, nil)
		if code != 200 {
			t.Fatalf("list: %d %s", code, b)
		}
		list = listResponse{}
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatal(err)
		}
		if list.Total == len(idsA) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list total=%d, want %d", list.Total, len(idsA))
		}
		time.Sleep(50 * time.Millisecond)
	}
	byID := map[string]schema.StoredEvent{}
	for _, e := range list.Events {
		byID[e.ID] = e
	}
	for _, id := range idsA {
		if _, ok := byID[id]; !ok {
			t.Fatalf("event %s of org-a missing from the list", id)
		}
	}
	// Metadata filters over what the ingest path wrote: depth 1 and 2 on
	// the hashes the writer stored, depth 3 on the JSON.
	for q, want := range map[string]string{
		"metadata.i=7": idsA[7], "metadata.i=7.0": idsA[7], "metadata.o.k=v8": idsA[8], "metadata.d.e.f=9": idsA[9],
	} {
		code, b := s.Do(t, "GET", "/v1/events?"+q, readA, nil)
		var got listResponse
		if code != 200 || json.Unmarshal(b, &got) != nil || got.Total != 1 || len(got.Events) != 1 || got.Events[0].ID != want {
			t.Errorf("%s: %d %s, want the one event %s", q, code, b, want)
		}
	}
	// Org B's events are invisible to A's key, whatever the filters.
	for _, q := range []string{"", "eventType=b.login", "resourceId=b-s1", "traceId=b-t2", "actorId=b-u1", "actorEmail=b@example.com"} {
		code, b := s.Do(t, "GET", "/v1/events?limit=1000&"+q, readA, nil)
		if code != 200 {
			t.Fatalf("list %q: %d %s", q, code, b)
		}
		for _, id := range idsB {
			if strings.Contains(string(b), id) {
				t.Fatalf("list %q with org-a's key shows org-b's event %s", q, id)
			}
		}
	}
	code, b := s.Do(t, "GET", "/v1/events/"+idsB[0], readA, nil)
	if code != 404 {
		t.Fatalf("get org-b's event with org-a's key: %d %s, want 404", code, b)
	}

	// NDJSON export: the same events, field by field, as the list.
	code, b = s.Do(t, "GET", "/v1/export?format=ndjson&eventType=a.login", readA, nil)
	if code != 200 {
		t.Fatalf("export: %d %s", code, b)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	n := 0
	for sc.Scan() {
		var e schema.StoredEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		want, ok := byID[e.ID]
		if !ok {
			t.Fatalf("export has event %s the list does not", e.ID)
		}
		gotJSON, _ := json.Marshal(e)
		wantJSON, _ := json.Marshal(want)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("export and list differ for %s:\nexport %s\nlist   %s", e.ID, gotJSON, wantJSON)
		}
		n++
	}
	if n != len(idsA) {
		t.Fatalf("export rows=%d, want %d", n, len(idsA))
	}
	// (The org's own audit events name org-b's ids: the read above asked for
	// one. The data events are what must never cross.)
	for _, f := range []string{"parquet", "arrow", "csv"} {
		code, b := s.Do(t, "GET", "/v1/export?format="+f+"&eventType=a.login,b.login", readA, nil)
		if code != 200 || len(b) == 0 {
			t.Fatalf("export %s: %d (%d bytes)", f, code, len(b))
		}
		for _, id := range idsB {
			if bytes.Contains(b, []byte(id)) {
				t.Fatalf("%s export of org-a holds org-b's event %s", f, id)
			}
		}
	}
	// Reads were audited as events of org-a by the read key.
	// (They are durable at once, visible after the pipeline's next flush.)
	for _, typ := range []string{"audit-log.query", "audit-log.export"} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, b := s.Do(t, "GET", "/v1/events?eventType="+typ+"&actorType=apiKey", readA, nil)
			var l listResponse
			_ = json.Unmarshal(b, &l)
			if code == 200 && l.Total > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s events: %d total=%d %s", typ, code, l.Total, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
