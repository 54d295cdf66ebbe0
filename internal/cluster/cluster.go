// Package cluster finds the shards and replicas of a ClickHouse cluster
// (system.clusters of the server auditstore is configured with) and
// connects to each.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chconn"
)

// Node is one server of the cluster as system.clusters lists it.
type Node struct {
	Shard, Replica int    // shard_num and replica_num, from 1
	Addr           string // host:port of the native protocol
}

// Topology is a cluster's servers, by shard then replica.
type Topology struct {
	Name   string
	Shards [][]Node
}

// Querier is what Discover needs of a connection.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Discover reads the cluster name from system.clusters of the server conn
// is connected to.
func Discover(ctx context.Context, conn Querier, name string) (Topology, error) {
	qctx := chconn.WithParams(ctx, map[string]string{"c": name}, nil)
	rows, err := conn.Query(qctx, "SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = {c:String} ORDER BY shard_num, replica_num")
	if err != nil {
		return Topology{}, fmt.Errorf("read system.clusters: %w", err)
	}
	defer rows.Close()
	t := Topology{Name: name}
	for rows.Next() {
		var shard, replica uint32
		var host string
		var port uint16
		if err := rows.Scan(&shard, &replica, &host, &port); err != nil {
			return Topology{}, fmt.Errorf("read system.clusters: %w", err)
		}
		n := Node{Shard: int(shard), Replica: int(replica), Addr: net.JoinHostPort(host, strconv.Itoa(int(port)))}
		if len(t.Shards) == 0 || t.Shards[len(t.Shards)-1][0].Shard != n.Shard {
			t.Shards = append(t.Shards, nil)
		}
		t.Shards[len(t.Shards)-1] = append(t.Shards[len(t.Shards)-1], n)
	}
	if err := rows.Err(); err != nil {
		return Topology{}, fmt.Errorf("read system.clusters: %w", err)
	}
	if len(t.Shards) == 0 {
		return Topology{}, fmt.Errorf("cluster %q is not in system.clusters of the server (see its remote_servers)", name)
	}
	return t, nil
}

// Replicated reports whether a shard has more than one replica: the local
// tables are then Replicated*MergeTree (the servers need Keeper).
func (t Topology) Replicated() bool {
	for _, s := range t.Shards {
		if len(s) > 1 {
			return true
		}
	}
	return false
}

// Designated is the node that holds the small tables (orgs, keys, streams,
// cursors, sessions, lake state) every auditstore node reads, and the
// migration lock: the first replica of the first shard.
func (t Topology) Designated() Node { return t.Shards[0][0] }

// Nodes returns every node, the designated one first.
func (t Topology) Nodes() []Node {
	var out []Node
	for _, s := range t.Shards {
		out = append(out, s...)
	}
	return out
}

// Conns is a connection to each node of a topology.
type Conns struct {
	Topology
	byAddr map[string]driver.Conn
}

// Open connects to every node with the settings of cfg (its Addr aside).
func Open(ctx context.Context, t Topology, cfg chconn.Config) (*Conns, error) {
	c := &Conns{Topology: t, byAddr: map[string]driver.Conn{}}
	for _, n := range t.Nodes() {
		ncfg := cfg
		ncfg.Addr = n.Addr
		conn, err := chconn.Open(ctx, ncfg)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("shard %d replica %d: %w", n.Shard, n.Replica, err)
		}
		c.byAddr[n.Addr] = conn
	}
	return c, nil
}

// Node returns the connection to n.
func (c *Conns) Node(n Node) driver.Conn { return c.byAddr[n.Addr] }

// All returns the connections in Nodes order.
func (c *Conns) All() []driver.Conn {
	var out []driver.Conn
	for _, n := range c.Nodes() {
		out = append(out, c.byAddr[n.Addr])
	}
	return out
}

// Shard returns a connection to shard i (0-based) that sends each batch to
// its replicas in turn, starting with the one that last answered.
func (c *Conns) Shard(i int) *Replicas {
	r := &Replicas{}
	for _, n := range c.Shards[i] {
		r.conns = append(r.conns, c.byAddr[n.Addr])
	}
	return r
}

// Close closes every connection.
func (c *Conns) Close() {
	for _, conn := range c.byAddr {
		conn.Close()
	}
}

// Replicas are the replicas of one shard. A replicated table deduplicates
// an insert token across its replicas (the token's block hash is in
// Keeper), so a batch retried on another replica is still inserted once.
type Replicas struct {
	conns []driver.Conn
	mu    sync.Mutex
	next  int
}

// PrepareBatch prepares the INSERT on the first replica that answers.
func (r *Replicas) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	r.mu.Lock()
	start := r.next
	r.mu.Unlock()
	var errs []error
	for k := range r.conns {
		i := (start + k) % len(r.conns)
		b, err := r.conns[i].PrepareBatch(ctx, query, opts...)
		if err == nil {
			r.mu.Lock()
			r.next = i
			r.mu.Unlock()
			return b, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("replica %d: %w", i+1, err))
	}
	return nil, errors.Join(errs...)
}
