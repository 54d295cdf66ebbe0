package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Report is what one comparison run measured, with what is needed to
// quote it: the machine, its load, the sizes and the command.
type Report struct {
	Command              string
	Machine              string
	LoadStart            string // /proc/loadavg's 1, 5 and 15 minute figures
	LoadEnd              string
	Revision             string
	ClickHouse, Postgres string
	PGSettings           map[string]string
	Sizes                Sizes
	Elapsed              time.Duration
	Ingest               *IngestResult
	Queries              *QueryResult
	Export               *ExportResult
}

// Sizes are the flags that shape the run.
type Sizes struct {
	Ingest, Queries, Export, Orgs      int
	Runs, IngestRuns, Reps             int
	Clients, Batch, PGWriters, PGBatch int
	Seed                               uint64
}

// IngestResult holds one figure per run of each side.
type IngestResult struct {
	Events                   int
	JSONBytesPerEvent        float64
	Ours, Ceiling, Baseline  []float64 // events/s
	OursBytes, BaselineBytes []int64   // on disk after the load
}

// QueryResult holds, per shape, p50 and p99 of each run of each side.
type QueryResult struct {
	Events, Orgs             int
	Largest                  float64 // share of the largest org
	OursBytes, BaselineBytes int64   // the loaded data at rest
	Shapes                   []ShapeResult
}

// ShapeResult is one shape's figures; Agree of Checked answers were the
// same on both sides.
type ShapeResult struct {
	Name, Label      string
	OursP50, OursP99 []time.Duration
	BaseP50, BaseP99 []time.Duration
	Agree, Checked   int
	// PostgreSQL behind the same HTTP layer (front.go); empty in reports
	// of runs before it existed. FrontAgree of Checked answers had the
	// bare baseline's events or groups.
	FrontP50, FrontP99 []time.Duration
	FrontAgree         int
}

// ExportResult holds rows/s per run of each side and the bytes of one
// export.
type ExportResult struct {
	Rows                     int
	Ours, Baseline           []float64
	OursBytes, BaselineBytes int64
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianInt(xs []int64) int64 {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return int64(median(f))
}

func medianDur(xs []time.Duration) time.Duration {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return time.Duration(median(f))
}

// percentile is the nearest-rank percentile p (0-100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
}

// num formats n with thousands separators.
func num(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func runs(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", n)
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// ratio is ours/baseline to two significant places.
func ratio(ours, base float64) string {
	if base == 0 {
		return "—"
	}
	r := ours / base
	if r >= 10 || r < 0.01 {
		return fmt.Sprintf("%.3g", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// verdict says the ratio in words: auditstore is better when its figure
// is higher and higherBetter, or lower and not higherBetter; good and bad
// are the words for either case ("faster", "slower").
func verdict(ours, base float64, higherBetter bool, good, bad string) string {
	if ours <= 0 || base <= 0 {
		return "—"
	}
	f := ours / base
	word := bad
	if (f > 1) == higherBetter {
		word = good
	}
	if f == 1 {
		return "same"
	}
	if f < 1 {
		f = 1 / f
	}
	return fmt.Sprintf("%s× %s", factor(f), word)
}

func factor(f float64) string {
	if f >= 10 {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.1f", f)
}

// Markdown renders the report: the machine line, sizes and command, then
// one table and chart per section.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# auditstore vs PostgreSQL\n\n")
	fmt.Fprintf(&b, "Machine: %s; load average (1/5/15 min) %s at start, %s at end; run took %s.\n",
		r.Machine, r.LoadStart, r.LoadEnd, r.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "auditstore %s on ClickHouse %s (embedded engine); PostgreSQL %s (private cluster, settings below).\n\n",
		r.Revision, r.ClickHouse, r.Postgres)
	fmt.Fprintf(&b, "    %s\n\n", r.Command)
	s := r.Sizes
	fmt.Fprintf(&b, "Sizes: ingest %s events (median of %s); queries over %s events of %d orgs over 90 days (%s of %d requests per shape and side, "+
		"p50 and p99 of each run, median across runs); export %s rows of one org (median of %s). Ratios are auditstore / PostgreSQL.\n",
		num(float64(s.Ingest)), runs(s.IngestRuns), num(float64(s.Queries)), s.Orgs, runs(s.Runs), s.Reps, num(float64(s.Export)), runs(s.Runs))
	if in := r.Ingest; in != nil {
		o, c, p := median(in.Ours), median(in.Ceiling), median(in.Baseline)
		ob, pb := float64(medianInt(in.OursBytes)), float64(medianInt(in.BaselineBytes))
		fmt.Fprintf(&b, "\n## 1. Ingest: %s events\n\n", num(float64(in.Events)))
		fmt.Fprintf(&b, "| measure | auditstore | PostgreSQL | auditstore / PostgreSQL | |\n|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| sustained ingest, events/s (auditstore: HTTP, durable and visible; PostgreSQL: COPY, committed) | %s | %s | %s | %s |\n",
			num(o), num(p), ratio(o, p), verdict(o, p, true, "faster", "slower"))
		fmt.Fprintf(&b, "| raw columnar INSERT into ClickHouse (ceiling), events/s | %s | %s | %s | %s |\n",
			num(c), num(p), ratio(c, p), verdict(c, p, true, "faster", "slower"))
		fmt.Fprintf(&b, "| bytes on disk after the load | %s (%.0f B/event) | %s (%.0f B/event) | %s | %s |\n",
			mb(int64(ob)), ob/float64(in.Events), mb(int64(pb)), pb/float64(in.Events), ratio(ob, pb), verdict(ob, pb, false, "smaller", "larger"))
		fmt.Fprintf(&b, "\nEvents average %.0f bytes as JSON. auditstore: %d clients post requests of %d events (one org each) to the server; "+
			"the clock stops when all are acknowledged (fsync'd in its write-ahead log) and visible in ClickHouse. "+
			"PostgreSQL: %d connections each COPY chunks of %s rows, one transaction each; the clock stops at the last commit.\n",
			in.JSONBytesPerEvent, s.Clients, s.Batch, s.PGWriters, num(float64(s.PGBatch)))
		fmt.Fprintf(&b, "\n![ingest](ingest.png)\n")
	}
	if q := r.Queries; q != nil {
		fmt.Fprintf(&b, "\n## 2. Queries: %s events, %d orgs, 90 days\n\n", num(float64(q.Events)), q.Orgs)
		fmt.Fprintf(&b, "| shape | auditstore p50 | PostgreSQL p50 | p50 ratio | auditstore p99 | PostgreSQL p99 | p99 ratio | same answers |\n")
		fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|\n")
		for _, sh := range q.Shapes {
			o50, b50, o99, b99 := medianDur(sh.OursP50), medianDur(sh.BaseP50), medianDur(sh.OursP99), medianDur(sh.BaseP99)
			fmt.Fprintf(&b, "| %s | %s | %s | %s (%s) | %s | %s | %s (%s) | %d/%d |\n", sh.Name,
				ms(o50), ms(b50), ratio(float64(o50), float64(b50)), verdict(float64(o50), float64(b50), false, "faster", "slower"),
				ms(o99), ms(b99), ratio(float64(o99), float64(b99)), verdict(float64(o99), float64(b99), false, "faster", "slower"),
				sh.Agree, sh.Checked)
		}
		fmt.Fprintf(&b, "\nThe data at rest: auditstore %s, PostgreSQL %s (%s). The largest org holds %.0f%% of the events; "+
			"each request picks an org in proportion to its size and values from its recent events, the same for both sides. "+
			"auditstore answers through its HTTP API (JSON, page shapes with total and page count, every query recorded in the org's audit log); "+
			"PostgreSQL's figure is the database round trip alone (rows read by the client), with no application layer in front.\n",
			mb(q.OursBytes), mb(q.BaselineBytes), verdict(float64(q.OursBytes), float64(q.BaselineBytes), false, "smaller", "larger"), q.Largest*100)
		if len(q.Shapes) > 0 && len(q.Shapes[0].FrontP50) > 0 {
			fmt.Fprintf(&b, "\nLike for like: PostgreSQL behind the same kind of Go HTTP layer (gin, the same routes and parameters, "+
				"bearer-key authentication, JSON answers of the same shape, pages with their total counted alongside, and the audit "+
				"record of every read committed, to a table like audit_logs, before the query runs).\n\n")
			fmt.Fprintf(&b, "| shape | auditstore p50 | PostgreSQL + layer p50 | p50 ratio | auditstore p99 | PostgreSQL + layer p99 | p99 ratio | same answers as bare SQL |\n")
			fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|\n")
			for _, sh := range q.Shapes {
				o50, f50, o99, f99 := medianDur(sh.OursP50), medianDur(sh.FrontP50), medianDur(sh.OursP99), medianDur(sh.FrontP99)
				fmt.Fprintf(&b, "| %s | %s | %s | %s (%s) | %s | %s | %s (%s) | %d/%d |\n", sh.Name,
					ms(o50), ms(f50), ratio(float64(o50), float64(f50)), verdict(float64(o50), float64(f50), false, "faster", "slower"),
					ms(o99), ms(f99), ratio(float64(o99), float64(f99)), verdict(float64(o99), float64(f99), false, "faster", "slower"),
					sh.FrontAgree, sh.Checked)
			}
		}
		fmt.Fprintf(&b, "\n![queries](queries.png)\n")
	}
	if x := r.Export; x != nil {
		o, p := median(x.Ours), median(x.Baseline)
		fmt.Fprintf(&b, "\n## 3. Export: %s rows of one org\n\n", num(float64(x.Rows)))
		fmt.Fprintf(&b, "| measure | auditstore (Parquet, GET /v1/export) | PostgreSQL (COPY TO STDOUT CSV) | auditstore / PostgreSQL | |\n|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| rows/s | %s | %s | %s | %s |\n", num(o), num(p), ratio(o, p), verdict(o, p, true, "faster", "slower"))
		fmt.Fprintf(&b, "| bytes of the export | %s | %s | %s | %s |\n", mb(x.OursBytes), mb(x.BaselineBytes),
			ratio(float64(x.OursBytes), float64(x.BaselineBytes)), verdict(float64(x.OursBytes), float64(x.BaselineBytes), false, "smaller", "larger"))
		fmt.Fprintf(&b, "\n![export](export.png)\n")
	}
	fmt.Fprintf(&b, "\n## The baseline\n\n%s\n", baselineNote)
	if len(r.PGSettings) > 0 {
		keys := make([]string, 0, len(r.PGSettings))
		for k := range r.PGSettings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + r.PGSettings[k]
		}
		fmt.Fprintf(&b, "\nPostgreSQL settings: %s.\n", strings.Join(parts, ", "))
	}
	return b.String()
}

const baselineNote = "PostgreSQL stores audit logs as the open-source peers do: Infisical's `audit_logs` table " +
	"(a row per event, jsonb actorMetadata and eventMetadata, primary key (id, createdAt), monthly range partitions on createdAt, " +
	"B-tree indexes on (orgId, createdAt), (projectId, createdAt), eventType, userAgentType, expiresAt and " +
	"(projectId, eventMetadata->>'secretPath', createdAt DESC)), with the resource and trace as added columns and three more " +
	"tenant-first B-tree indexes a user answering these questions would add (Retraced indexes actor and target ids): " +
	"actor id, (resourceType, resourceId, createdAt DESC) and traceId. Loads use COPY; queries are parameterized SQL on those indexes, " +
	"planned per call (unnamed statements, as node-postgres sends them); the table is VACUUM ANALYZEd before queries and exports, " +
	"and ClickHouse's is merged (OPTIMIZE FINAL). Both sides fsync: auditstore its write-ahead log before acknowledging, " +
	"PostgreSQL its WAL at each commit."
