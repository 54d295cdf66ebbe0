// Package chtest gives tests a real ClickHouse: the server at CLICKHOUSE_ADDR
// when set; else a clickhouse/clickhouse-server container (dockertest) when a
// Docker engine answers; else the embedded engine, started once per test
// binary. Each test gets a fresh database, dropped when the test ends.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ory/dockertest/v3"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/engine"
)

// Image is the ClickHouse server image tests use under Docker; it is the one
// docker-compose.yml pins (a test keeps the two equal).
const (
	ImageRepository = "clickhouse/clickhouse-server"
	ImageTag        = "25.8"
)

// Server describes the ClickHouse the test binary uses.
type Server struct {
	Addr     string // native protocol host:port
	HTTPAddr string // HTTP host:port ("" when unknown)
	Kind     string // "external", "docker" or "embedded"
	// User and Password sign in: CLICKHOUSE_USER and CLICKHOUSE_PASSWORD for
	// an external server, the engine's generated ones for the embedded kind.
	User, Password string
	// Engine is set for the embedded kind: tests of the engine's lifecycle
	// start their own instead.
	Engine *engine.Supervisor
}

var (
	once   sync.Once
	mu     sync.Mutex // guards server for running, which does not wait for once
	server Server
	srvErr error
)

// Shared returns the test binary's ClickHouse, starting it on first use.
func Shared(tb testing.TB) Server {
	tb.Helper()
	once.Do(func() {
		s, err := startShared()
		mu.Lock()
		server, srvErr = s, err
		mu.Unlock()
	})
	if srvErr != nil {
		tb.Fatalf("no clickhouse for tests: %v", srvErr)
	}
	return server
}

// running returns the shared embedded engine when one was started, without
// starting it.
func running() *engine.Supervisor {
	mu.Lock()
	defer mu.Unlock()
	return server.Engine
}

func startShared() (Server, error) {
	if addr := os.Getenv("CLICKHOUSE_ADDR"); addr != "" {
		return Server{Addr: addr, HTTPAddr: os.Getenv("CLICKHOUSE_HTTP_ADDR"), Kind: "external",
			User: os.Getenv("CLICKHOUSE_USER"), Password: os.Getenv("CLICKHOUSE_PASSWORD")}, nil
	}
	if s, ok := startDocker(); ok {
		return s, nil
	}
	return startEmbedded()
}

func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startDocker runs the pinned image when a Docker engine answers. The
// container is removed by dockertest's expiry when the test binary exits.
func startDocker() (Server, bool) {
	pool, err := dockertest.NewPool("")
	if err != nil || pool.Client.Ping() != nil {
		return Server{}, false
	}
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: ImageRepository, Tag: ImageTag,
		Env: []string{"CLICKHOUSE_SKIP_USER_SETUP=1"},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "chtest: docker answers but %s:%s did not start (%v); using the embedded engine\n",
			ImageRepository, ImageTag, err)
		return Server{}, false
	}
	_ = res.Expire(1800)
	s := Server{Addr: res.GetHostPort("9000/tcp"), HTTPAddr: res.GetHostPort("8123/tcp"), Kind: "docker"}
	pool.MaxWait = 2 * time.Minute
	err = pool.Retry(func() error {
		conn, err := chconn.Open(context.Background(), withAddr(s, "default"))
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		_ = pool.Purge(res)
		return Server{}, false
	}
	return s, true
}

func startEmbedded() (Server, error) {
	ctx := context.Background()
	cache, err := engine.DefaultCacheDir()
	if err != nil {
		return Server{}, err
	}
	lastPct := int64(-10)
	lib, err := engine.Fetch(ctx, cache, func(done, total int64) {
		if pct := done * 100 / total; pct >= lastPct+10 {
			lastPct = pct
			fmt.Fprintf(os.Stderr, "chtest: fetching %s@%s: %d%%\n", engine.Package, engine.Version, pct)
		}
	})
	if err != nil {
		return Server{}, err
	}
	dir, err := os.MkdirTemp("", "auditstore-chtest-")
	if err != nil {
		return Server{}, err
	}
	cfg := engine.DefaultConfig()
	cfg.Lib, cfg.DataDir, cfg.Ephemeral, cfg.Logger = lib, filepath.Join(dir, "data"), true, logger()
	cfg.Password = engine.NewPassword() // as the server runs it
	// Supervised: should the engine abort, the tests after the one that
	// saw it die find it again on the same ports.
	e, err := engine.StartSupervised(ctx, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return Server{}, err
	}
	// The engine removes its data dir when it exits, which it does when this
	// process exits (its stdin closes); the parent temp dir is left empty.
	return Server{Addr: e.Addr(), HTTPAddr: e.HTTPAddr(), Kind: "embedded", Engine: e,
		User: engine.User, Password: cfg.Password}, nil
}

func withAddr(s Server, database string) chconn.Config {
	cfg := chconn.DefaultConfig()
	cfg.Addr, cfg.Database = s.Addr, database
	cfg.Username, cfg.Password = s.User, s.Password
	return cfg
}

// DB is a fresh database for one test.
type DB struct {
	Server
	Name   string
	Conn   driver.Conn
	Config chconn.Config // connection settings for this database
}

// NewDB creates an empty database on the shared server and drops it when the
// test ends.
func NewDB(tb testing.TB) *DB {
	tb.Helper()
	s := Shared(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	cfg := withAddr(s, name)
	ctx := context.Background()
	conn, err := chconn.Open(ctx, cfg)
	// A supervised engine that just died comes back within seconds.
	for deadline := time.Now().Add(45 * time.Second); err != nil && s.Engine != nil && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		conn, err = chconn.Open(ctx, cfg)
	}
	if err != nil {
		tb.Fatalf("open test database: %v", err)
	}
	tb.Cleanup(func() {
		conn.Close()
		if err := chconn.Drop(context.Background(), cfg, name); err != nil {
			// Not the test's failure: the database is only left behind.
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	return &DB{Server: s, Name: name, Conn: conn, Config: cfg}
}

// PostHTTP sends query to the server's HTTP interface with the URL
// parameters q, signed in as the server's user (the embedded engine
// answers only requests that carry its password).
func (s Server) PostHTTP(q url.Values, query string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+s.HTTPAddr+"/?"+q.Encode(), strings.NewReader(query))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain")
	if s.User != "" {
		req.Header.Set("X-ClickHouse-User", s.User)
	}
	if s.Password != "" {
		req.Header.Set("X-ClickHouse-Key", s.Password)
	}
	return http.DefaultClient.Do(req)
}
