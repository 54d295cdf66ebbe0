// Command export measures GET /v1/export: rows/s and the server's peak RSS
// for each format at each size, against ClickHouse's own FORMAT Parquet of
// the same query over its HTTP interface (the ceiling), and against a
// Parquet writer in Go (arrow/go's pqarrow fed over the native protocol),
// the alternative the server does not use.
//
//	go run ./bench/export -sizes 1000000,10000000
//
// Run it from the repository root; it builds ./cmd/auditstore itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/exporter"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

const org = "bench"

func main() {
	var (
		sizes  = flag.String("sizes", "1000000,10000000", "event counts to measure at, ascending")
		goPath = flag.Bool("go-parquet", true, "also measure the Go (pqarrow) Parquet writer")
		out    = flag.String("out", "", "also write the Markdown report to this file")
	)
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	work, err := os.MkdirTemp("", "auditstore-bench-export-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)

	e := benchutil.Engine(ctx, filepath.Join(work, "ch"))
	defer e.Stop(context.Background())
	ccfg := chconn.DefaultConfig()
	ccfg.Addr = e.Addr()
	conn := benchutil.OpenMigrated(ctx, ccfg)
	defer conn.Close()
	srv := benchutil.StartServer(work, "-data", filepath.Join(work, "data"), "-clickhouse", e.Addr(),
		"-clickhouse-http", e.HTTPAddr(), "-log-level", "warn")
	defer srv.Stop()
	key := srv.OrgKey(org, "pro", "read")

	var report strings.Builder
	fmt.Fprintf(&report, "\n## Export benchmark\n\nMachine: %s. One org's events, all formats of GET /v1/export read to the end by a client on loopback.\n\n", benchutil.Machine())
	fmt.Fprintf(&report, "| events | format | rows/s | MB | seconds | peak server RSS |\n|---|---|---|---|---|---|\n")
	loaded := 0
	var ceilings []string
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= loaded {
			log.Fatalf("bad -sizes %q", *sizes)
		}
		log.Printf("loading events %d..%d ...", loaded, n)
		load(ctx, conn, loaded, n)
		loaded = n
		if err := conn.Exec(ctx, "OPTIMIZE TABLE events FINAL"); err != nil {
			log.Fatal(err)
		}
		for _, f := range []string{"parquet", "arrow", "csv", "ndjson"} {
			r := export(srv, key, f)
			fmt.Fprintf(&report, "| %d | %s | %.0f | %.0f | %.2f | %.0f MB |\n", n, f, float64(n)/r.secs, float64(r.bytes)/1e6, r.secs, float64(r.peak)/1e6)
			log.Printf("%d %s: %.0f rows/s", n, f, float64(n)/r.secs)
			if f == "parquet" {
				c := ceiling(e.HTTPAddr(), f)
				line := fmt.Sprintf("| %d | ClickHouse FORMAT Parquet over HTTP (ceiling) | %.0f rows/s | auditstore parquet = %.0f %% of it |",
					n, float64(n)/c, 100*c/r.secs)
				if *goPath {
					g := goParquet(ctx, conn, n)
					line += fmt.Sprintf(" Go pqarrow writer: %.0f rows/s |", float64(n)/g)
				} else {
					line += " — |"
				}
				ceilings = append(ceilings, line)
			}
		}
	}
	fmt.Fprintf(&report, "\n| events | ceiling | ratio | alternative |\n|---|---|---|---|\n%s\n", strings.Join(ceilings, "\n"))
	fmt.Print(report.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

type result struct {
	secs  float64
	bytes int64
	peak  int64
}

// export downloads one export through the server and measures it.
func export(srv *benchutil.Server, key, format string) result {
	sampler := benchutil.Sample(srv.PID())
	req, _ := http.NewRequest("GET", srv.Base+"/v1/export?format="+format, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	secs := time.Since(start).Seconds()
	peak := sampler.Stop()
	if err != nil || resp.StatusCode != 200 {
		log.Fatalf("export %s: %d %v", format, resp.StatusCode, err)
	}
	return result{secs: secs, bytes: n, peak: peak}
}

// ceiling runs the export's own query straight on ClickHouse's HTTP
// interface, with the same format and read settings as the server's
// export, and reads the output to the end.
func ceiling(httpAddr, format string) float64 {
	f := exporter.Formats[format]
	q := url.Values{}
	q.Set("database", "auditstore")
	q.Set("param_org", org)
	for k, v := range readsql.ReadSettingsText() {
		q.Set(k, v)
	}
	for k, v := range f.Settings() {
		q.Set(k, v)
	}
	// As the server's client: no Accept-Encoding, so the bytes are not
	// gzipped on the way (Go's default transport asks for gzip).
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	start := time.Now()
	resp, err := client.Post("http://"+httpAddr+"/?"+q.Encode(), "text/plain", strings.NewReader(f.Query(org, schema.Filter{}).SQL))
	if err != nil {
		log.Fatal(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		log.Fatalf("ceiling: %d %v", resp.StatusCode, err)
	}
	return time.Since(start).Seconds()
}
