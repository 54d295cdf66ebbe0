package main

import (
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
)

// envBare makes this binary, started again as a child, serve HTTP alone
// on the address it names (see serveBare).
const envBare = "AUDITSTORE_BENCH_BARE_LISTEN"

// serveBare is the one-event shape's floor on this machine: a Go net/http
// server in a process of its own that reads each request's body and
// answers 202 with a small JSON object, as the store does, and does
// nothing else — no authentication, decoding, log or database. The same
// clients against it, in the same run, say how much of the machine HTTP
// and the load generator take before the store does any work.
func serveBare(addr string) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"accepted":1}`)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// measureBare runs the clients of each count against serveBare in a child
// process for d each, with bodies from the same generator seed as the
// store's runs.
func measureBare(seed uint64, counts []int, d time.Duration) []singleResult {
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(benchutil.FreePort()))
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envBare+"="+addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log.Fatalf("the bare HTTP server did not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t := newTemplates(newGenerator(seed), 4096, "bench-bare")
	var out []singleResult
	for _, n := range counts {
		sampler := benchutil.Sample(cmd.Process.Pid)
		r := cpuDuring(cmd.Process.Pid, 0, func() singleRun { return runSingle("http://"+addr, []string{"none"}, t, n, d) })
		r.serverPeak = sampler.Stop()
		r.setup = "HTTP alone (floor: reads the body, answers 202)"
		r.bare = true
		log.Printf("HTTP alone, %d clients: %.0f requests/s, p50 %s p99 %s", n, float64(r.acked)/r.elapsed.Seconds(),
			pct(r.latencies, 0.50), pct(r.latencies, 0.99))
		out = append(out, r.singleResult)
	}
	return out
}
