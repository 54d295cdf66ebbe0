package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
)

type serverResult struct {
	acked, visible         time.Duration
	latencies              []time.Duration
	serverPeak, enginePeak int64
	failures               int64
	// CPU time from the first request until every event was visible: the
	// server, its embedded engine (0 with -shards) and this load generator.
	serverCPU, engineCPU, loadCPU time.Duration
}

func measureServer(ctx context.Context, work string, bodies [][]byte, events, clients, orgs, shards int) serverResult {
	log.Printf("starting the server ...")
	tcp := benchutil.FreePort()
	args := []string{"-data", filepath.Join(work, "data"), "-engine-tcp-port", strconv.Itoa(tcp), "-log-level", "warn"}
	if shards > 0 {
		es := startShards(ctx, work, shards)
		defer func() {
			for _, e := range es {
				_ = e.Stop(context.Background())
			}
		}()
		args = append(args, clusterArgs(es)...)
		tcp, _ = strconv.Atoi(es[0].Addr()[strings.LastIndex(es[0].Addr(), ":")+1:])
	}
	srv := benchutil.StartServer(work, args...)
	defer srv.Stop()
	keys := make([]string, orgs)
	for i := range keys {
		keys[i] = srv.OrgKey(fmt.Sprintf("org-%03d", i), "pro", "ingest")
	}
	server, engine := benchutil.Sample(srv.PID()), benchutil.Sample(srv.EnginePID())

	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", tcp)},
		Auth: clickhouse.Auth{Database: "auditstore"}})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	log.Printf("posting %d events from %d clients ...", events, clients)
	queue := make(chan int, len(bodies))
	for i := range bodies {
		queue <- i
	}
	close(queue)
	latencies := make([][]time.Duration, clients)
	var failures atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	enginePID := 0
	if shards == 0 {
		enginePID = srv.EnginePID()
	}
	cpu := markCPU(srv.PID(), enginePID)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := range queue {
				for {
					req, _ := http.NewRequest("POST", srv.Base+"/v1/events", bytes.NewReader(bodies[i]))
					req.Header.Set("Authorization", "Bearer "+keys[i%len(keys)])
					req.Header.Set("Content-Type", "application/json")
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						log.Fatalf("post: %v", err)
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						latencies[c] = append(latencies[c], time.Since(t0))
						break
					}
					failures.Add(1)
					time.Sleep(100 * time.Millisecond) // 503 when the log is full: back off, resend
				}
			}
		}(c)
	}
	wg.Wait()
	var res serverResult
	res.acked = time.Since(start)
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE user_agent_type != 'api'").Scan(&n); err != nil {
			log.Fatal(err)
		}
		if n >= uint64(events) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.visible = time.Since(start)
	res.serverCPU, res.engineCPU, res.loadCPU = cpu.since()
	res.serverPeak, res.enginePeak = server.Stop(), engine.Stop()
	for _, l := range latencies {
		res.latencies = append(res.latencies, l...)
	}
	res.failures = failures.Load()
	return res
}
