// Package pg runs a private PostgreSQL cluster for the benchmarks: it finds
// Debian's PostgreSQL binaries (installing the postgresql package with
// apt-get when they are absent and that is possible), initializes a
// cluster in a temporary directory, serves it on a free loopback port,
// and removes everything again on Stop.
//
// PostgreSQL refuses to run as root: as root, the cluster runs as the
// "postgres" system user (or "nobody" when there is none), which owns the
// temporary directory.
package pg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrUnavailable says that PostgreSQL is not installed and cannot be
// installed here (not root, or no apt-get).
var ErrUnavailable = errors.New("pg: PostgreSQL is not installed and cannot be installed here (needs root and apt-get)")

// Config says how to run the cluster.
type Config struct {
	// BinDir holds initdb and postgres. Empty: found by Find.
	BinDir string
	// Port on 127.0.0.1. 0: a free one.
	Port int
	// Settings are passed as -c name=value to the server.
	Settings map[string]string
	// StartTimeout bounds the wait for the server to accept connections.
	StartTimeout time.Duration
}

// DefaultConfig returns a small cluster: PostgreSQL's own defaults, for
// tests.
func DefaultConfig() Config {
	return Config{Settings: map[string]string{}, StartTimeout: time.Minute}
}

// User is the database superuser of every cluster this package starts.
const User = "bench"

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	dir     string
	port    int
	version string
	cmd     *exec.Cmd
	logf    *os.File
	exited  chan struct{}
	stopped sync.Once
	stopErr error
}

// Find returns the bin directory of the newest PostgreSQL under
// /usr/lib/postgresql (Debian's layout), or of initdb on PATH.
func Find() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			found = append(found, d)
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return majorOf(found[i]) > majorOf(found[j]) })
		return found[0], nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("pg: no PostgreSQL binaries found")
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Ensure returns the bin directory, installing Debian's postgresql package
// first when no binaries are found. Without root or apt-get, or when
// apt-get fails, it returns an error that is ErrUnavailable (errors.Is).
// progress, when not nil, is told what happens.
func Ensure(ctx context.Context, progress func(string)) (string, error) {
	if d, err := Find(); err == nil {
		return d, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return "", ErrUnavailable
	}
	if progress != nil {
		progress("PostgreSQL not found: installing Debian's postgresql package with apt-get")
	}
	// Debian's package creates and starts a "main" cluster unless told not
	// to; the benchmark wants only its private one.
	if err := os.MkdirAll("/etc/postgresql-common/createcluster.d", 0o755); err == nil {
		_ = os.WriteFile("/etc/postgresql-common/createcluster.d/auditstore-bench.conf",
			[]byte("# written by auditstore's bench: no default cluster\ncreate_main_cluster = false\n"), 0o644)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	// Wait for another apt-get (a concurrent test binary) rather than fail.
	lock := []string{"-o", "DPkg::Lock::Timeout=300"}
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "postgresql"}} {
		cmd := exec.CommandContext(ctx, "apt-get", append(lock, args...)...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%w: apt-get %s: %v\n%s", ErrUnavailable, args[0], err, tail(out, 2000))
		}
	}
	return Find()
}

// runAs says which user runs the server: nil when not root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pg: running as root and neither a postgres nor a nobody user exists")
}

// dirPrefix names the temporary directories; the creating process id
// follows, so that a later Start can remove those of dead processes.
const dirPrefix = "auditstore-pg-"

// Start initializes a cluster in a new temporary directory and starts it.
// The server runs with the parent-death signal set, so it stops when this
// process dies; Stop also removes the directory.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.BinDir == "" {
		d, err := Find()
		if err != nil {
			return nil, err
		}
		cfg.BinDir = d
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = time.Minute
	}
	removeStale()
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, port: cfg.Port, exited: make(chan struct{})}
	fail := func(err error) (*Cluster, error) {
		_ = c.Stop()
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(cfg.BinDir, "initdb"), "-D", data, "-U", User,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pg: initdb: %w\n%s", err, tail(out, 2000)))
	}
	if c.port == 0 {
		if c.port, err = freePort(); err != nil {
			return fail(err)
		}
	}
	args := []string{"-D", data, "-p", strconv.Itoa(c.port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + dir}
	keys := make([]string, 0, len(cfg.Settings))
	for k := range cfg.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+cfg.Settings[k])
	}
	if c.logf, err = os.Create(filepath.Join(dir, "server.log")); err != nil {
		return fail(err)
	}
	c.cmd = exec.Command(filepath.Join(cfg.BinDir, "postgres"), args...)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = c.logf, c.logf
	// Fast shutdown when this process dies; its own process group, so a
	// Ctrl-C at the terminal reaches us and Stop shuts it down in order.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return fail(fmt.Errorf("pg: start postgres: %w", err))
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	if err := c.waitReady(ctx, cfg.StartTimeout); err != nil {
		return fail(err)
	}
	return c, nil
}

func (c *Cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		if err == nil {
			err = conn.QueryRow(ctx, "SHOW server_version").Scan(&c.version)
			conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("pg: postgres exited at start:\n%s", c.Log())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pg: not ready after %s: %v\n%s", timeout, err, c.Log())
		}
	}
}

// DSN is the connection string of database db.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, c.port, db)
}

// Dir is the cluster's temporary directory (removed by Stop).
func (c *Cluster) Dir() string { return c.dir }

// Port is the server's port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Version is the server's version, e.g. "15.18 (Debian 15.18-0+deb12u1)".
func (c *Cluster) Version() string { return c.version }

// PID is the postmaster's process id (0 before it started).
func (c *Cluster) PID() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Log returns the end of the server's log.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
	return string(tail(b, 4000))
}

// Stop shuts the server down (fast shutdown: running transactions are
// rolled back, committed data is safe) and removes the directory. It is
// safe to call more than once and from several goroutines.
func (c *Cluster) Stop() error {
	c.stopped.Do(func() {
		if c.cmd != nil && c.cmd.Process != nil {
			_ = c.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-c.exited:
			case <-time.After(30 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.exited
			}
		}
		if c.logf != nil {
			_ = c.logf.Close()
		}
		c.stopErr = os.RemoveAll(c.dir)
	})
	return c.stopErr
}

// removeStale removes the directories of clusters whose creating process
// is gone (one killed before it could clean up).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), dirPrefix)
		pid, err := strconv.Atoi(rest[:max(0, strings.IndexByte(rest, '-'))])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			// Its postmaster got the parent-death signal; give it a moment.
			if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
				if pm, _ := strconv.Atoi(string(bytes.SplitN(b, []byte("\n"), 2)[0])); pm > 0 {
					if _, err := os.Stat(fmt.Sprintf("/proc/%d", pm)); err == nil {
						continue
					}
				}
			}
			_ = os.RemoveAll(d)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
