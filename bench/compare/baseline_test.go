package main

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/bench/internal/pg"
	"github.com/auditstore/auditstore/schema"
)

// TestBaselineAnswersEveryShape loads a few thousand generated events into
// the baseline table and asks every shape about sampled events: each SQL
// statement runs, and the pages find the event they were drawn from.
func TestBaselineAnswersEveryShape(t *testing.T) {
	c := pg.MustStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	end := time.Now().UTC().Truncate(time.Millisecond)
	b, err := newBaseline(ctx, c, "shapes", end.Add(-90*day), end)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close(ctx)
	const events = 3000
	g := newGen(1, events, 5, 90*day, end)
	s := newSampler(1, end)
	chunks := make(chan []byte, 10)
	var chunk []byte
	for i := 0; ; i++ {
		it, ok := g.Next()
		if !ok {
			break
		}
		s.offer(&it)
		r := schema.NewRow(&it.Event, it.Org.ID, it.Received, keepPlan)
		chunk = copyRow(chunk, &r)
		if i%1000 == 999 {
			chunks <- chunk
			chunk = nil
		}
	}
	close(chunks)
	n, err := b.copyLoad(ctx, 2, chunks)
	if err != nil || n != events {
		t.Fatalf("copied %d rows (%v), want %d", n, err, events)
	}
	if err := b.settle(ctx); err != nil {
		t.Fatal(err)
	}
	if size, err := b.size(ctx); err != nil || size < events*100 {
		t.Errorf("size=%d (%v), want at least 100 bytes per event", size, err)
	}
	w := window{now: end}
	for _, x := range s.draw(20, rand.New(rand.NewPCG(1, 2))) {
		for _, sh := range shapes {
			rows, sig, err := b.query(ctx, sh.sql, sh.args(w, x))
			if err != nil {
				t.Fatalf("%s: %v", sh.name, err)
			}
			if rows < 1 || rows > 50 && !sh.agg || sh.agg && sig < 1 {
				t.Errorf("%s for %+v: rows=%d sig=%d, want a page of 1-50 or an aggregate", sh.name, x, rows, sig)
			}
		}
	}
	rows, bytes, err := b.exportCSV(ctx, g.Orgs()[0].ID)
	if err != nil || rows < 1 || bytes < rows*100 {
		t.Errorf("export: %d rows, %d bytes (%v)", rows, bytes, err)
	}
	if err := b.drop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCopyTextRoundTrip stores values with COPY's special characters and
// reads them back unchanged.
func TestCopyTextRoundTrip(t *testing.T) {
	c := pg.MustStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC().Truncate(time.Millisecond)
	b, err := newBaseline(ctx, c, "roundtrip", now, now)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close(ctx)
	r := schema.Row{ID: uuid.New(), OrgID: "o", Timestamp: now, ExpiresAt: now.Add(time.Hour), EventType: "a.b", ActorType: "user",
		EventMetadata: `{"p":"C:\\dir\\n","q":"tab\there"}`, ResourceName: "line\nbreak\ttab\\slash\rcr", ProjectID: ""}
	chunks := make(chan []byte, 1)
	chunks <- copyRow(nil, &r)
	close(chunks)
	if n, err := b.copyLoad(ctx, 1, chunks); err != nil || n != 1 {
		t.Fatalf("copy: %d rows, %v", n, err)
	}
	var (
		name, path, am string
		project        *string
		created        time.Time
	)
	err = b.conn.QueryRow(ctx, `SELECT "resourceName", "eventMetadata"->>'p', "actorMetadata"::text, "projectId", "createdAt"
FROM audit_logs`).Scan(&name, &path, &am, &project, &created)
	if err != nil {
		t.Fatal(err)
	}
	if name != r.ResourceName || path != `C:\dir\n` || am != "{}" || project != nil || !created.Equal(now) {
		t.Errorf("read back name=%q path=%q actorMetadata=%q project=%v created=%v", name, path, am, project, created)
	}
}

func TestSignature(t *testing.T) {
	page := []byte(`{"events":[{"id":"a"},{"id":"b"}],"total":2}`)
	if rows, _, err := signature(shapes[0], page); err != nil || rows != 2 {
		t.Errorf("page: rows=%d (%v), want 2", rows, err)
	}
	top := []byte(`{"groups":[{"actorId":"u1","count":7,"resources":3},{"actorId":"u2","count":5},{"other":true,"count":9}]}`)
	if rows, sig, err := signature(shapes[len(shapes)-1], top); err != nil || rows != 3 || sig != 7 {
		t.Errorf("top: rows=%d sig=%d (%v), want 3 groups, first count 7", rows, sig, err)
	}
}
