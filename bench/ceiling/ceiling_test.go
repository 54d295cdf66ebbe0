package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/chtest"
	"github.com/auditstore/auditstore/internal/migrate"
)

// TestEveryVariantApplies derives every variant from the migrated schema
// of a fresh database, creates its tables and inserts the same rows: each
// variant still applies to today's schema (an index or codec it changes
// is there), stores every row, feeds the lookup table and the hour counts
// unless it leaves their view out, and has the skip indexes it should.
func TestEveryVariantApplies(t *testing.T) {
	db := chtest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := migrate.Run(ctx, db.Conn, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	benchDB = db.Name + "_variants"
	if err := db.Conn.Exec(ctx, "CREATE DATABASE "+benchDB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chconn.Drop(context.Background(), db.Config, benchDB) })
	ddl, err := readDDL(ctx, db.Conn, db.Name)
	if err != nil {
		t.Fatal(err)
	}
	vs := variants(100)
	if err := check(ctx, db.Conn, ddl, vs); err != nil {
		t.Fatal(err)
	}
	// INSERTs of 100 rows sent in blocks of 30, as ingest sends a batch
	// larger than ingest.InsertChunk.
	vs = append(vs, variant{name: "in blocks of 30 rows", chunk: 30})
	cfg := gen.DefaultConfig()
	cfg.Events, cfg.Orgs, cfg.ResendRate, cfg.End = 300, 5, 0, time.Now().UTC()
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := generate(g)
	all, err := columnsOf(rows)
	if err != nil {
		t.Fatal(err)
	}
	var baseIndexes uint64
	for i, v := range vs {
		x, err := runVariant(ctx, db.Conn, ddl, v, all, len(rows), 100, 0, i%4 == 0)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if i == 0 {
			baseIndexes = x.indexes
		}
		if x.rows != uint64(len(rows)) || x.rate <= 0 || x.bytes == 0 {
			t.Errorf("%s: rows=%d rate=%.0f bytes=%d, want %d rows stored", v.name, x.rows, x.rate, x.bytes, len(rows))
		}
		if wantByKey := !v.noView; (x.byKeyRows > 0) != wantByKey {
			t.Errorf("%s: events_by_key rows=%d, want some: %v", v.name, x.byKeyRows, wantByKey)
		}
		if wantHours := !v.noHours; (x.hourRows > 0) != wantHours {
			t.Errorf("%s: event_hours rows=%d, want some: %v", v.name, x.hourRows, wantHours)
		}
		switch {
		case v.index != "" && x.indexes != baseIndexes-1:
			t.Errorf("%s: %d skip indexes, want %d", v.name, x.indexes, baseIndexes-1)
		case strings.HasPrefix(v.name, "without any skip index") && x.indexes != 0:
			t.Errorf("%s: %d skip indexes, want none", v.name, x.indexes)
		}
	}
	if baseIndexes != uint64(len(skipIndexes)) {
		t.Errorf("baseline has %d skip indexes, the variants know %d: a new index needs its variant", baseIndexes, len(skipIndexes))
	}
}
