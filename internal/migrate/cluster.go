package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// LockTable is the table whose existence on the designated node means that
// an auditstore node is migrating the cluster.
const LockTable = "schema_migrations_lock"

// ClusterConfig configures the migration of a cluster.
type ClusterConfig struct {
	// DDL derives the cluster's statements from the migrations.
	DDL schema.ClusterDDL
	// Stale is the age after which a lock is taken over: its holder died
	// while migrating (each step can run again). Default 10 minutes.
	Stale time.Duration
	// Poll is how often a waiting node looks at the lock. Default 500ms.
	Poll time.Duration
	// Holder names this auditstore node in the lock (logs only).
	Holder string
}

// DefaultConfig returns a ClusterConfig with the defaults; DDL remains to
// be set.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{Stale: 10 * time.Minute, Poll: 500 * time.Millisecond}
}

// Validate reports a configuration that cannot migrate.
func (c ClusterConfig) Validate() error {
	if err := c.DDL.Validate(); err != nil {
		return err
	}
	if c.Stale <= 0 || c.Poll <= 0 {
		return errors.New("migrate: Stale and Poll must be positive")
	}
	return nil
}

// RunCluster migrates every node of a cluster: each node's local tables
// (schema.ClusterDDL.Rewrite of every migration), recorded in that node's
// own schema_migrations, then its Distributed tables. nodes[0] is the
// designated node, which holds the lock: CREATE TABLE without IF NOT
// EXISTS is atomic on one server, so of several auditstore nodes starting
// together one creates it and migrates, and the others poll until it is
// dropped, then find nothing left to do. A lock older than cfg.Stale is
// taken over. No ON CLUSTER: it needs distributed DDL, which some
// operators disable.
func RunCluster(ctx context.Context, nodes []Conn, cfg ClusterConfig, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(nodes) == 0 {
		return errors.New("migrate: no cluster nodes")
	}
	all, err := schema.Migrations()
	if err != nil {
		return err
	}
	ms := make([]schema.Migration, len(all))
	for i, m := range all {
		ms[i] = cfg.DDL.Rewrite(m)
	}
	if err := lock(ctx, nodes[0], cfg, log); err != nil {
		return err
	}
	defer func() {
		// A cancelled ctx must not leave the lock behind.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := nodes[0].Exec(uctx, "DROP TABLE IF EXISTS "+LockTable+" SYNC"); err != nil {
			log.Error("migrate: cannot drop the migration lock; it is taken over when stale", "error", err)
		}
	}()
	for i, n := range nodes {
		ran, err := apply(ctx, n, log.With("node", i), ms)
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		stale, err := distributedStale(ctx, n)
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		if len(ran) == 0 && !stale {
			continue
		}
		for _, stmt := range cfg.DDL.DistributedDDL() {
			if err := n.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("node %d: distributed table: %w", i, err)
			}
		}
	}
	return nil
}

// lock creates LockTable on conn, waiting while another node holds it.
func lock(ctx context.Context, conn Conn, cfg ClusterConfig, log *slog.Logger) error {
	create := "CREATE TABLE " + LockTable + " (holder String) ENGINE = Memory"
	waiting := false
	for {
		err := conn.Exec(ctx, create)
		if err == nil {
			// Who holds it, for an operator who finds it (best effort).
			hctx := chconn.WithParams(ctx, map[string]string{"h": cfg.Holder}, nil)
			if err := conn.Exec(hctx, "INSERT INTO "+LockTable+" (holder) VALUES ({h:String})"); err != nil {
				log.Warn("migrate: cannot record the lock's holder", "error", err)
			}
			return nil
		}
		if !alreadyExists(err) {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		age, held, err := lockAge(ctx, conn)
		if err != nil {
			return err
		}
		if held && age > cfg.Stale {
			log.Warn("migrate: taking over a stale migration lock", "age", age.Round(time.Second))
			if err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+LockTable+" SYNC"); err != nil {
				return fmt.Errorf("drop a stale migration lock: %w", err)
			}
			continue
		}
		if !waiting {
			log.Info("migrate: another auditstore node is migrating the cluster; waiting")
			waiting = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.Poll):
		}
	}
}

func lockAge(ctx context.Context, conn Conn) (time.Duration, bool, error) {
	rows, err := conn.Query(ctx, "SELECT toUnixTimestamp(now()) - toUnixTimestamp(metadata_modification_time) FROM system.tables WHERE database = currentDatabase() AND name = '"+LockTable+"'")
	if err != nil {
		return 0, false, fmt.Errorf("read the migration lock: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return 0, false, rows.Err()
	}
	var s int64
	if err := rows.Scan(&s); err != nil {
		return 0, false, fmt.Errorf("read the migration lock: %w", err)
	}
	return time.Duration(s) * time.Second, true, rows.Err()
}

// distributedStale reports whether a Distributed table is missing, or its
// columns are not its local table's (a run stopped between a migration and
// the Distributed tables' re-creation).
func distributedStale(ctx context.Context, conn Conn) (bool, error) {
	for _, t := range schema.ShardedTables {
		var cols [2]string
		for i, name := range []string{t, t + schema.LocalSuffix} {
			q := "SELECT arrayStringConcat(groupArray(concat(name, ' ', type)), ', ') FROM (SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String} ORDER BY position)"
			rows, err := conn.Query(chconn.WithParams(ctx, map[string]string{"t": name}, nil), q)
			if err != nil {
				return false, fmt.Errorf("read columns of %s: %w", name, err)
			}
			if rows.Next() {
				err = rows.Scan(&cols[i])
			}
			if err == nil {
				err = rows.Err()
			}
			rows.Close()
			if err != nil {
				return false, fmt.Errorf("read columns of %s: %w", name, err)
			}
		}
		if cols[0] == "" || cols[0] != cols[1] {
			return true, nil
		}
	}
	return false, nil
}

// alreadyExists reports ClickHouse's TABLE_ALREADY_EXISTS (57).
func alreadyExists(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == 57
}
