package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"runtime"
	"time"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/schema"
)

const day = 24 * time.Hour

// runIngest measures section 1: the same N events into auditstore through
// HTTP ingest (until durable and visible), into ClickHouse by raw columnar
// INSERTs (the ceiling), and into the baseline by COPY (until committed);
// then the bytes each holds. Every run starts from empty databases.
func runIngest(ctx context.Context, e *env) (*IngestResult, error) {
	res := &IngestResult{Events: e.sizes.Ingest}
	end := time.Now().UTC().Truncate(time.Millisecond)
	fresh := func() *gen.Generator { return newGen(e.sizes.Seed, e.sizes.Ingest, e.sizes.Orgs, day, end) }
	for r := range e.sizes.IngestRuns {
		log.Printf("ingest run %d/%d: generating %d events as HTTP requests of %d ...", r+1, e.sizes.IngestRuns, e.sizes.Ingest, e.sizes.Batch)
		g := fresh()
		bodies, orgOf, jsonBytes := httpBodies(g, e.sizes.Batch)
		res.JSONBytesPerEvent = float64(jsonBytes) / float64(e.sizes.Ingest)
		o, err := openOurs(ctx, e.eng, fmt.Sprintf("cmp_ingest_%d", r))
		if err != nil {
			return nil, err
		}
		o.serve(e, orgPlans(g, ""), "ingest")
		d, err := o.post(ctx, bodies, orgOf, e.sizes.Clients, uint64(e.sizes.Ingest))
		if err != nil {
			return nil, err
		}
		size, err := o.size(ctx)
		if err != nil {
			return nil, err
		}
		res.Ours = append(res.Ours, float64(e.sizes.Ingest)/d.Seconds())
		res.OursBytes = append(res.OursBytes, size)
		log.Printf("  auditstore HTTP ingest: %.0f events/s, %.1f MB on disk", res.Ours[r], float64(size)/1e6)
		if err := o.drop(ctx); err != nil {
			return nil, err
		}
		bodies, orgOf = nil, nil
		runtime.GC()

		rows := make([]schema.Row, 0, e.sizes.Ingest)
		for g := fresh(); ; {
			it, ok := g.Next()
			if !ok {
				break
			}
			rows = append(rows, schema.NewRow(&it.Event, it.Org.ID, it.Received, it.Org.Plan))
		}
		if res.Ceiling, err = appendCeiling(ctx, e, r, rows, res.Ceiling); err != nil {
			return nil, err
		}

		rows = nil
		runtime.GC()
		chunks := copyChunks(fresh(), e.sizes.Ingest, e.sizes.PGBatch)
		runtime.GC()
		b, err := newBaseline(ctx, e.pgc, fmt.Sprintf("cmp_ingest_%d", r), end.Add(-day), end)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		n, err := b.copyLoad(ctx, e.sizes.PGWriters, chunks)
		if err != nil {
			return nil, err
		}
		secs := time.Since(start).Seconds()
		if n != int64(e.sizes.Ingest) {
			return nil, fmt.Errorf("baseline: copied %d rows, want %d", n, e.sizes.Ingest)
		}
		if size, err = b.size(ctx); err != nil {
			return nil, err
		}
		res.Baseline = append(res.Baseline, float64(n)/secs)
		res.BaselineBytes = append(res.BaselineBytes, size)
		log.Printf("  PostgreSQL COPY: %.0f events/s, %.1f MB on disk", res.Baseline[r], float64(size)/1e6)
		if err := b.drop(ctx); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// appendCeiling inserts rows into a fresh database in columnar batches of
// 100,000 (the server's default batch) and appends the rate to rates.
func appendCeiling(ctx context.Context, e *env, r int, rows []schema.Row, rates []float64) ([]float64, error) {
	c, err := openOurs(ctx, e.eng, fmt.Sprintf("cmp_ceiling_%d", r))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for i := 0; i < len(rows); i += 100_000 {
		if err := c.insertRows(ctx, rows[i:min(i+100_000, len(rows))], fmt.Sprintf("ceiling-%d-%d", r, i)); err != nil {
			return nil, err
		}
	}
	rate := float64(len(rows)) / time.Since(start).Seconds()
	log.Printf("  raw columnar INSERT (ceiling): %.0f events/s", rate)
	return append(rates, rate), c.drop(ctx)
}

// copyChunks encodes the events of g for COPY, batch rows per chunk,
// with each org's own plan, before the clock starts.
func copyChunks(g *gen.Generator, events, batch int) chan []byte {
	chunks := make(chan []byte, (events+batch-1)/batch)
	var b []byte
	n := 0
	for {
		it, ok := g.Next()
		if ok {
			r := schema.NewRow(&it.Event, it.Org.ID, it.Received, it.Org.Plan)
			b = copyRow(b, &r)
			n++
		}
		if n == batch || (!ok && n > 0) {
			chunks <- b
			b, n = nil, 0
		}
		if !ok {
			close(chunks)
			return chunks
		}
	}
}

func orgPlans(g *gen.Generator, plan string) []orgPlan {
	var out []orgPlan
	for _, o := range g.Orgs() {
		p := plan
		if p == "" {
			p = o.Plan.Name
		}
		out = append(out, orgPlan{id: o.ID, plan: p})
	}
	return out
}

// loadBoth streams g's events into both sides, untimed: ClickHouse by raw
// columnar INSERTs of 100,000 rows, the baseline by COPY, concurrently;
// then brings both to rest (OPTIMIZE FINAL; VACUUM ANALYZE).
func loadBoth(ctx context.Context, e *env, g *gen.Generator, o *ours, b *baseline, s *sampler) error {
	chunks := make(chan []byte, 4)
	copied := make(chan error, 1)
	go func() {
		_, err := b.copyLoad(ctx, e.sizes.PGWriters, chunks)
		copied <- err
	}()
	var rows []schema.Row
	var chunk []byte
	inChunk, n, start := 0, 0, time.Now()
	for {
		it, ok := g.Next()
		if ok {
			if s != nil {
				s.offer(&it)
			}
			rows = append(rows, schema.NewRow(&it.Event, it.Org.ID, it.Received, keepPlan))
			chunk = copyRow(chunk, &rows[len(rows)-1])
			n++
			if inChunk++; inChunk == e.sizes.PGBatch {
				chunks <- chunk
				chunk, inChunk = nil, 0
			}
		}
		if len(rows) == 100_000 || (!ok && len(rows) > 0) {
			if err := o.insertRows(ctx, rows, fmt.Sprintf("load-%d", n)); err != nil {
				close(chunks)
				return err
			}
			rows = rows[:0]
			if n%1_000_000 < 100_000 {
				log.Printf("  loaded %d events (%s)", n, time.Since(start).Round(time.Second))
			}
		}
		if !ok {
			break
		}
	}
	if inChunk > 0 {
		chunks <- chunk
	}
	close(chunks)
	if err := <-copied; err != nil {
		return err
	}
	log.Printf("  both loaded in %s; settling (OPTIMIZE FINAL, VACUUM ANALYZE) ...", time.Since(start).Round(time.Second))
	if err := o.settle(ctx); err != nil {
		return err
	}
	return b.settle(ctx)
}

// runQueries measures section 2: each shape asked reps times per run of
// both sides, with the same drawn orgs and values, after three warm-ups.
func runQueries(ctx context.Context, e *env) (*QueryResult, error) {
	end := time.Now().UTC().Truncate(time.Millisecond)
	g := newGen(e.sizes.Seed, e.sizes.Queries, e.sizes.Orgs, 90*day, end)
	res := &QueryResult{Events: e.sizes.Queries, Orgs: e.sizes.Orgs, Largest: g.Orgs()[0].Share}
	o, err := openOurs(ctx, e.eng, "cmp_queries")
	if err != nil {
		return nil, err
	}
	b, err := newBaseline(ctx, e.pgc, "cmp_queries", end.Add(-90*day), end)
	if err != nil {
		return nil, err
	}
	s := newSampler(e.sizes.Seed, end)
	log.Printf("queries: loading %d events of %d orgs over 90 days into both ...", e.sizes.Queries, e.sizes.Orgs)
	if err := loadBoth(ctx, e, g, o, b, s); err != nil {
		return nil, err
	}
	if res.OursBytes, err = o.size(ctx); err != nil {
		return nil, err
	}
	if res.BaselineBytes, err = b.size(ctx); err != nil {
		return nil, err
	}
	o.serve(e, orgPlans(g, keepPlan.Name), "read")
	var orgIDs []string
	for _, org := range g.Orgs() {
		orgIDs = append(orgIDs, org.ID)
	}
	fr, err := newFront(ctx, b, orgIDs)
	if err != nil {
		return nil, fmt.Errorf("front: %w", err)
	}
	defer fr.close()
	w := window{now: end}
	client := &http.Client{Timeout: 5 * time.Minute}
	rng := rand.New(rand.NewPCG(e.sizes.Seed, 99))
	res.Shapes = make([]ShapeResult, len(shapes))
	for r := range e.sizes.Runs {
		for i, sh := range shapes {
			sr := &res.Shapes[i]
			sr.Name, sr.Label = sh.name, sh.label
			draws := s.draw(e.sizes.Reps+3, rng)
			var od, bd, fd []time.Duration
			for k, x := range draws {
				start := time.Now()
				body, err := o.get(client, x.org, sh.url(w, x))
				el := time.Since(start)
				if err != nil {
					return nil, err
				}
				orows, osig, err := signature(sh, body)
				if err != nil {
					return nil, err
				}
				start = time.Now()
				fbody, err := fr.get(client, x.org, sh.url(w, x))
				fel := time.Since(start)
				if err != nil {
					return nil, err
				}
				frows, fsig, err := signature(sh, fbody)
				if err != nil {
					return nil, err
				}
				qctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
				start = time.Now()
				brows, bsig, err := b.query(qctx, sh.sql, sh.args(w, x))
				bel := time.Since(start)
				cancel()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", sh.name, err)
				}
				if k < 3 {
					continue
				}
				od, bd, fd = append(od, el), append(bd, bel), append(fd, fel)
				sr.Checked++
				if frontAgrees(sh, frows, fsig, brows, bsig) {
					sr.FrontAgree++
				} else if sr.Checked-sr.FrontAgree <= 3 {
					log.Printf("  %s: the front differs from bare SQL for org %s: %d rows (%d), bare %d rows (%d)",
						sh.name, x.org, frows, fsig, brows, bsig)
				}
				if agree(sh, orows, osig, brows, bsig) {
					sr.Agree++
				} else if sr.Checked-sr.Agree <= 3 {
					log.Printf("  %s: answers differ for org %s: auditstore %d rows (%d), PostgreSQL %d rows (%d)",
						sh.name, x.org, orows, osig, brows, bsig)
				}
			}
			sr.OursP50 = append(sr.OursP50, percentile(od, 50))
			sr.OursP99 = append(sr.OursP99, percentile(od, 99))
			sr.BaseP50 = append(sr.BaseP50, percentile(bd, 50))
			sr.BaseP99 = append(sr.BaseP99, percentile(bd, 99))
			sr.FrontP50 = append(sr.FrontP50, percentile(fd, 50))
			sr.FrontP99 = append(sr.FrontP99, percentile(fd, 99))
			log.Printf("  run %d %-32s auditstore p50 %8s p99 %8s | PostgreSQL p50 %8s p99 %8s | PostgreSQL + layer p50 %8s p99 %8s", r+1, sh.name,
				ms(percentile(od, 50)), ms(percentile(od, 99)), ms(percentile(bd, 50)), ms(percentile(bd, 99)),
				ms(percentile(fd, 50)), ms(percentile(fd, 99)))
		}
	}
	if err := o.drop(ctx); err != nil {
		return nil, err
	}
	return res, b.drop(ctx)
}

// agree says whether both sides gave the same answer: the same number of
// events on a page; for an aggregate the same number of groups (auditstore
// adds an "other" group to a top list) and the same count in the first.
// auditstore records the bench's queries in the org's log too, but reads
// leave those records out unless asked for (includeAccess). They do show
// the org's setup records (org.create, api-key.create, written as the
// server starts): on the unfiltered page of an org with fewer than a page
// of events, and as one more hour in the histogram when that hour held no
// event of the bench.
func agree(s shape, orows int, osig int64, brows int, bsig int64) bool {
	switch {
	case s.label == "page":
		return orows == min(brows+setupRecords, 50)
	case !s.agg:
		return orows == brows
	case s.label == "histogram":
		return orows == brows || orows == brows+1
	}
	return (orows == brows || orows == brows+1) && osig == bsig && bsig > 0
}

// setupRecords are the store's records of an org's setup in its log.
const setupRecords = 2

// frontAgrees says whether PostgreSQL behind the layer gave bare SQL's
// answer: the same events on a page, the same groups (bare SQL runs after
// the layer's audit record, so the counts may include it).
func frontAgrees(s shape, frows int, fsig int64, brows int, bsig int64) bool {
	if !s.agg {
		return frows == brows
	}
	if s.label == "histogram" {
		return frows-brows >= -1 && frows-brows <= 1
	}
	return frows == brows && bsig >= fsig && bsig > 0
}

// runExport measures section 3: one org's E events exported whole, by
// auditstore as Parquet through GET /v1/export, by the baseline as COPY
// (SELECT ...) TO STDOUT WITH CSV.
func runExport(ctx context.Context, e *env) (*ExportResult, error) {
	end := time.Now().UTC().Truncate(time.Millisecond)
	g := newGen(e.sizes.Seed, e.sizes.Export, 1, 90*day, end)
	org := g.Orgs()[0].ID
	res := &ExportResult{Rows: e.sizes.Export}
	o, err := openOurs(ctx, e.eng, "cmp_export")
	if err != nil {
		return nil, err
	}
	b, err := newBaseline(ctx, e.pgc, "cmp_export", end.Add(-90*day), end)
	if err != nil {
		return nil, err
	}
	log.Printf("export: loading %d events of one org into both ...", e.sizes.Export)
	if err := loadBoth(ctx, e, g, o, b, nil); err != nil {
		return nil, err
	}
	o.serve(e, orgPlans(g, keepPlan.Name), "read")
	client := &http.Client{}
	for r := range e.sizes.Runs {
		start := time.Now()
		n, err := o.export(client, org)
		if err != nil {
			return nil, err
		}
		res.Ours = append(res.Ours, float64(e.sizes.Export)/time.Since(start).Seconds())
		res.OursBytes = n
		start = time.Now()
		rows, n, err := b.exportCSV(ctx, org)
		if err != nil {
			return nil, err
		}
		if rows != int64(e.sizes.Export) {
			return nil, fmt.Errorf("baseline export: %d rows, want %d", rows, e.sizes.Export)
		}
		res.Baseline = append(res.Baseline, float64(rows)/time.Since(start).Seconds())
		res.BaselineBytes = n
		log.Printf("  run %d: auditstore Parquet %.0f rows/s (%.1f MB), PostgreSQL CSV %.0f rows/s (%.1f MB)", r+1,
			res.Ours[r], float64(res.OursBytes)/1e6, res.Baseline[r], float64(n)/1e6)
	}
	if err := o.drop(ctx); err != nil {
		return nil, err
	}
	return res, b.drop(ctx)
}
