package client_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditstore/auditstore/client"
	"github.com/auditstore/auditstore/internal/servertest"
)

// The spooling producer process: TestSpoolSurvivesKilledProducer runs the
// test binary again with these variables set.
const (
	envProducer = "AUDITSTORE_CLIENT_SPOOL_PRODUCER" // the server URL
	envKey      = "AUDITSTORE_CLIENT_SPOOL_KEY"
	envDir      = "AUDITSTORE_CLIENT_SPOOL_DIR"
	envEvents   = "AUDITSTORE_CLIENT_SPOOL_EVENTS"
)

// TestSpoolProducerProcess is the producer process (skipped otherwise): it
// sends the events, prints "handed N" once Send returned for all, and
// waits to be killed; with 0 events it sends what the spool holds, closes
// and prints "closed".
func TestSpoolProducerProcess(t *testing.T) {
	base := os.Getenv(envProducer)
	if base == "" {
		t.Skip("run by TestSpoolSurvivesKilledProducer")
	}
	n, _ := strconv.Atoi(os.Getenv(envEvents))
	c, err := client.New(client.DefaultConfig(base, os.Getenv(envKey)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(client.ProducerConfig{SpoolDir: os.Getenv(envDir), BatchEvents: 50, SpoolSegmentBytes: 32 << 10,
		MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < n; i += 10 {
		evs := make([]client.Event, 0, 10)
		for j := i; j < min(i+10, n); j++ {
			e := sample("spool.test", j)
			e.Action.Metadata = map[string]any{"seq": j}
			evs = append(evs, e)
		}
		if err := p.Send(ctx, evs...); err != nil {
			t.Fatal(err)
		}
	}
	if n > 0 {
		fmt.Printf("handed %d\n", n)
		select {} // until killed
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("closed")
}

// TestSpoolSurvivesKilledProducer: a producer with a spool is handed
// events while the server is unreachable and is killed with SIGKILL right
// after Send returned; a producer started on the same spool directory
// delivers every one of them, once, and leaves the spool empty.
func TestSpoolSurvivesKilledProducer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	const n = 1000
	s := servertest.Start(t)
	keys := org(t, s, "acme")
	px := newProxy(t)
	px.point(s.Base)
	px.down.Store(true) // nothing is acknowledged before the kill
	dir := t.TempDir()
	run := func(events int, want string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolProducerProcess$", "-test.v")
		cmd.Env = append(os.Environ(), envProducer+"="+px.URL, envKey+"="+keys["ingest"], envDir+"="+dir,
			envEvents+"="+strconv.Itoa(events))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Logf("producer: %s", sc.Text())
			if strings.HasPrefix(sc.Text(), want) {
				go func() { // drain
					for sc.Scan() {
					}
				}()
				return cmd
			}
		}
		_ = cmd.Wait()
		t.Fatalf("the producer process ended without printing %q", want)
		return nil
	}
	first := run(n, "handed")
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if len(files) == 0 {
		t.Fatal("the killed producer left no spool file")
	}
	rd := newClient(t, s.Base, keys["read"])
	if p, err := rd.Events(context.Background(), client.ListOptions{Filter: client.Filter{EventTypes: []string{"spool.test"}}}); err != nil || *p.Total != 0 {
		t.Fatalf("before the restart: %v, %v events stored, want 0", err, p)
	}

	px.down.Store(false)
	second := run(0, "closed")
	if err := second.Wait(); err != nil {
		t.Fatalf("second producer: %v", err)
	}
	waitCount(t, rd, "spool.test", n)
	seqs := map[int]int{}
	for e, err := range rd.All(context.Background(), client.ListOptions{Filter: client.Filter{EventTypes: []string{"spool.test"}}, Limit: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		seqs[int(e.Action.Metadata["seq"].(float64))]++
	}
	for i := range n {
		if seqs[i] != 1 {
			t.Fatalf("event %d arrived %d times, want once", i, seqs[i])
		}
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson")); len(files) != 0 {
		t.Fatalf("spool files left after everything was acknowledged: %v", files)
	}
}
