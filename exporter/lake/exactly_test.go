package lake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditstore/auditstore/internal/s3test"
	"github.com/auditstore/auditstore/schema"
)

var errCrash = errors.New("test: crashed here")

// deliveredOnce checks that the files the manifests under root list hold
// exactly the events ids, each once, and that no Parquet file lies
// outside the manifests.
func deliveredOnce(tb testing.TB, root string, ids []string) {
	tb.Helper()
	files, rows := manifestFiles(tb, root)
	got, _ := readFiles(tb, files)
	if rows != uint64(len(got)) {
		tb.Fatalf("manifests count %d rows, their files hold %d", rows, len(got))
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r["id"]] {
			tb.Fatalf("event %s delivered twice", r["id"])
		}
		if !want[r["id"]] {
			tb.Fatalf("event %s was not expected", r["id"])
		}
		seen[r["id"]] = true
	}
	if len(seen) != len(ids) {
		tb.Fatalf("delivered %d events, want %d", len(seen), len(ids))
	}
	listed := map[string]bool{}
	for _, f := range files {
		listed[f] = true
	}
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") && !listed[p] {
			tb.Fatalf("%s is in no manifest", p)
		}
		return nil
	})
}

// A step stopped after any of its stages (files written, files recorded,
// manifests written: a crash before the watermark moved) is repeated by
// the next start with the same file names: every event is in the
// manifests once and no stray file is left.
func TestCrashAtEachStageDeliversOnce(t *testing.T) {
	s3 := startS3(t)
	db := migrated(t)
	for _, stage := range []string{"written", "recorded", "manifests"} {
		t.Run(stage, func(t *testing.T) {
			h := newHarness(t, db, "node-"+stage, nil)
			crashed := make(chan struct{})
			var once sync.Once
			h.hook = func(st string) error {
				if st == stage {
					once.Do(func() { close(crashed) })
					return errCrash
				}
				return nil
			}
			h.stop()
			h.start(t, nil)
			org := "org-" + stage
			id := h.mustCreate(t, org, map[string]any{"name": "lake", "target": s3Target(s3, stage)})
			now := time.Now().UTC()
			ids := h.insert(t, now, events(org, 40, now, 2), true)
			select {
			case <-crashed:
			case <-time.After(60 * time.Second):
				t.Fatal("the step never reached " + stage)
			}
			h.stop() // the crash
			marks, err := h.marksAfterStop(t, id)
			if err != nil || marks[h.wm.Node].pendingUpto == 0 {
				t.Fatalf("after the crash the step should be pending: %+v %v", marks, err)
			}
			h.hook = nil
			h.start(t, nil)
			root := filepath.Join(s3.dir, "lake", stage)
			eventually(t, 60*time.Second, "40 events in the manifests", func() bool {
				_, n := manifestFiles(t, root)
				return n == 40
			})
			deliveredOnce(t, root, ids)
			for part, m := range manifests(t, root) {
				if len(m.Files) != 1 {
					t.Fatalf("partition %s has %d files, want the one of the repeated step", part, len(m.Files))
				}
			}
		})
	}
}

// The server stopped in the middle of uploading a file (its query
// cancelled, the upload cut) leaves nothing a reader going by the
// manifests would see; the next start delivers every event once.
func TestKilledMidFileLeavesNoPartialFile(t *testing.T) {
	s3 := startS3(t)
	proxy := s3test.NewThrottle(t, s3.endpoint)
	db := migrated(t)
	h := newHarness(t, db, "node-a", nil)
	writing := make(chan struct{})
	var once sync.Once
	h.hook = func(st string) error {
		if st == "writing" {
			once.Do(func() { close(writing) })
		}
		return nil
	}
	h.stop()
	h.start(t, nil)
	target := s3Target(s3, "cut")
	target["s3"].(map[string]any)["endpoint"] = proxy.Endpoint()
	id := h.mustCreate(t, "acme", map[string]any{"name": "lake", "target": target})
	// ~4 MB of incompressible metadata: several seconds through the proxy.
	now := time.Now().UTC()
	evs := make([]schema.Event, 2000)
	for i := range evs {
		evs[i] = event("acme", i, now.Add(-time.Duration(i)*time.Second))
		pad := make([]byte, 1000)
		_, _ = rand.Read(pad)
		evs[i].Event.Metadata, _ = json.Marshal(map[string]any{"n": i, "pad": hex.EncodeToString(pad)})
	}
	ids := h.insert(t, now, evs, true)
	<-writing
	start := proxy.Uploaded()
	eventually(t, 60*time.Second, "the upload to be under way", func() bool { return proxy.Uploaded() > start+256<<10 })
	h.stop() // killed mid-file
	if marks, err := h.marksAfterStop(t, id); err != nil || marks["node-a"].pendingUpto == 0 || marks["node-a"].seq != 0 {
		t.Fatalf("after the kill the step should be pending: %+v %v", marks, err)
	}
	root := filepath.Join(s3.dir, "lake", "cut")
	if files, rows := manifestFiles(t, root); len(files) != 0 || rows != 0 {
		t.Fatalf("a manifest lists %v (%d rows) after a cut upload", files, rows)
	}
	proxy.Slow.Store(false)
	h.hook = nil
	h.start(t, nil)
	eventually(t, 90*time.Second, "every event in the manifests", func() bool {
		_, n := manifestFiles(t, root)
		return n == uint64(len(ids))
	})
	deliveredOnce(t, root, ids)
}

// Events arriving late for a partition that already has a file go into a
// new file of that partition; the first file is never rewritten.
func TestLateEventsGoToNewFile(t *testing.T) {
	s3 := startS3(t)
	db := migrated(t)
	h := newHarness(t, db, "node-a", nil)
	h.mustCreate(t, "acme", map[string]any{"name": "lake", "target": s3Target(s3, "late")})
	day := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour).Add(10 * time.Hour)
	first := h.insert(t, time.Now(), events("acme", 20, day, 1), true)
	root := filepath.Join(s3.dir, "lake", "late")
	part := "org_id=acme/event_date=" + day.Format(time.DateOnly) + "/"
	eventually(t, 60*time.Second, "the first file", func() bool { return len(manifests(t, root)[part].Files) == 1 })
	m1 := manifests(t, root)[part]
	before, err := os.ReadFile(filepath.Join(root, part, m1.Files[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	late := h.insert(t, time.Now(), events("acme", 5, day.Add(time.Hour), 1), true)
	eventually(t, 60*time.Second, "the late file", func() bool { return len(manifests(t, root)[part].Files) == 2 })
	m2 := manifests(t, root)[part]
	if m2.Files[0] != m1.Files[0] || m2.Files[1].Rows != 5 || m2.Rows != 25 {
		t.Fatalf("manifest after late events: %+v (before: %+v)", m2, m1)
	}
	after, _ := os.ReadFile(filepath.Join(root, part, m1.Files[0].Name))
	if string(after) != string(before) {
		t.Fatal("the first file was rewritten")
	}
	deliveredOnce(t, root, append(first, late...))
}

// Two servers (two ingest nodes) deliver to one destination: each event
// once, each node's in files named by its node.
func TestTwoNodesDeliverEachEventOnce(t *testing.T) {
	s3 := startS3(t)
	db := migrated(t)
	a := newHarness(t, db, "node-a", nil)
	b := newHarness(t, db, "node-b", nil)
	a.mustCreate(t, "acme", map[string]any{"name": "lake", "target": s3Target(s3, "two")})
	now := time.Now().UTC()
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, a.insert(t, time.Now(), events("acme", 30, now, 2), true)...)
		ids = append(ids, b.insert(t, time.Now(), events("acme", 30, now, 2), true)...)
		time.Sleep(150 * time.Millisecond)
	}
	root := filepath.Join(s3.dir, "lake", "two")
	eventually(t, 90*time.Second, fmt.Sprintf("%d events in the manifests", len(ids)), func() bool {
		_, n := manifestFiles(t, root)
		return n == uint64(len(ids))
	})
	deliveredOnce(t, root, ids)
	nodes := map[string]bool{}
	for _, m := range manifests(t, root) {
		for _, f := range m.Files {
			if !strings.HasPrefix(f.Name, f.Node+"-") {
				t.Fatalf("file %s of node %s", f.Name, f.Node)
			}
			nodes[f.Node] = true
		}
	}
	if !nodes["node-a"] || !nodes["node-b"] {
		t.Fatalf("files of nodes %v, want both", nodes)
	}
}
