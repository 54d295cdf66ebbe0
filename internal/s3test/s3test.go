// Package s3test gives tests a real S3 server: versitygw, an S3 gateway
// over a directory (each folder a bucket), started on a free port. Tests
// are skipped when versitygw is not installed (.ci/run installs it:
// go install github.com/versity/versitygw/cmd/versitygw@v1.8.0).
package s3test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditstore/auditstore/internal/servertest"
)

// Server is a running versitygw.
type Server struct {
	Endpoint       string // http://127.0.0.1:port
	Dir            string // the served directory: Dir/<bucket>/<key>
	Access, Secret string
}

// Binary finds versitygw on PATH or in GOPATH/bin; "" when absent.
func Binary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start starts versitygw with the buckets named, stopped when the test
// ends; the test is skipped when versitygw is not installed.
func Start(tb testing.TB, buckets ...string) *Server {
	tb.Helper()
	bin := Binary()
	if bin == "" {
		tb.Skip("versitygw is not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (.ci/run does)")
	}
	dir := tb.TempDir()
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(dir, b), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	port := servertest.FreePort(tb)
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir,
		Access: "lakeaccesskey0001", Secret: "lakesecretkey-0123456789"}
	cmd := exec.Command(bin, "--port", fmt.Sprintf("127.0.0.1:%d", port), "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.Access, "ROOT_SECRET_KEY="+s.Secret)
	out := &servertest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("versitygw did not start: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Throttle is a TCP proxy in front of a server that forwards uploads
// slowly while Slow is set, so that a test can stop a writer in the middle
// of a file.
type Throttle struct {
	ln       net.Listener
	target   string
	Slow     atomic.Bool
	uploaded atomic.Int64
}

// NewThrottle proxies to target (host:port), slow at first.
func NewThrottle(tb testing.TB, target string) *Throttle {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Throttle{ln: ln, target: strings.TrimPrefix(target, "http://")}
	p.Slow.Store(true)
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *Throttle) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { _, _ = io.Copy(c, s); c.Close() }()
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
			p.uploaded.Add(int64(n))
			if p.Slow.Load() {
				time.Sleep(20 * time.Millisecond) // ~800 KB/s
			}
		}
		if err != nil {
			return
		}
	}
}

// Endpoint is the proxy's URL.
func (p *Throttle) Endpoint() string { return "http://" + p.ln.Addr().String() }

// Uploaded counts the bytes forwarded to the server so far.
func (p *Throttle) Uploaded() int64 { return p.uploaded.Load() }
