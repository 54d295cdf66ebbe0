package lake

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/auditstore/auditstore/exporter"
	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/schema"
)

// row is one Parquet row, each cell as arrow/go renders it ("(null)" for a
// null).
type row map[string]string

// readParquet reads a Parquet file with arrow/go's reader: its rows and its
// schema.
func readParquet(tb testing.TB, b []byte) ([]row, *arrow.Schema) {
	tb.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("parquet: %v", err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
	if err != nil {
		tb.Fatal(err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer rr.Release()
	var out []row
	for rr.Next() {
		rec := rr.Record()
		for i := 0; i < int(rec.NumRows()); i++ {
			r := row{}
			for c, f := range rec.Schema().Fields() {
				col := rec.Column(c)
				if col.IsNull(i) {
					r[f.Name] = "(null)"
				} else {
					r[f.Name] = col.ValueStr(i)
				}
			}
			out = append(out, r)
		}
	}
	if err := rr.Err(); err != nil && err != io.EOF {
		tb.Fatalf("parquet read: %v", err)
	}
	return out, rr.Schema()
}

// readParquetJSON reads a Parquet file as one JSON object per row
// (arrow/go's RecordToJSON: structs as objects, lists as arrays, maps as
// arrays of key/value pairs).
func readParquetJSON(tb testing.TB, b []byte) []map[string]any {
	tb.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("parquet: %v", err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
	if err != nil {
		tb.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 4096)
	defer tr.Release()
	var out []map[string]any
	for tr.Next() {
		var buf bytes.Buffer
		if err := array.RecordToJSON(tr.Record(), &buf); err != nil {
			tb.Fatal(err)
		}
		dec := json.NewDecoder(&buf)
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				tb.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

// exportParquet runs /v1/export's query for org (exporter.Formats["parquet"]
// with the org's selection as the query package builds it: the org, not
// expired, FINAL) on ClickHouse's HTTP interface, and returns the file.
func exportParquet(tb testing.TB, db *chtest.DB, org string) []byte {
	tb.Helper()
	f := exporter.Formats["parquet"]
	q := url.Values{}
	q.Set("database", db.Name)
	q.Set("param_org", org)
	for k, v := range f.Settings() {
		q.Set(k, v)
	}
	resp, err := db.PostHTTP(q, f.Query(org, schema.Filter{}).SQL)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("export: %d %s", resp.StatusCode, b)
	}
	return b
}

// readFiles reads Parquet files and returns their rows sorted by id, and
// the schema of the first.
func readFiles(tb testing.TB, paths []string) ([]row, *arrow.Schema) {
	tb.Helper()
	var all []row
	var sch *arrow.Schema
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		rows, s := readParquet(tb, b)
		if sch == nil {
			sch = s
		} else if !sch.Equal(s) {
			tb.Fatalf("%s: schema %s differs from %s", p, s, sch)
		}
		all = append(all, rows...)
	}
	sortRows(all)
	return all, sch
}

func sortRows(rows []row) {
	sort.Slice(rows, func(i, j int) bool { return rows[i]["id"] < rows[j]["id"] })
}

// sameRows fails unless got and want hold the same rows (sorted by id).
func sameRows(tb testing.TB, got, want []row) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("rows=%d, want %d", len(got), len(want))
	}
	for i := range want {
		for k, v := range want[i] {
			if got[i][k] != v {
				tb.Fatalf("row %d (id %s) column %s = %q, want %q", i, want[i]["id"], k, got[i][k], v)
			}
		}
		if len(got[i]) != len(want[i]) {
			tb.Fatalf("row %d has %d columns, want %d", i, len(got[i]), len(want[i]))
		}
	}
}
