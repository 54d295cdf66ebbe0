package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/internal/engine"
)

// benchCluster is the cluster name of -shards.
const benchCluster = "bench"

// startShards starts n embedded engines as one sharded cluster (one shard
// each, every engine's remote_servers naming them all) and returns them;
// the server is pointed at the first.
func startShards(ctx context.Context, work string, n int) []*engine.Engine {
	cache, err := engine.DefaultCacheDir()
	if err != nil {
		log.Fatal(err)
	}
	lib, err := engine.Fetch(ctx, cache, nil)
	if err != nil {
		log.Fatal(err)
	}
	tcp, http := make([]int, n), make([]int, n)
	for i := range tcp {
		tcp[i], http[i] = benchutil.FreePort(), benchutil.FreePort()
	}
	conf := filepath.Join(work, "cluster.xml")
	if err := engine.WriteClusterConfig(conf, benchCluster, tcp); err != nil {
		log.Fatal(err)
	}
	var out []*engine.Engine
	for i := range tcp {
		cfg := engine.DefaultConfig()
		cfg.Lib, cfg.DataDir, cfg.Logger = lib, filepath.Join(work, fmt.Sprintf("shard%d", i+1)), slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg.TCPPort, cfg.HTTPPort, cfg.ConfigFile = tcp[i], http[i], conf
		e, err := engine.Start(ctx, cfg)
		if err != nil {
			log.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// clusterArgs are the server's flags for the cluster of engines es.
func clusterArgs(es []*engine.Engine) []string {
	return []string{"-clickhouse", es[0].Addr(), "-clickhouse-http", es[0].HTTPAddr(), "-clickhouse-cluster", benchCluster}
}

func shardsLabel(n int) string {
	if n == 0 {
		return "one embedded engine"
	}
	return strconv.Itoa(n) + " shards (embedded engines, one machine)"
}
