// Package chconn opens connections to ClickHouse over the native protocol.
package chconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says which ClickHouse to use and how.
type Config struct {
	// Addr is host:port of the native protocol (usually port 9000).
	Addr string
	// Database is created when missing. Default "auditstore".
	Database string
	// Username and Password authenticate; empty Username means "default".
	Username, Password string
	// DialTimeout bounds each connection attempt. Default 5s.
	DialTimeout time.Duration
	// MaxOpenConns bounds the pool. Default 16.
	MaxOpenConns int
}

// DefaultConfig returns the defaults; Addr remains to be set.
func DefaultConfig() Config {
	return Config{Database: "auditstore", DialTimeout: 5 * time.Second, MaxOpenConns: 16}
}

var databaseName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidateNames checks the parts of the configuration a user types, before
// an address is known.
func (c Config) ValidateNames() error {
	if !databaseName.MatchString(c.Database) {
		return fmt.Errorf("clickhouse: database name %q must match %s", c.Database, databaseName)
	}
	return nil
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("clickhouse: address is required")
	case !databaseName.MatchString(c.Database):
		return fmt.Errorf("clickhouse: database name %q must match %s", c.Database, databaseName)
	case c.DialTimeout <= 0:
		return errors.New("clickhouse: dial timeout must be positive")
	case c.MaxOpenConns <= 0:
		return errors.New("clickhouse: max open connections must be positive")
	}
	return nil
}

// Open connects, creates the database if it does not exist, and returns a
// connection pool bound to it.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	boot, err := open(ctx, cfg, "default")
	if err != nil {
		return nil, err
	}
	// The name is checked against databaseName above: it cannot carry SQL.
	err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+cfg.Database+"`")
	boot.Close()
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	return open(ctx, cfg, cfg.Database)
}

func open(ctx context.Context, cfg Config, database string) (driver.Conn, error) {
	user := cfg.Username
	if user == "" {
		user = "default"
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{cfg.Addr},
		DialContext: func(ctx context.Context, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: cfg.DialTimeout}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return &boundedWrites{Conn: c, limit: writeStall}, nil
		},
		Auth:            clickhouse.Auth{Database: database, Username: user, Password: cfg.Password},
		DialTimeout:     cfg.DialTimeout,
		MaxOpenConns:    cfg.MaxOpenConns,
		MaxIdleConns:    min(cfg.MaxOpenConns, 8),
		ConnMaxLifetime: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// writeStall bounds each write to a ClickHouse connection. The driver
// watches a statement's context while it waits for the server and while it
// sends an INSERT's last block, but not while it sends the blocks before it
// (the ingest writer sends a batch in several): a server that stops reading
// (a frozen process, a network that drops packets without a reset) would
// hold that write until TCP gives up, many minutes later. A healthy server
// takes a block of a few MB in milliseconds.
const writeStall = 30 * time.Second

// boundedWrites fails a write that has not gone through after limit, or
// by the deadline the driver set if that comes first; the driver then
// closes the connection.
type boundedWrites struct {
	net.Conn
	limit time.Duration
	set   atomic.Int64 // the driver's write deadline in Unix nanoseconds; 0: none
}

func (c *boundedWrites) SetDeadline(t time.Time) error {
	c.remember(t)
	return c.Conn.SetDeadline(t)
}

func (c *boundedWrites) SetWriteDeadline(t time.Time) error {
	c.remember(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *boundedWrites) remember(t time.Time) {
	if t.IsZero() {
		c.set.Store(0)
	} else {
		c.set.Store(t.UnixNano())
	}
}

// SyscallConn exposes the socket: before reusing a pooled connection the
// driver reads from it without blocking to find one the server has closed
// (a restarted ClickHouse), and skips that check for a connection without
// it.
func (c *boundedWrites) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("chconn: the connection has no file descriptor")
	}
	return sc.SyscallConn()
}

func (c *boundedWrites) Write(p []byte) (int, error) {
	d := time.Now().Add(c.limit)
	if set := c.set.Load(); set != 0 && set < d.UnixNano() {
		d = time.Unix(0, set)
	}
	if err := c.Conn.SetWriteDeadline(d); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// Close ends the connection as a client that is done should: it says so
// (FIN, CloseWrite), reads and discards what the server still sends until
// the server closes its side too (at most closeDrain), then closes. A
// plain close while unread bytes remain resets the connection instead, and
// the embedded engine (chDB) has been seen to abort on a reset under a
// session waiting for its next query ("Terminate called for uncaught
// exception: Connection reset by peer").
func (c *boundedWrites) Close() error {
	if tc, ok := c.Conn.(*net.TCPConn); ok && tc.CloseWrite() == nil {
		if tc.SetReadDeadline(time.Now().Add(closeDrain)) == nil {
			_, _ = io.Copy(io.Discard, tc)
		}
	}
	return c.Conn.Close()
}

// closeDrain bounds Close's wait for the server to close its side: a
// server answers a client's FIN at once, unless it is still sending the
// rows of a query the client gave up on.
const closeDrain = 500 * time.Millisecond

// Drop removes a database (tests).
func Drop(ctx context.Context, cfg Config, database string) error {
	if !databaseName.MatchString(database) {
		return fmt.Errorf("clickhouse: bad database name %q", database)
	}
	conn, err := open(ctx, cfg, "default")
	if err != nil {
		return err
	}
	defer conn.Close()
	// Not SYNC: the embedded engine has been seen to abort on a synchronous
	// drop racing the last queries of a test; the data goes shortly after.
	return conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+database+"`")
}

// This file holds the one encoder of server-side parameters ({name:Type})
// in the code base: every package that binds a value goes through Escape
// or Params (internal/archtest keeps it so).

// paramEscaper escapes a server-side parameter value the way ClickHouse
// reads it (as escaped text; the driver and the HTTP interface send it as
// it is): without it a backslash, tab, newline or NUL in a value arrives
// altered, or breaks the query.
var paramEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`, "\x00", `\0`)

// Escape returns v as the wire form of a server-side parameter value.
func Escape(v string) string { return paramEscaper.Replace(v) }

// Time returns t as the value of a {name:DateTime64(3, 'UTC')} parameter
// (UTC, milliseconds).
func Time(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// Params returns values as server-side parameters, escaped for the wire.
func Params(values map[string]string) clickhouse.Parameters {
	out := make(clickhouse.Parameters, len(values))
	for k, v := range values {
		out[k] = Escape(v)
	}
	return out
}

// WithParams returns ctx carrying the server-side parameters of the next
// query: values (escaped, see Params) and arrays, each bound to an
// {name:Array(String)} placeholder.
func WithParams(ctx context.Context, values map[string]string, arrays map[string][]string) context.Context {
	p := Params(values)
	for k, ss := range arrays {
		p[k] = stringArray(ss)
	}
	return clickhouse.Context(ctx, clickhouse.WithParameters(p))
}

// stringArray returns ss as the wire form of an Array(String) parameter:
// a literal of quoted strings (ClickHouse reads an array parameter's
// elements as quoted strings, not as escaped text: Escape must not apply).
func stringArray(ss []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\'')
		for _, r := range s {
			if r == '\'' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('\'')
	}
	b.WriteByte(']')
	return b.String()
}

// Querier is the one driver method Strings needs.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Strings runs sql, which selects one String column, and returns its
// values.
func Strings(ctx context.Context, q Querier, sql string) ([]string, error) {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
