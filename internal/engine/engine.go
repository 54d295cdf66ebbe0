package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// serveQuery makes clickhouse-local listen on its ports and keep serving
// until its standard input reaches end of file.
const serveQuery = "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; " +
	"SELECT count() FROM file('/dev/stdin', 'LineAsString') FORMAT Null"

// Config configures an embedded engine.
type Config struct {
	// Lib is the path of libchdb.so (see Fetch). Required.
	Lib string
	// DataDir holds the engine's databases; it survives restarts. Required.
	DataDir string
	// Ephemeral removes DataDir when the engine exits (tests).
	Ephemeral bool
	// Host is the address the engine listens on. Default 127.0.0.1.
	Host string
	// TCPPort and HTTPPort are the native and HTTP ports; 0 picks free ones.
	TCPPort, HTTPPort int
	// StartTimeout bounds the wait for the engine to answer, and, before
	// it starts, the wait for an engine still running on DataDir (one left
	// by a killed server, shutting down) to let go of it. Default 60s.
	StartTimeout time.Duration
	// Logger receives the engine's own output and lifecycle events. Required.
	Logger *slog.Logger
	// Password, when set, is required of the engine's only user, default,
	// on both ports; without it the engine answers anyone who reaches
	// 127.0.0.1 (another local process, a stream aimed at it). Use
	// NewPassword. Default "" (no password: tests of the engine itself).
	Password string
	// UncompressedCache is the most bytes of decompressed column blocks the
	// engine keeps for reads that ask for them (the query package's reads
	// do: readsql.ReadSettings). A short read of recent events, a count
	// repeated over the same hours or a filtered view read again then
	// skips decompressing blocks it read before; memory is taken as blocks
	// are read, up to this bound (and never more than half of the host's,
	// ClickHouse's own cap on its caches). It is written into the
	// configuration of an engine with a Password (the server's); 0 keeps
	// no such cache. Default 1 GiB.
	UncompressedCache int64
	// ConfigFile, when set, is passed to the engine as --config-file: e.g.
	// a remote_servers section naming other engines, for a sharded cluster
	// (tests). It cannot be combined with Password, which writes its own.
	ConfigFile string
}

// DefaultConfig returns a Config with the defaults filled in; Lib, DataDir and
// Logger remain to be set.
func DefaultConfig() Config {
	return Config{Host: "127.0.0.1", StartTimeout: 60 * time.Second, UncompressedCache: 1 << 30}
}

// Validate reports a configuration that cannot start.
func (c Config) Validate() error {
	switch {
	case c.Lib == "":
		return errors.New("engine: Lib is required")
	case c.DataDir == "":
		return errors.New("engine: DataDir is required")
	case c.Logger == nil:
		return errors.New("engine: Logger is required")
	case c.Host == "":
		return errors.New("engine: Host is required")
	case c.TCPPort < 0 || c.TCPPort > 65535 || c.HTTPPort < 0 || c.HTTPPort > 65535:
		return errors.New("engine: ports must be within 0-65535")
	case c.StartTimeout <= 0:
		return errors.New("engine: StartTimeout must be positive")
	case c.UncompressedCache < 0:
		return errors.New("engine: UncompressedCache must not be negative")
	case c.ConfigFile != "" && c.Password != "":
		return errors.New("engine: ConfigFile and Password cannot be combined")
	}
	return nil
}

// Engine is a running embedded ClickHouse in a child process. The child holds
// the read end of a pipe as its standard input: closing it (Stop, or this
// process dying for any reason) makes the engine shut down.
type Engine struct {
	cmd      *exec.Cmd
	stdin    io.Closer
	tcpAddr  string
	httpAddr string
	log      *slog.Logger
	output   *tailBuffer

	done    chan struct{}
	mu      sync.Mutex
	exitErr error
	stopped bool
}

// Start launches the engine and waits until it answers on both ports. It
// fails, with the engine's last output, if the engine exits or does not
// answer within StartTimeout.
func Start(ctx context.Context, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("engine data dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create engine data dir: %w", err)
	}
	if err := waitUnlocked(ctx, dataDir, cfg.StartTimeout, cfg.Logger); err != nil {
		return nil, err
	}
	// Free ports are picked by binding and releasing them; another process
	// may take one in between, so a failed start with picked ports retries.
	const attempts = 3
	for i := 1; ; i++ {
		e, err := start(ctx, cfg, dataDir)
		if err == nil || (cfg.TCPPort != 0 && cfg.HTTPPort != 0) || i == attempts || ctx.Err() != nil {
			return e, err
		}
		cfg.Logger.Warn("embedded clickhouse failed to start, retrying with other ports", "error", err)
	}
}

func start(ctx context.Context, cfg Config, dataDir string) (*Engine, error) {
	tcpPort, httpPort := cfg.TCPPort, cfg.HTTPPort
	var err error
	if tcpPort == 0 {
		if tcpPort, err = freePort(cfg.Host); err != nil {
			return nil, err
		}
	}
	if httpPort == 0 {
		if httpPort, err = freePort(cfg.Host); err != nil {
			return nil, err
		}
	}
	args := []string{"clickhouse",
		"--path=" + dataDir + string(filepath.Separator),
		"--listen_host=" + cfg.Host,
		"--tcp_port=" + strconv.Itoa(tcpPort),
		"--http_port=" + strconv.Itoa(httpPort),
		"--query=" + serveQuery,
	}
	if cfg.Password != "" {
		users, err := writeConfig(dataDir, cfg.Password, cfg.UncompressedCache)
		if err != nil {
			return nil, err
		}
		// The engine's own session (the serving query) signs in too.
		args = append(args[:len(args)-1], "--config-file="+users, args[len(args)-1])
	}
	if cfg.ConfigFile != "" {
		args = append(args[:len(args)-1], "--config-file="+cfg.ConfigFile, args[len(args)-1])
	}
	argsJSON, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envChildLib+"="+cfg.Lib, envChildArgs+"="+string(argsJSON))
	if cfg.Ephemeral {
		cmd.Env = append(cmd.Env, envChildEphemeral+"="+dataDir)
	}
	// Its own process group: a Ctrl-C at the terminal reaches only us, and we
	// stop the engine in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("engine stdin: %w", err)
	}
	out := newTailBuffer(16<<10, cfg.Logger)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start engine process: %w", err)
	}
	e := &Engine{
		cmd:      cmd,
		stdin:    stdin,
		tcpAddr:  net.JoinHostPort(cfg.Host, strconv.Itoa(tcpPort)),
		httpAddr: net.JoinHostPort(cfg.Host, strconv.Itoa(httpPort)),
		log:      cfg.Logger,
		output:   out,
		done:     make(chan struct{}),
	}
	go e.wait()
	if err := e.waitReady(ctx, cfg.StartTimeout); err != nil {
		_ = e.Stop(context.Background())
		return nil, err
	}
	e.log.Info("embedded clickhouse ready", "tcp", e.tcpAddr, "http", e.httpAddr,
		"pid", cmd.Process.Pid, "data", dataDir)
	return e, nil
}

func (e *Engine) wait() {
	err := e.cmd.Wait()
	e.mu.Lock()
	stopped := e.stopped
	if err == nil && !stopped {
		err = errors.New("exited unexpectedly")
	}
	if err != nil {
		e.exitErr = fmt.Errorf("embedded clickhouse (pid %d) %w; last output: %s",
			e.cmd.Process.Pid, err, e.output.Tail())
	}
	e.mu.Unlock()
	if !stopped {
		e.log.Error("embedded clickhouse died", "error", e.exitErr)
	}
	close(e.done)
}

func (e *Engine) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		if e.ping(ctx, client) == nil {
			return nil
		}
		select {
		case <-e.done:
			return e.Err()
		case <-ctx.Done():
			return fmt.Errorf("embedded clickhouse did not answer on %s within %s: %w; last output: %s",
				e.httpAddr, timeout, ctx.Err(), e.output.Tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (e *Engine) ping(ctx context.Context, client *http.Client) error {
	conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", e.tcpAddr)
	if err != nil {
		return err
	}
	conn.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.httpAddr+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping: %s", resp.Status)
	}
	return nil
}

// Addr is the host:port of the native protocol.
func (e *Engine) Addr() string { return e.tcpAddr }

// HTTPAddr is the host:port of the HTTP interface.
func (e *Engine) HTTPAddr() string { return e.httpAddr }

// Done is closed when the engine process has exited.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Err is nil while the engine runs or after a requested Stop; otherwise it
// says how the engine died.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exitErr
}

// Stop asks the engine to shut down (closes its standard input) and waits
// for it; if ctx ends first, the engine is killed.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if !e.stopped {
		e.stopped = true
		if e.exitErr == nil {
			e.log.Info("stopping embedded clickhouse")
		}
	}
	e.mu.Unlock()
	_ = e.stdin.Close()
	select {
	case <-e.done:
	case <-ctx.Done():
		_ = e.cmd.Process.Kill()
		<-e.done
		return fmt.Errorf("embedded clickhouse did not stop in time, killed: %w", ctx.Err())
	}
	return e.Err()
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last bytes the engine printed and logs each line.
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	line []byte
	log  *slog.Logger
}

func newTailBuffer(max int, log *slog.Logger) *tailBuffer {
	return &tailBuffer{max: max, log: log}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	t.line = append(t.line, p...)
	for {
		i := bytes.IndexByte(t.line, '\n')
		if i < 0 {
			break
		}
		if l := bytes.TrimSpace(t.line[:i]); len(l) > 0 {
			t.log.Warn("embedded clickhouse output", "line", string(l))
		}
		t.line = t.line[i+1:]
	}
	if len(t.line) > t.max {
		t.line = t.line[:0]
	}
	return len(p), nil
}

// Tail returns the last output, or "(none)".
func (t *tailBuffer) Tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.TrimSpace(t.buf))
	if s == "" {
		return "(none)"
	}
	return s
}
