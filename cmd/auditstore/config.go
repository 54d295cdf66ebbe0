package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/auditstore/auditstore/ingest"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/internal/console"
	"github.com/auditstore/auditstore/internal/engine"
	"github.com/auditstore/auditstore/internal/tenant"
	"github.com/auditstore/auditstore/schema"
)

// config is everything the server reads from flags and the environment. A
// flag given on the command line wins over its environment variable, which
// wins over the default.
type config struct {
	Listen     string
	DataDir    string
	ClickHouse chconn.Config // Addr empty = embedded engine
	// ClickHouseHTTP is the HTTP interface of an external server.
	ClickHouseHTTP string
	// Cluster is the ClickHouse cluster (remote_servers) to shard over; ""
	// for one server.
	Cluster      string
	EngineCache  string
	EnginePorts  [2]int // native, HTTP; 0 = pick a free port
	AdminToken   string // "" = generate one at start
	CursorKey    []byte // nil = random per start
	StreamKey    string // base64; "" = DATA/stream.key
	AllowPrivate bool
	LakeDir      string // "" = no "dir" data-lake destinations
	Ingest       ingest.Config
	KeyRefresh   time.Duration
	Plans        schema.Plans
	LogLevel     slog.Level
	LogFormat    string
	Security     security // proxies, /metrics (secrets.go)

	// BodyReadTimeout bounds the arrival of a request body; WriteTimeout
	// the writing of an answer (an export's progress).
	BodyReadTimeout, WriteTimeout time.Duration
	Limits                        limits
	MaxPageOffset                 int
	ConsoleOn                     bool
	Console                       console.Config
	// TraceURL is the trace link-out of orgs that set none (tenant.Config.DefaultTraceURL).
	TraceURL string
	// EngineReadCache is the embedded engine's uncompressed cache, bytes
	// (engine.Config.UncompressedCache).
	EngineReadCache int64
}

// option documents one setting for flags, the environment and README.
type option struct {
	flag, env, def, usage string
}

var options = []option{
	{"listen", "AUDITSTORE_LISTEN", "127.0.0.1:8080", "HTTP listen address"},
	{"data", "AUDITSTORE_DATA", "./data", "data directory (embedded ClickHouse, write-ahead log)"},
	{"clickhouse", "AUDITSTORE_CLICKHOUSE", "", "host:port of a ClickHouse server (native protocol); empty runs the embedded engine"},
	{"clickhouse-http", "AUDITSTORE_CLICKHOUSE_HTTP", "", "host:port of that server's HTTP interface, used to stream exports (default: the -clickhouse host, port 8123)"},
	{"clickhouse-user", "AUDITSTORE_CLICKHOUSE_USER", "default", "ClickHouse user"},
	{"clickhouse-password", "AUDITSTORE_CLICKHOUSE_PASSWORD", "", "ClickHouse password"},
	{"clickhouse-database", "AUDITSTORE_CLICKHOUSE_DATABASE", "auditstore", "ClickHouse database (created if missing)"},
	{"clickhouse-cluster", "AUDITSTORE_CLICKHOUSE_CLUSTER", "", "ClickHouse cluster (a remote_servers name of the -clickhouse server) to shard events over; empty: one server (see Scaling out)"},
	{"engine-tcp-port", "AUDITSTORE_ENGINE_TCP_PORT", "0", "native port of the embedded engine on 127.0.0.1 (0 picks a free one)"},
	{"engine-http-port", "AUDITSTORE_ENGINE_HTTP_PORT", "0", "HTTP port of the embedded engine on 127.0.0.1 (0 picks a free one)"},
	{"engine-cache", "AUDITSTORE_ENGINE_CACHE", "", "where the embedded engine is cached (default: the user cache dir, ~/.cache/auditstore/engine)"},
	{"engine-read-cache", "AUDITSTORE_ENGINE_READ_CACHE", "1073741824", "bytes of decompressed column blocks the embedded engine keeps for reads (taken as read; 0 keeps none)"},
	{"plans", "AUDITSTORE_PLANS", schema.DefaultPlans().String(), "plans and their retention, name=N{s,m,h,d,y},..."},
	{"admin-token", "AUDITSTORE_ADMIN_TOKEN", "", "operator token for /v1/orgs (at least 16 characters); empty generates one and prints it once at start"},
	{"key-refresh", "AUDITSTORE_KEY_REFRESH", "2s", "how often API keys and orgs are re-read; a revoked key is refused by every instance within about this delay"},
	{"wal-max-bytes", "AUDITSTORE_WAL_MAX_BYTES", "1073741824", "bound of the write-ahead log on disk; beyond it ingest answers 503 with Retry-After"},
	{"max-body-bytes", "AUDITSTORE_MAX_BODY_BYTES", "10485760", "largest ingest request body after decompression (413 beyond)"},
	{"max-events", "AUDITSTORE_MAX_EVENTS", "10000", "most events in one ingest request (413 beyond)"},
	{"max-event-bytes", "AUDITSTORE_MAX_EVENT_BYTES", "1048576", "largest single event (400 beyond)"},
	{"body-read-timeout", "AUDITSTORE_BODY_READ_TIMEOUT", "30s", "longest a request body may take to arrive (408 beyond); bodies are read before a request takes an ingest slot"},
	{"write-timeout", "AUDITSTORE_WRITE_TIMEOUT", "1m", "longest an answer may take to be written; an export must make progress within it, or it is ended"},
	{"clickhouse-conns", "AUDITSTORE_CLICKHOUSE_CONNS", defaultPools.String(), "ClickHouse connections of each pool: ingest (inserts), auth (keys, orgs), query (query endpoints), export (NDJSON exports), stream (streams), lake (data-lake deliveries)"},
	{"query-timeout", "AUDITSTORE_QUERY_TIMEOUT", "30s", "longest a query may run (ClickHouse max_execution_time too); 503 query_timeout beyond"},
	{"export-timeout", "AUDITSTORE_EXPORT_TIMEOUT", "1h", "longest an export may run; it is ended beyond"},
	{"max-queries-per-org", "AUDITSTORE_MAX_QUERIES_PER_ORG", "4", "queries one org may run at once (429 too_many_queries beyond)"},
	{"max-exports-per-org", "AUDITSTORE_MAX_EXPORTS_PER_ORG", "2", "exports one org may run at once (429 too_many_exports beyond)"},
	{"max-page-bytes", "AUDITSTORE_MAX_PAGE_BYTES", "8388608", "bytes of events one page of a list may hold; a page past it ends early with a cursor for the rest"},
	{"batch-size", "AUDITSTORE_BATCH_SIZE", "100000", "events per INSERT into ClickHouse"},
	{"batch-bytes", "AUDITSTORE_BATCH_BYTES", "67108864", "bytes of event text per INSERT into ClickHouse (the batch is cut at this or -batch-size)"},
	{"flush-interval", "AUDITSTORE_FLUSH_INTERVAL", "200ms", "longest an accepted event waits before its batch is inserted"},
	{"cursor-key", "AUDITSTORE_CURSOR_KEY", "", "key signing paging cursors, at least 32 characters; give every instance the same one (empty: random per start, so cursors die with a restart)"},
	{"stream-key", "AUDITSTORE_STREAM_KEY", "", "32 bytes, base64, sealing stream credentials; the same on every instance (empty: read or create DATA/stream.key)"},
	{"allow-private-destinations", "AUDITSTORE_ALLOW_PRIVATE_DESTINATIONS", "false", "let streams deliver to loopback, private and link-local addresses, and plain http to them (on-premises, tests)"},
	{"lake-dir", "AUDITSTORE_LAKE_DIR", "", "absolute directory (as ClickHouse sees it) under which data-lake \"dir\" destinations write; empty disables them"},
	{"log-level", "AUDITSTORE_LOG_LEVEL", "info", "log level: debug, info, warn, error"},
	{"log-format", "AUDITSTORE_LOG_FORMAT", "text", "log format: text or json"},
	{"max-page-offset", "AUDITSTORE_MAX_PAGE_OFFSET", "100000", "how deep page mode reaches ((page-1)*limit); deeper pages follow the cursor"},
	{"console", "AUDITSTORE_CONSOLE", "true", "serve the web console at / (false: the API only)"},
	{"console-frame-ancestors", "AUDITSTORE_CONSOLE_FRAME_ANCESTORS", "", "origins that may embed the console in a frame, space-separated (e.g. https://app.example.com); empty: none"},
	{"console-trace-url", "AUDITSTORE_CONSOLE_TRACE_URL", "", "default link from a trace id to execution logs, with {traceId} in it (e.g. https://logs.example.com/?q={traceId}), for orgs that set none (PATCH /v1/orgs/{org}/settings)"},
}

// stringFlag is a flag kept as text; one whose default is true or false
// may be given alone (-allow-private-destinations), like a bool flag.
type stringFlag struct {
	s      string
	isBool bool
}

func (f *stringFlag) String() string     { return f.s }
func (f *stringFlag) Set(v string) error { f.s = v; return nil }
func (f *stringFlag) IsBoolFlag() bool   { return f.isBool }

// parseConfig reads args (without the subcommand) and the environment.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := map[string]*string{}
	for _, o := range options {
		def := o.def
		if v := getenv(o.env); v != "" {
			def = v
		}
		v := &stringFlag{s: def, isBool: def == "false" || def == "true"}
		fs.Var(v, o.flag, fmt.Sprintf("%s (env %s)", o.usage, o.env))
		vals[o.flag] = &v.s
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := readSecretFiles(vals); err != nil {
		return config{}, err
	}
	c := config{
		Listen:      *vals["listen"],
		DataDir:     *vals["data"],
		EngineCache: *vals["engine-cache"],
		LogFormat:   *vals["log-format"],
	}
	c.ClickHouse = chconn.DefaultConfig()
	c.ClickHouse.Addr = *vals["clickhouse"]
	c.ClickHouseHTTP = *vals["clickhouse-http"]
	if c.ClickHouseHTTP == "" && c.ClickHouse.Addr != "" {
		host, _, err := net.SplitHostPort(c.ClickHouse.Addr)
		if err != nil {
			return config{}, fmt.Errorf("-clickhouse: want host:port, got %q", c.ClickHouse.Addr)
		}
		c.ClickHouseHTTP = net.JoinHostPort(host, "8123")
	}
	c.ClickHouse.Username = *vals["clickhouse-user"]
	c.ClickHouse.Password = *vals["clickhouse-password"]
	c.ClickHouse.Database = *vals["clickhouse-database"]
	if c.Cluster = *vals["clickhouse-cluster"]; c.Cluster != "" {
		if c.ClickHouse.Addr == "" {
			return config{}, fmt.Errorf("-clickhouse-cluster: needs -clickhouse (a server of the cluster); the embedded engine is one server")
		}
		if err := (schema.ClusterDDL{Cluster: c.Cluster}).Validate(); err != nil {
			return config{}, fmt.Errorf("-clickhouse-cluster: %w", err)
		}
	}
	var err error
	if c.Plans, err = schema.ParsePlans(*vals["plans"]); err != nil {
		return config{}, fmt.Errorf("-plans: %w", err)
	}
	if err := c.LogLevel.UnmarshalText([]byte(*vals["log-level"])); err != nil {
		return config{}, fmt.Errorf("-log-level: %w", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return config{}, fmt.Errorf("-log-format: want text or json, got %q", c.LogFormat)
	}
	if k := *vals["cursor-key"]; k != "" {
		if len(k) < 32 {
			return config{}, fmt.Errorf("-cursor-key: must be at least 32 characters")
		}
		c.CursorKey = []byte(k)
	}
	c.StreamKey = *vals["stream-key"]
	if c.AllowPrivate, err = strconv.ParseBool(*vals["allow-private-destinations"]); err != nil {
		return config{}, fmt.Errorf("-allow-private-destinations: want true or false")
	}
	if c.LakeDir = *vals["lake-dir"]; c.LakeDir != "" && !filepath.IsAbs(c.LakeDir) {
		return config{}, fmt.Errorf("-lake-dir: want an absolute path, got %q", c.LakeDir)
	}
	if c.ConsoleOn, err = strconv.ParseBool(*vals["console"]); err != nil {
		return config{}, fmt.Errorf("-console: want true or false")
	}
	c.Console = console.DefaultConfig()
	c.Console.FrameAncestors = strings.Fields(*vals["console-frame-ancestors"])
	c.TraceURL = *vals["console-trace-url"]
	if err := tenant.CheckTraceURL(c.TraceURL); err != nil {
		return config{}, fmt.Errorf("-console-trace-url: %w", err)
	}
	if c.MaxPageOffset, err = strconv.Atoi(*vals["max-page-offset"]); err != nil || c.MaxPageOffset < 0 {
		return config{}, fmt.Errorf("-max-page-offset: want a whole number of events, at least 0")
	}
	c.Console.MaxOffset = c.MaxPageOffset
	if err := c.Console.Validate(); err != nil {
		return config{}, err
	}
	c.AdminToken = *vals["admin-token"]
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return config{}, fmt.Errorf("-admin-token: must be at least 16 characters")
	}
	if c.KeyRefresh, err = time.ParseDuration(*vals["key-refresh"]); err != nil || c.KeyRefresh < 100*time.Millisecond {
		return config{}, fmt.Errorf("-key-refresh: want a duration of at least 100ms, e.g. 2s")
	}
	c.Ingest = ingest.DefaultConfig()
	ints := []struct {
		flag string
		dst  *int64
	}{{"wal-max-bytes", &c.Ingest.WAL.MaxBytes}, {"max-body-bytes", &c.Ingest.MaxBodyBytes}}
	for _, f := range ints {
		if *f.dst, err = strconv.ParseInt(*vals[f.flag], 10, 64); err != nil || *f.dst <= 0 {
			return config{}, fmt.Errorf("-%s: want a positive number of bytes, got %q", f.flag, *vals[f.flag])
		}
	}
	for _, f := range []struct {
		flag string
		dst  *int
	}{{"max-events", &c.Ingest.MaxEvents}, {"max-event-bytes", &c.Ingest.MaxEventBytes}, {"batch-size", &c.Ingest.BatchSize}, {"batch-bytes", &c.Ingest.BatchBytes}} {
		if *f.dst, err = strconv.Atoi(*vals[f.flag]); err != nil || *f.dst <= 0 {
			return config{}, fmt.Errorf("-%s: want a positive whole number, got %q", f.flag, *vals[f.flag])
		}
	}
	if c.Ingest.MaxEvents > ingest.MaxEventsLimit {
		return config{}, fmt.Errorf("-max-events: at most %d, got %d", ingest.MaxEventsLimit, c.Ingest.MaxEvents)
	}
	if c.Ingest.FlushInterval, err = time.ParseDuration(*vals["flush-interval"]); err != nil || c.Ingest.FlushInterval <= 0 {
		return config{}, fmt.Errorf("-flush-interval: want a positive duration, e.g. 200ms")
	}
	for _, f := range []struct {
		flag string
		dst  *time.Duration
	}{{"body-read-timeout", &c.BodyReadTimeout}, {"write-timeout", &c.WriteTimeout}} {
		if *f.dst, err = time.ParseDuration(*vals[f.flag]); err != nil || *f.dst < time.Second {
			return config{}, fmt.Errorf("-%s: want a duration of at least 1s, e.g. 30s", f.flag)
		}
	}
	c.Ingest.BodyReadTimeout = c.BodyReadTimeout
	if c.Limits, err = parseLimits(vals); err != nil {
		return config{}, err
	}
	c.ClickHouse.MaxOpenConns = c.Limits.Conns.Auth
	c.Ingest.WAL.SegmentBytes = min(c.Ingest.WAL.SegmentBytes, c.Ingest.WAL.MaxBytes/8)
	if c.Ingest.WAL.SegmentBytes < 4096 {
		return config{}, fmt.Errorf("-wal-max-bytes: want at least 32768")
	}
	if err := c.ClickHouse.ValidateNames(); err != nil {
		return config{}, err
	}
	if c.Listen == "" || c.DataDir == "" {
		return config{}, fmt.Errorf("-listen and -data must not be empty")
	}
	for i, name := range []string{"engine-tcp-port", "engine-http-port"} {
		p, err := strconv.Atoi(*vals[name])
		if err != nil || p < 0 || p > 65535 {
			return config{}, fmt.Errorf("-%s: want a port number 0-65535, got %q", name, *vals[name])
		}
		c.EnginePorts[i] = p
	}
	if c.EngineReadCache, err = strconv.ParseInt(*vals["engine-read-cache"], 10, 64); err != nil || c.EngineReadCache < 0 {
		return config{}, fmt.Errorf("-engine-read-cache: want a number of bytes (0 for none), got %q", *vals["engine-read-cache"])
	}
	if c.EngineCache == "" {
		if c.EngineCache, err = engine.DefaultCacheDir(); err != nil {
			return config{}, err
		}
	}
	if c.Security, err = parseSecurity(vals); err != nil {
		return config{}, err
	}
	return c, nil
}

func (c config) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// progressPrinter reports the engine download on w: in place on a terminal,
// every 10 % otherwise.
func progressPrinter(w *os.File) engine.Progress {
	tty := isTerminal(w)
	last, lastPct := time.Time{}, int64(-10)
	return func(done, total int64) {
		pct := done * 100 / total
		if tty {
			if time.Since(last) < 200*time.Millisecond && done < total {
				return
			}
			last = time.Now()
			fmt.Fprintf(w, "\rfetching ClickHouse engine %s@%s: %s / %s (%d%%)%s",
				engine.Package, engine.Version, mb(done), mb(total), pct, strings.Repeat(" ", 4))
			if done == total {
				fmt.Fprintln(w)
			}
			return
		}
		if pct >= lastPct+10 || done == total && lastPct != 100 {
			lastPct = pct
			fmt.Fprintf(w, "fetching ClickHouse engine %s@%s: %s / %s (%d%%)\n",
				engine.Package, engine.Version, mb(done), mb(total), pct)
		}
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
