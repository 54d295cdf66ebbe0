// Command console measures how fast the web console shows its first page:
// the server on the embedded engine holding N events of one org (loaded by
// the ingest path's columnar insert, as bench/query and bench/lake load),
// headless Chromium opening the console signed in with a read key, and the
// time from navigation to the first table row and to "Page X of Y", p50 and
// p95 over several opens, cold (a new browser context: empty cache, no
// session; ClickHouse as the previous open left it) and warm (the same tab
// opened again), with the bytes each open transferred.
//
//	go run ./bench/console -events 10000000 [-runs 10] [-out FILE]
//
// Run it from the repository root; it builds ./cmd/auditstore itself and
// needs Debian's chromium (apt-get install chromium).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

func main() {
	var (
		events = flag.Int("events", 200_000, "events of the org the console opens")
		runs   = flag.Int("runs", 10, "opens per mode (cold, warm)")
		batch  = flag.Int("batch", 100_000, "rows per INSERT while loading")
		seed   = flag.Uint64("seed", 1, "generator seed")
		settle = flag.Duration("settle", 5*time.Minute, "longest wait for background merges after loading")
		out    = flag.String("out", "", "also write the Markdown report to this file")
	)
	flag.Parse()
	log.SetFlags(log.Ltime)
	ctx := context.Background()
	browserPath := chromium()

	work, err := os.MkdirTemp("", "auditstore-bench-console-")
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

	// One org holds every event: the console opens the biggest log there is.
	gcfg := gen.DefaultConfig()
	gcfg.Seed, gcfg.Orgs, gcfg.Events = *seed, 1, *events
	gcfg.Span = 30 * 24 * time.Hour
	gcfg.End = time.Now().UTC().Truncate(time.Millisecond)
	g, err := gen.New(gcfg)
	if err != nil {
		log.Fatal(err)
	}
	org := g.Orgs()[0]
	log.Printf("loading %d events of org %s ...", *events, org.ID)
	loadStart := time.Now()
	load(ctx, conn, g, *batch)
	log.Printf("loaded in %s; waiting for merges (at most %s)", time.Since(loadStart).Round(time.Second), *settle)
	settleMerges(ctx, conn, *settle)

	srv := benchutil.StartServer(work, "-data", filepath.Join(work, "data"), "-clickhouse", e.Addr(),
		"-clickhouse-http", e.HTTPAddr(), "-clickhouse-database", ccfg.Database, "-log-level", "warn")
	defer srv.Stop()
	key := srv.OrgKey(org.ID, org.Plan.Name, "read")
	code, body := srv.Call("GET", "/v1/events?limit=1", key, nil)
	if code != 200 {
		log.Fatalf("GET /v1/events: %d %v", code, body)
	}
	log.Printf("the org's log: %v events", body["total"])

	actx, cancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath), chromedp.NoSandbox, chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx); err != nil {
		log.Fatalf("start chromium: %v", err)
	}

	var cold, warm []open
	for i := range *runs {
		// Cold: a new browser context (empty cache and storage), signed in
		// with the key as a tab that pasted it.
		tctx, cancelTab := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
		if err := chromedp.Do(tctx); err != nil {
			log.Fatalf("new browser context: %v", err)
		}
		o := measure(tctx, srv.Base, key)
		cold = append(cold, o)
		// Warm: the same tab opens the console again.
		w := measure(tctx, srv.Base, key)
		warm = append(warm, w)
		cancelTab()
		log.Printf("open %d: cold row %s page %s (%d B console, %d B API); warm row %s page %s",
			i+1, ms(o.row), ms(o.pager), o.consoleBytes, o.apiBytes, ms(w.row), ms(w.pager))
	}

	var report strings.Builder
	fmt.Fprintf(&report, "\n## Console benchmark\n\nMachine: %s. %s events of one org over 30 days on the embedded engine; headless Chromium at 1280×800, signed in with a read key; %d opens per mode.\n\n",
		benchutil.Machine(), fmt.Sprint(body["total"]), *runs)
	fmt.Fprintf(&report, "| open | first row p50 | p95 | \"Page X of Y\" p50 | p95 | console bytes | API bytes |\n|---|---|---|---|---|---|---|\n")
	for _, m := range []struct {
		name string
		os   []open
	}{{"cold (new browser context)", cold}, {"warm (same tab again)", warm}} {
		rows, pagers := collect(m.os, func(o open) time.Duration { return o.row }), collect(m.os, func(o open) time.Duration { return o.pager })
		fmt.Fprintf(&report, "| %s | %s | %s | %s | %s | %d | %d |\n", m.name, ms(pct(rows, 50)), ms(pct(rows, 95)),
			ms(pct(pagers, 50)), ms(pct(pagers, 95)), m.os[0].consoleBytes, m.os[0].apiBytes)
	}
	fmt.Fprintf(&report, "\nConsole bytes: the page, its scripts and styles and /console-config.json as transferred (gzip, headers included) on the first open; API bytes: the /v1 calls of that open.\n")
	fmt.Print(report.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// chromium finds the browser.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	log.Fatal("chromium not found: apt-get install chromium")
	return ""
}

// open is one measured opening of the console.
type open struct {
	row, pager             time.Duration // from navigation start
	consoleBytes, apiBytes int64
}

// probe runs in the page before its scripts: it signs the tab in with the
// key (as a tab where it was pasted) and notes when the first row and the
// page count appear, in ms since navigation start.
const probe = `(() => {
  if (!sessionStorage.getItem('auditstore.credential')) {
    sessionStorage.setItem('auditstore.credential', %q);
    sessionStorage.setItem('auditstore.kind', 'key');
  }
  window.__bench = {};
  const check = () => {
    const b = window.__bench;
    if (!b.row && document.querySelector('#events tbody tr[data-id]')) b.row = performance.now();
    const info = document.getElementById('pageinfo');
    if (!b.pager && info && /Page \d+ of \d+/.test(info.textContent)) b.pager = performance.now();
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true, characterData: true });
})()`

// transferred sums what the open fetched, by kind.
const transferred = `(() => {
  const all = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')];
  const out = { console: 0, api: 0 };
  for (const e of all) out[new URL(e.name).pathname.startsWith('/v1/') ? 'api' : 'console'] += e.transferSize;
  return out;
})()`

func measure(ctx context.Context, base, key string) open {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	script, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: fmt.Sprintf(probe, key)})
	if err != nil {
		log.Fatalf("add the probe: %v", err)
	}
	defer func() {
		_, _ = chromedp.Call(ctx, page.RemoveScriptToEvaluateOnNewDocument, page.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: script.Identifier})
	}()
	// about:blank first, so that the same tab's second open is a new
	// navigation too.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/#/log")); err != nil {
		log.Fatalf("navigate: %v", err)
	}
	var t struct{ Row, Pager float64 }
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[struct{ Row, Pager float64 }](`({row: window.__bench.row || 0, pager: window.__bench.pager || 0})`))
		if err != nil {
			log.Fatalf("console did not show its first page: %v", err)
		}
		if t = v; t.Row > 0 && t.Pager > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := chromedp.Run(ctx, chromedp.Evaluate[struct{ Console, API int64 }](transferred))
	if err != nil {
		log.Fatalf("transferred bytes: %v", err)
	}
	d := func(msec float64) time.Duration { return time.Duration(msec * float64(time.Millisecond)) }
	return open{row: d(t.Row), pager: d(t.Pager), consoleBytes: b.Console, apiBytes: b.API}
}

// load inserts the generator's events in batches by the ingest path's
// columnar insert.
func load(ctx context.Context, conn driver.Conn, g *gen.Generator, batch int) {
	rows := make([]schema.Row, 0, batch)
	n := 0
	for {
		it, ok := g.Next()
		if ok {
			rows = append(rows, it.Row())
			n++
		}
		if len(rows) >= batch || (!ok && len(rows) > 0) {
			if err := ingest.InsertRows(ctx, conn, rows, fmt.Sprintf("bench-console-%d", n)); err != nil {
				log.Fatalf("insert: %v", err)
			}
			rows = rows[:0]
		}
		if !ok {
			return
		}
	}
}

// settleMerges waits until no merge has run for 5 s, at most max.
func settleMerges(ctx context.Context, conn driver.Conn, max time.Duration) {
	start, quiet := time.Now(), 0
	for time.Since(start) < max && quiet < 5 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = currentDatabase()").Scan(&n); err != nil {
			log.Fatal(err)
		}
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(time.Second)
	}
}

func collect(os []open, f func(open) time.Duration) []time.Duration {
	out := make([]time.Duration, len(os))
	for i, o := range os {
		out[i] = f(o)
	}
	return out
}

// pct is the p-th percentile (nearest rank).
func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
