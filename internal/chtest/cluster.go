package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/engine"
)

// ClusterName is the cluster's name in the engines' remote_servers.
const ClusterName = "auditstore_test"

// Cluster is a sharded ClickHouse cluster of embedded engines on this
// machine, one shard each (the engine has no Keeper client: no replicas),
// each started with a generated --config-file whose remote_servers names
// them all. Each has the database Name.
type Cluster struct {
	Name  string         // the test's database, on every node
	Nodes []*ClusterNode // in shard order: Nodes[i] is shard i+1
}

// ClusterNode is one engine of a Cluster.
type ClusterNode struct {
	mu       sync.Mutex
	cfg      engine.Config
	engine   *engine.Supervisor
	Addr     string // native protocol host:port (stable across restarts)
	HTTPAddr string // HTTP host:port
	Conn     driver.Conn
	Config   chconn.Config // connection settings for the test's database
}

// NewCluster starts shards embedded engines and creates one database on
// each; everything stops when the test ends. Starting engines is slow
// (seconds each): tests share one cluster where they can.
func NewCluster(tb testing.TB, shards int) *Cluster {
	tb.Helper()
	ctx := context.Background()
	cache, err := engine.DefaultCacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	lib, err := engine.Fetch(ctx, cache, nil)
	if err != nil {
		tb.Fatalf("fetch engine: %v", err)
	}
	dir := tb.TempDir()
	ports := make([][2]int, shards)
	for i := range ports {
		for j := range ports[i] {
			if ports[i][j], err = freePort(); err != nil {
				tb.Fatal(err)
			}
		}
	}
	confPath := filepath.Join(dir, "cluster.xml")
	tcp := make([]int, shards)
	for i, p := range ports {
		tcp[i] = p[0]
	}
	if err := engine.WriteClusterConfig(confPath, ClusterName, tcp); err != nil {
		tb.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := &Cluster{Name: "cluster_" + hex.EncodeToString(b[:])}
	for i, p := range ports {
		cfg := engine.DefaultConfig()
		cfg.Lib, cfg.DataDir, cfg.Logger = lib, filepath.Join(dir, fmt.Sprintf("node%d", i+1)), logger()
		cfg.TCPPort, cfg.HTTPPort, cfg.ConfigFile = p[0], p[1], confPath
		n := &ClusterNode{cfg: cfg, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p[0])),
			HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p[1]))}
		c.Nodes = append(c.Nodes, n)
		tb.Cleanup(func() { n.Stop(tb) })
		n.Start(tb)
		n.Config = chconn.DefaultConfig()
		n.Config.Addr, n.Config.Database = n.Addr, c.Name
		conn, err := chconn.Open(ctx, n.Config)
		if err != nil {
			tb.Fatalf("node %d: open database: %v", i+1, err)
		}
		n.Conn = conn
		tb.Cleanup(func() { conn.Close() })
	}
	return c
}

// Start starts the node's engine (again, on the same ports and data),
// supervised: the engine has been seen to abort when a client's connection
// is reset under it (an auditstore node killed by a test), and a real
// server would have stayed up, so it is started again on the same ports
// and data, as the server's own engine is.
func (n *ClusterNode) Start(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.engine != nil {
		return
	}
	e, err := engine.StartSupervised(context.Background(), n.cfg)
	if err != nil {
		tb.Fatalf("start cluster node %s: %v", n.Addr, err)
	}
	n.engine = e
}

// Stop stops the node's engine; the others keep running.
func (n *ClusterNode) Stop(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.engine == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.engine.Stop(ctx); err != nil {
		tb.Logf("stop cluster node %s: %v", n.Addr, err)
	}
	n.engine = nil
}

// WaitUp waits until every running node answers (an engine restarted by
// its supervisor takes a few seconds), failing the test after a minute.
func (c *Cluster) WaitUp(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, n := range c.Nodes {
		n.mu.Lock()
		running := n.engine != nil
		n.mu.Unlock()
		for running {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := n.Conn.Ping(ctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("cluster node %s not up: %v", n.Addr, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// Conns returns the nodes' connections in shard order.
func (c *Cluster) Conns() []driver.Conn {
	out := make([]driver.Conn, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Conn
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
