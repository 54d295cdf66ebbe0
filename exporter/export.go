package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditstore/auditstore/schema"
)

// Selection is which events to export: a FROM clause over the events table
// and a WHERE condition whose values are all {name:Type} placeholders bound
// from Params. It always holds the org and the expiry condition.
type Selection struct {
	From   string
	Where  string
	Params map[string]string
	// Settings are ClickHouse settings the selection relies on (FINAL's).
	Settings map[string]string
}

// Selector turns the filter parameters of an export request into the
// selection for org, exactly as GET /v1/events reads them. Bad parameters
// are a *schema.Error naming the parameter.
type Selector func(ctx context.Context, org string, filters url.Values) (Selection, error)

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
}

// DefaultConfig returns the defaults; ClickHouseHTTP remains to be set.
func DefaultConfig() Config {
	return Config{Database: "auditstore", User: "default", WriteTimeout: time.Minute, MaxDuration: time.Hour}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.ClickHouseHTTP == "" {
		return errors.New("exporter: ClickHouseHTTP is required")
	}
	if c.Database == "" || c.WriteTimeout <= 0 || c.MaxDuration < time.Second {
		return errors.New("exporter: Database, WriteTimeout and MaxDuration (at least 1s) are required")
	}
	return nil
}

// Exporter serves GET /v1/export.
type Exporter struct {
	cfg  Config
	ch   *chHTTP
	conn Conn
	sel  Selector
	rec  Recorder
	log  *slog.Logger
	now  func() time.Time
}

// New returns an exporter reading through ClickHouse's HTTP interface (the
// binary formats) and conn (NDJSON).
func New(conn Conn, sel Selector, rec Recorder, cfg Config, log *slog.Logger) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Exporter{cfg: cfg, ch: newCHHTTP(cfg.ClickHouseHTTP, cfg.Database, cfg.User, cfg.Password),
		conn: conn, sel: sel, rec: rec, log: log, now: time.Now}, nil
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
