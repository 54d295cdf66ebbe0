package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/auditstore/auditstore/bench/internal/pg"
	"github.com/auditstore/auditstore/schema"
)

// TestFrontAnswersLikeBareSQL loads generated events into the baseline and
// asks every shape through the layer in front of PostgreSQL: each answer
// has bare SQL's events or groups, pages carry their total, every read
// leaves one committed audit record, and an unknown key is refused.
func TestFrontAnswersLikeBareSQL(t *testing.T) {
	c := pg.MustStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	end := time.Now().UTC().Truncate(time.Millisecond)
	b, err := newBaseline(ctx, c, "front", end.Add(-90*day), end)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close(ctx)
	const events = 3000
	g := newGen(1, events, 5, 90*day, end)
	s := newSampler(1, end)
	chunks := make(chan []byte, 10)
	var chunk []byte
	for {
		it, ok := g.Next()
		if !ok {
			break
		}
		s.offer(&it)
		r := schema.NewRow(&it.Event, it.Org.ID, it.Received, keepPlan)
		chunk = copyRow(chunk, &r)
	}
	chunks <- chunk
	close(chunks)
	if n, err := b.copyLoad(ctx, 1, chunks); err != nil || n != events {
		t.Fatalf("copied %d rows (%v), want %d", n, err, events)
	}
	var orgs []string
	for _, o := range g.Orgs() {
		orgs = append(orgs, o.ID)
	}
	f, err := newFront(ctx, b, orgs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	client := &http.Client{Timeout: time.Minute}
	w := window{now: end}
	asked := 0
	for _, x := range s.draw(5, rand.New(rand.NewPCG(1, 2))) {
		for _, sh := range shapes {
			body, err := f.get(client, x.org, sh.url(w, x))
			if err != nil {
				t.Fatalf("%s: %v", sh.name, err)
			}
			asked++
			frows, fsig, err := signature(sh, body)
			if err != nil {
				t.Fatal(err)
			}
			brows, bsig, err := b.query(ctx, sh.sql, sh.args(w, x))
			if err != nil {
				t.Fatal(err)
			}
			if !frontAgrees(sh, frows, fsig, brows, bsig) || frows < 1 {
				t.Errorf("%s for %+v: front rows=%d sig=%d, bare rows=%d sig=%d", sh.name, x, frows, fsig, brows, bsig)
			}
			if !sh.agg {
				var page pageResponse
				if err := json.Unmarshal(body, &page); err != nil {
					t.Fatal(err)
				}
				if page.Total == nil || *page.Total < int64(len(page.Events)) || page.Pages == nil || page.Events[0].ID == "" {
					t.Errorf("%s: total=%v pages=%v events=%d, want a total and page count", sh.name, page.Total, page.Pages, len(page.Events))
				}
			}
		}
	}
	var recorded int
	if err := b.conn.QueryRow(ctx, `SELECT count(*) FROM audit_logs_reads WHERE "eventType" = $1`, schema.EventQuery).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != asked {
		t.Errorf("audit records=%d, want one per read (%d)", recorded, asked)
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer bk_0_unknown")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown key: status=%d, want 401", resp.StatusCode)
	}
}
