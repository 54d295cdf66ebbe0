// Command ingest measures the write path end to end: concurrent clients
// post realistic events to a real auditstore server (its embedded
// ClickHouse) over loopback, and the clock stops when every event is
// durable and visible in ClickHouse. In the same run it measures the raw
// ceiling: the same events inserted straight into ClickHouse by columnar
// batch INSERTs, with no HTTP, validation or write-ahead log.
//
//	go run ./bench/ingest -events 1000000
//	go run ./bench/ingest -events 1000000 -client   # and through the Go client
//	go run ./bench/ingest -single 1,16,64,256 -duration 15s   # one event per request
//
// Run it from the repository root; it builds ./cmd/auditstore itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

func main() {
	var (
		events  = flag.Int("events", 1_000_000, "events to send")
		clients = flag.Int("clients", 8, "concurrent HTTP clients")
		batch   = flag.Int("batch", 1000, "events per request")
		orgs    = flag.Int("orgs", 10, "orgs the events are spread over")
		out     = flag.String("out", "", "also write the Markdown report to this file")
		seed    = flag.Uint64("seed", 1, "generator seed")
		viaGo   = flag.Bool("client", false, "also send the events through the Go client (package client), reported beside raw HTTP")
		comp    = flag.String("client-compression", "gzip", "compression of the client run: gzip, zstd or none")
		single  = flag.String("single", "", "instead: one event per request, from each of these comma-separated client counts (e.g. 1,16,64,256)")
		dur     = flag.Duration("duration", 15*time.Second, "with -single: how long each client count sends")
		slots   = flag.String("inprocess-slots", "", "with -single: also run the ingest handlers in process with each of these comma-separated MaxConcurrentRequests (e.g. 32,256)")
		perfOut = flag.String("perf", "", "with -single: record the server with `perf record -g` into this file during the last client count")
		floor   = flag.Bool("floor", true, "with -single: also run the same clients against a Go HTTP server that only reads the body and answers 202 (the machine's floor), in the same run")
		shards  = flag.Int("shards", 0, "run the server on a sharded cluster of this many embedded engines (-clickhouse-cluster); 0: the server's own engine")
	)
	flag.Parse()
	log.SetFlags(0)
	if addr := os.Getenv(envBare); addr != "" {
		serveBare(addr)
		return
	}
	ctx := context.Background()

	work, err := os.MkdirTemp("", "auditstore-bench-ingest-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)

	if *single != "" {
		counts := positiveInts("-single", *single)
		probe := renderFsync(work, 200)
		res := measureSingle(ctx, work, *seed, counts, *dur, *orgs, *perfOut)
		if *slots != "" {
			res = append(res, measureInProcess(ctx, work, *seed, counts, *dur, *orgs, positiveInts("-inprocess-slots", *slots))...)
		}
		if *floor {
			res = append(res, measureBare(*seed, counts, *dur)...)
		}
		report := renderSingle(res, *dur, *orgs) + probe
		fmt.Print(report)
		if *out != "" {
			if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
				log.Fatal(err)
			}
		}
		return
	}

	log.Printf("generating %d events in requests of %d ...", *events, *batch)
	g := newGenerator(*seed)
	var bodies [][]byte
	var bodyBytes int64
	for n := 0; n < *events; n += *batch {
		b := g.body(min(*batch, *events-n))
		bodies = append(bodies, b)
		bodyBytes += int64(len(b))
	}
	log.Printf("%d requests, %.1f MB of JSON (%.0f bytes per event)", len(bodies), float64(bodyBytes)/1e6, float64(bodyBytes)/float64(*events))

	res := measureServer(ctx, work, bodies, *events, *clients, *orgs, *shards)
	var viaClient *clientResult
	if *viaGo {
		r := measureClient(ctx, work, bodies, *events, *clients, *batch, *orgs, *comp)
		viaClient = &r
	}
	ceiling := measureCeiling(ctx, work, bodies)

	report := renderReport(res, viaClient, ceiling, *events, *clients, *batch, *orgs, *shards, bodyBytes)
	fmt.Print(report)
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// measureCeiling inserts the same events (decoded once, before the clock
// starts) into a fresh embedded engine with columnar batch INSERTs of
// 100,000 rows, the pipeline's default batch size.
func measureCeiling(ctx context.Context, work string, bodies [][]byte) float64 {
	e := benchutil.Engine(ctx, filepath.Join(work, "ceiling"))
	defer e.Stop(context.Background())
	ccfg := chconn.DefaultConfig()
	ccfg.Addr = e.Addr()
	conn := benchutil.OpenMigrated(ctx, ccfg)
	defer conn.Close()
	plan := schema.DefaultPlans()["pro"]
	now := time.Now()
	var rows []schema.Row
	for _, b := range bodies {
		raws, err := schema.SplitJSONArray(b)
		if err != nil {
			log.Fatal(err)
		}
		for i, raw := range raws {
			ev, errs := schema.DecodeEvent(raw, i, schema.DefaultLimits(), now)
			if len(errs) > 0 {
				log.Fatalf("generated an invalid event: %v", errs[0])
			}
			rows = append(rows, schema.NewRow(&ev, fmt.Sprintf("org-%03d", i%10), now, plan))
		}
	}
	log.Printf("raw ceiling: inserting %d rows in columnar batches of 100,000 ...", len(rows))
	start := time.Now()
	for i := 0; i < len(rows); i += 100_000 {
		end := min(i+100_000, len(rows))
		if err := ingest.InsertRows(ctx, conn, rows[i:end], fmt.Sprintf("ceiling-%d", i)); err != nil {
			log.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	return float64(len(rows)) / elapsed.Seconds()
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func renderReport(r serverResult, viaClient *clientResult, ceiling float64, events, clients, batch, orgs, shards int, bodyBytes int64) string {
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	rate := float64(events) / r.visible.Seconds()
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Ingest benchmark\n\n")
	fmt.Fprintf(&b, "Machine: %s. %d events (%.0f bytes of JSON each) in requests of %d, %d clients, %d orgs; ClickHouse: %s.\n\n",
		benchutil.Machine(), events, float64(bodyBytes)/float64(events), batch, clients, orgs, shardsLabel(shards))
	fmt.Fprintf(&b, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| sustained ingest, durable and visible in ClickHouse | %.0f events/s (%.1f s) |\n", rate, r.visible.Seconds())
	fmt.Fprintf(&b, "| all acknowledged (202) after | %.1f s (%.0f events/s) |\n", r.acked.Seconds(), float64(events)/r.acked.Seconds())
	fmt.Fprintf(&b, "| raw ceiling: columnar INSERT straight into ClickHouse | %.0f events/s |\n", ceiling)
	fmt.Fprintf(&b, "| ingest / ceiling | %.0f %% |\n", 100*rate/ceiling)
	fmt.Fprintf(&b, "| acknowledgement latency p50 / p99 (request of %d events) | %s / %s |\n", batch,
		percentile(r.latencies, 0.50).Round(time.Microsecond*100), percentile(r.latencies, 0.99).Round(time.Microsecond*100))
	fmt.Fprintf(&b, "| peak RSS, auditstore server | %.0f MB |\n", float64(r.serverPeak)/1e6)
	if shards == 0 {
		fmt.Fprintf(&b, "| peak RSS, embedded ClickHouse | %.0f MB |\n", float64(r.enginePeak)/1e6)
	} else {
		fmt.Fprintf(&b, "| peak RSS, embedded ClickHouse | not sampled with -shards (the engines run beside the server) |\n")
	}
	fmt.Fprintf(&b, "| non-202 answers | %d |\n", r.failures)
	if shards == 0 {
		us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(events) }
		total := us(r.serverCPU) + us(r.engineCPU) + us(r.loadCPU)
		fmt.Fprintf(&b, "| CPU per event, first request to visible: server / engine / load generator | %.1f / %.1f / %.1f µs "+
			"(%.1f in all: %d cores would serve at most %.0f events/s) |\n",
			us(r.serverCPU), us(r.engineCPU), us(r.loadCPU), total, runtime.NumCPU(), float64(runtime.NumCPU())*1e6/total)
	}
	if c := viaClient; c != nil {
		crate := float64(events) / c.visible.Seconds()
		fmt.Fprintf(&b, "\nThe same events through the Go client (`client.Producer.Send` from %d goroutines, one producer per org, batches of %d, %s), on a fresh server:\n\n", clients, batch, c.compression)
		fmt.Fprintf(&b, "| measure | raw HTTP | Go client |\n|---|---|---|\n")
		fmt.Fprintf(&b, "| durable and visible in ClickHouse | %.0f events/s | %.0f events/s (%.0f %% of raw) |\n", rate, crate, 100*crate/rate)
		fmt.Fprintf(&b, "| all acknowledged after | %.1f s | %.1f s (Close returned) |\n", r.acked.Seconds(), c.acked.Seconds())
		fmt.Fprintf(&b, "| bytes on the wire per event | %.0f | %.0f |\n", float64(bodyBytes)/float64(events), float64(c.sentBytes)/float64(events))
		fmt.Fprintf(&b, "| requests / retried | %d / %d | %d / %d |\n", (events+batch-1)/batch, r.failures, c.requests, c.retries)
		fmt.Fprintf(&b, "| peak RSS, auditstore server | %.0f MB | %.0f MB |\n", float64(r.serverPeak)/1e6, float64(c.serverPeak)/1e6)
	}
	return b.String()
}

// positiveInts parses a comma-separated list of positive integers.
func positiveInts(flagName, list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("%s: %q is not a positive number", flagName, f)
		}
		out = append(out, n)
	}
	return out
}
