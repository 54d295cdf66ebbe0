package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// fsyncProbe times what a one-event request waits for at least once: an
// append of a record to a log file and its fsync, on the disk the server's
// write-ahead log uses (dir). It also times the same appends into a
// preallocated file with fdatasync, which need not commit the file's
// metadata (its size) to the journal: what a log that preallocates its
// segments would wait. With group commit, n clients wait one fsync for up
// to n requests, so n / fsync time bounds the requests per second.
func fsyncProbe(dir string, n int) (syncP50, syncP99, dataP50, dataP99 time.Duration) {
	rec := make([]byte, 800)
	run := func(name string, prealloc bool) []time.Duration {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			log.Fatal(err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if prealloc {
			if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(n*len(rec))); err != nil {
				log.Printf("fallocate: %v", err)
			}
			if err := f.Sync(); err != nil {
				log.Fatal(err)
			}
		}
		lat := make([]time.Duration, n)
		for i := range lat {
			t0 := time.Now()
			if _, err := f.WriteAt(rec, int64(i*len(rec))); err != nil {
				log.Fatal(err)
			}
			if prealloc {
				err = syscall.Fdatasync(int(f.Fd()))
			} else {
				err = f.Sync()
			}
			if err != nil {
				log.Fatal(err)
			}
			lat[i] = time.Since(t0)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat
	}
	s := run("fsync-probe", false)
	d := run("fdatasync-probe", true)
	return pct(s, 0.5), pct(s, 0.99), pct(d, 0.5), pct(d, 0.99)
}

func renderFsync(dir string, n int) string {
	sp50, sp99, dp50, dp99 := fsyncProbe(dir, n)
	return fmt.Sprintf("\nThe disk under the write-ahead log (%s), %d appends of 800 bytes each, before the runs: append + fsync "+
		"(as the log does) p50 %s, p99 %s; append into a preallocated file + fdatasync p50 %s, p99 %s. With group commit, "+
		"N clients wait one fsync for up to N requests: N / the fsync time bounds the requests per second (256 clients at "+
		"p50: %.0f/s with fsync, %.0f/s with fdatasync).\n", dir, n, sp50, sp99, dp50, dp99,
		256/max(sp50.Seconds(), 1e-6), 256/max(dp50.Seconds(), 1e-6))
}
