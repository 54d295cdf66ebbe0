package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/client"
)

type clientResult struct {
	acked, visible time.Duration
	retries        int64
	requests       int64
	sentBytes      int64
	serverPeak     int64
	compression    string
}

// measureClient sends the same events through the Go client (one
// Producer per org, Send from `clients` goroutines in calls of `batch`
// events) to a fresh server; the clock stops when every event is visible
// in ClickHouse. The events are decoded into client.Event before it starts.
func measureClient(ctx context.Context, work string, bodies [][]byte, events, clients, batch, orgs int, compression string) clientResult {
	var calls [][]client.Event
	for _, b := range bodies {
		var evs []client.Event
		if err := json.Unmarshal(b, &evs); err != nil {
			log.Fatal(err)
		}
		calls = append(calls, evs)
	}
	log.Printf("starting a fresh server for the client run ...")
	tcp := benchutil.FreePort()
	srv := benchutil.StartServer(work, "-data", filepath.Join(work, "client-data"), "-engine-tcp-port", strconv.Itoa(tcp), "-log-level", "warn")
	defer srv.Stop()
	server := benchutil.Sample(srv.PID())
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", tcp)},
		Auth: clickhouse.Auth{Database: "auditstore"}})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	res := clientResult{compression: compression}
	var retries, requests, sentBytes atomic.Int64
	producers := make([]*client.Producer, orgs)
	for i := range producers {
		key := srv.OrgKey(fmt.Sprintf("org-%03d", i), "pro", "ingest")
		c, err := client.New(client.DefaultConfig(srv.Base, key))
		if err != nil {
			log.Fatal(err)
		}
		cfg := client.DefaultProducerConfig()
		cfg.Compression, cfg.BatchEvents = compression, batch
		cfg.Hooks = client.Hooks{
			Retry: func(int, time.Duration, error) { retries.Add(1) },
			Delivered: func(_, b int, _ time.Duration) {
				requests.Add(1)
				sentBytes.Add(int64(b))
			},
		}
		if producers[i], err = c.NewProducer(cfg); err != nil {
			log.Fatal(err)
		}
	}
	log.Printf("sending %d events through the client from %d goroutines ...", events, clients)
	queue := make(chan int, len(calls))
	for i := range calls {
		queue <- i
	}
	close(queue)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				if err := producers[i%orgs].Send(ctx, calls[i]...); err != nil {
					log.Fatalf("send: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	for _, p := range producers {
		if err := p.Close(ctx); err != nil {
			log.Fatalf("close: %v", err)
		}
	}
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
	res.serverPeak = server.Stop()
	res.retries, res.requests, res.sentBytes = retries.Load(), requests.Load(), sentBytes.Load()
	return res
}
