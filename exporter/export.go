package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// Recorder durably records the store's own audit events.
type Recorder interface {
	Record(ctx context.Context, org string, e schema.Event) error
}

// Conn is what the NDJSON path needs of a native ClickHouse connection.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Config configures exports.
type Config struct {
	// ClickHouseHTTP is host:port of ClickHouse's HTTP interface. Required.
	ClickHouseHTTP string
	// Database, User and Password as for the native connection.
	Database, User, Password string
	// WriteTimeout bounds one write to a client that stopped reading: the
	// deadline moves on with every chunk written, so a stalled client is
	// cut, and the export's ClickHouse query with it. Default 1m.
	WriteTimeout time.Duration
	// MaxDuration bounds an export (ClickHouse max_execution_time too).
	// Default 1h.
	MaxDuration time.Duration
	// Limits bound the filter parameters, as for GET /v1/events.
	Limits readsql.Limits
}

// DefaultConfig returns the defaults; ClickHouseHTTP remains to be set.
func DefaultConfig() Config {
	return Config{Database: "auditstore", User: "default", WriteTimeout: time.Minute, MaxDuration: time.Hour,
		Limits: readsql.DefaultLimits()}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.ClickHouseHTTP == "" {
		return errors.New("exporter: ClickHouseHTTP is required")
	}
	if c.Database == "" || c.WriteTimeout <= 0 || c.MaxDuration < time.Second {
		return errors.New("exporter: Database, WriteTimeout and MaxDuration (at least 1s) are required")
	}
	return c.Limits.Validate()
}

// Exporter serves GET /v1/export.
type Exporter struct {
	cfg  Config
	ch   *chHTTP
	conn Conn
	rec  Recorder
	log  *slog.Logger
	now  func() time.Time

	mu       sync.Mutex
	settings map[string]string // the read settings the server knows; nil until probed
}

// New returns an exporter reading through ClickHouse's HTTP interface (the
// binary formats) and conn (NDJSON). Its statements come from readsql,
// with the filters GET /v1/events takes.
func New(conn Conn, rec Recorder, cfg Config, log *slog.Logger) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Exporter{cfg: cfg, ch: newCHHTTP(cfg.ClickHouseHTTP, cfg.Database, cfg.User, cfg.Password),
		conn: conn, rec: rec, log: log, now: time.Now}, nil
}

// request is a parsed export request.
type request struct {
	format  Format
	filters url.Values
}

func parseRequest(q url.Values) (request, error) {
	f := q.Get("format")
	format, ok := Formats[f]
	if len(q["format"]) != 1 || !ok {
		return request{}, schema.Invalid("invalid_parameter",
			fmt.Sprintf("format must be one of %s", FormatNames()),
			schema.FieldError{Index: -1, Field: "format", Code: "enum", Message: "format must be one of " + FormatNames()})
	}
	filters := url.Values{}
	for k, v := range q {
		if k != "format" {
			filters[k] = v
		}
	}
	return request{format: format, filters: filters}, nil
}

// readSettings returns the readsql.ReadSettings the server knows, as
// text, asking it once.
func (x *Exporter) readSettings(ctx context.Context) (map[string]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.settings != nil {
		return x.settings, nil
	}
	known, err := chconn.Strings(ctx, x.conn, readsql.SettingsProbe().SQL)
	if err != nil {
		return nil, fmt.Errorf("read server settings: %w", err)
	}
	set := map[string]string{}
	for _, st := range readsql.KnownSettings(known) {
		set[st.Name] = strconv.Itoa(st.Value)
	}
	x.settings = set
	return set, nil
}
