package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	return &Report{
		Command: "go run ./bench/compare -ingest 1000", Machine: "2 cores, 24 GiB memory, linux/amd64",
		LoadStart: "1.00 / 2.00 / 3.00", LoadEnd: "1.50 / 2.00 / 3.00", Revision: "at abc1234",
		ClickHouse: "26.7.2.1", Postgres: "15.18", Elapsed: 90 * time.Second,
		PGSettings: map[string]string{"shared_buffers": "6144MB", "fsync": "on"},
		Sizes:      Sizes{Ingest: 1000, Queries: 5000, Export: 2000, Orgs: 10, Runs: 3, IngestRuns: 3, Reps: 4, Clients: 8, Batch: 100, PGWriters: 2, PGBatch: 500},
		Ingest: &IngestResult{Events: 1000, JSONBytesPerEvent: 700,
			Ours: []float64{100_000, 120_000, 80_000}, Ceiling: []float64{200_000, 210_000, 190_000}, Baseline: []float64{40_000, 50_000, 30_000},
			OursBytes: []int64{100_000, 100_000, 120_000}, BaselineBytes: []int64{1_000_000, 1_100_000, 900_000}},
		Queries: &QueryResult{Events: 5000, Orgs: 10, Largest: 0.19, OursBytes: 1_000_000, BaselineBytes: 8_000_000,
			Shapes: []ShapeResult{
				{Name: "page: org, last 30 days", Label: "page", Agree: 12, Checked: 12,
					OursP50: ds(10, 12, 14), OursP99: ds(20, 30, 40), BaseP50: ds(40, 48, 56), BaseP99: ds(100, 120, 140)},
				{Name: "top-10 actors, 90 days", Label: "top actors", Agree: 11, Checked: 12,
					OursP50: ds(50, 50, 50), OursP99: ds(60, 60, 60), BaseP50: ds(25, 25, 25), BaseP99: ds(30, 30, 30)},
			}},
		Export: &ExportResult{Rows: 2000, Ours: []float64{1_000_000, 900_000, 1_100_000}, Baseline: []float64{250_000, 250_000, 250_000},
			OursBytes: 1_000_000, BaselineBytes: 5_000_000},
	}
}

func ds(msecs ...int) []time.Duration {
	out := make([]time.Duration, len(msecs))
	for i, m := range msecs {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

// row returns the table row of md that starts with "| prefix".
func row(t *testing.T, md, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| "+prefix) {
			return line
		}
	}
	t.Fatalf("no row %q in:\n%s", prefix, md)
	return ""
}

func TestMarkdownSectionsAndRatios(t *testing.T) {
	md := sampleReport().Markdown()
	for _, want := range []string{
		"Machine: 2 cores, 24 GiB memory, linux/amd64; load average (1/5/15 min) 1.00 / 2.00 / 3.00 at start",
		"    go run ./bench/compare -ingest 1000\n",
		"## 1. Ingest: 1,000 events", "## 2. Queries: 5,000 events, 10 orgs, 90 days", "## 3. Export: 2,000 rows of one org",
		"![ingest](ingest.png)", "![queries](queries.png)", "![export](export.png)",
		"median of 3 runs", "PostgreSQL settings: fsync=on, shared_buffers=6144MB.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// medians: ours 100,000, ceiling 200,000, baseline 40,000 events/s
	for prefix, cells := range map[string][]string{
		"sustained ingest":        {"| 100,000 | 40,000 | 2.50 | 2.5× faster |"},
		"raw columnar INSERT":     {"| 200,000 | 40,000 | 5.00 | 5.0× faster |"},
		"bytes on disk":           {"0.1 MB (100 B/event)", "1.0 MB (1000 B/event)", "| 0.10 | 10× smaller |"},
		"page: org, last 30 days": {"| 12 ms | 48 ms | 0.25 (4.0× faster) | 30 ms | 120 ms | 0.25 (4.0× faster) | 12/12 |"},
		"top-10 actors, 90 days":  {"| 50 ms | 25 ms | 2.00 (2.0× slower) | 60 ms | 30 ms | 2.00 (2.0× slower) | 11/12 |"},
		"rows/s":                  {"| 1,000,000 | 250,000 | 4.00 | 4.0× faster |"},
		"bytes of the export":     {"| 1.0 MB | 5.0 MB | 0.20 | 5.0× smaller |"},
	} {
		r := row(t, md, prefix)
		for _, c := range cells {
			if !strings.Contains(r, c) {
				t.Errorf("row %q lacks %q:\n%s", prefix, c, r)
			}
		}
	}
}

func TestMarkdownWithoutSections(t *testing.T) {
	r := sampleReport()
	r.Ingest, r.Export = nil, nil
	md := r.Markdown()
	if strings.Contains(md, "## 1. Ingest") || strings.Contains(md, "## 3. Export") || !strings.Contains(md, "## 2. Queries") {
		t.Errorf("only the queries section was measured:\n%s", md)
	}
}

func TestChartsArePNGs(t *testing.T) {
	dir := t.TempDir()
	files, err := writeCharts(dir, sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, ",") != "ingest.png,queries.png,export.png" {
		t.Errorf("charts %v, want one per section", files)
	}
	for _, name := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
			t.Errorf("%s is %dx%d", name, b.Dx(), b.Dy())
		}
	}
}

func TestStats(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median=%v, want 2", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median=%v, want 2.5", m)
	}
	d := ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for p, want := range map[float64]time.Duration{50: 5 * time.Millisecond, 99: 10 * time.Millisecond, 90: 9 * time.Millisecond} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%v=%v, want %v", p, got, want)
		}
	}
	if num(1234567) != "1,234,567" || num(999) != "999" {
		t.Errorf("num: %q %q", num(1234567), num(999))
	}
}
