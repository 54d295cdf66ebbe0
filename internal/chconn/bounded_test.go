package chconn

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns a client connection wrapped as open wraps it, with the
// given limit, and the server's end.
func tcpPair(t *testing.T, limit time.Duration) (*boundedWrites, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); srv.Close() })
	return &boundedWrites{Conn: c, limit: limit}, srv
}

// TestWriteToAServerThatStopsReadingFails: a peer that takes the
// connection but never reads fills the socket's buffers; the write then
// fails after the limit instead of waiting for TCP to give up.
func TestWriteToAServerThatStopsReadingFails(t *testing.T) {
	c, _ := tcpPair(t, 300*time.Millisecond)
	if err := writeWithin(c, 64<<20, 10*time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a peer that does not read: %v, want a deadline error", err)
	}
}

// writeWithin writes n bytes (64 MiB is more than the kernel buffers on
// both ends hold) and returns the write's error, or a test failure of its
// own when the write is still blocked after wait.
func writeWithin(c net.Conn, n int, wait time.Duration) error {
	done := make(chan error, 1)
	go func() { _, err := c.Write(make([]byte, n)); done <- err }()
	select {
	case err := <-done:
		return err
	case <-time.After(wait):
		c.Close()
		return errors.New("the write was still blocked")
	}
}

// TestWriteBoundKeepsTheDriversEarlierDeadline: a deadline the driver set
// that comes before the limit still applies; once cleared, the limit alone.
func TestWriteBoundKeepsTheDriversEarlierDeadline(t *testing.T) {
	c, _ := tcpPair(t, time.Hour)
	if err := c.SetDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := writeWithin(c, 64<<20, 10*time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past the driver's deadline: %v, want a deadline error", err)
	}

	// Cleared, with a peer that reads: the write goes through.
	c2, srv2 := tcpPair(t, time.Hour)
	if err := c2.SetDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c2.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, srv2) }()
	if err := writeWithin(c2, 8<<20, 10*time.Second); err != nil {
		t.Fatalf("write to a reading peer after the deadline was cleared: %v", err)
	}
}

// TestClosedPeerIsSeenThroughTheWrapper: the driver finds a pooled
// connection that the server closed (a restarted ClickHouse) by reading the
// socket without blocking through syscall.Conn; the wrapper must let it,
// or the next statement fails on the dead connection.
func TestClosedPeerIsSeenThroughTheWrapper(t *testing.T) {
	c, srv := tcpPair(t, time.Hour)
	var conn net.Conn = c
	sc, ok := conn.(syscall.Conn)
	if !ok {
		t.Fatal("the wrapped connection does not expose its socket (syscall.Conn)")
	}
	probe := func() (n int, err error) {
		raw, err := sc.SyscallConn()
		if err != nil {
			return 0, err
		}
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			var b [1]byte
			n, rerr = syscall.Read(int(fd), b[:])
			return true
		}); err != nil {
			return 0, err
		}
		return n, rerr
	}
	if _, err := probe(); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("probe of an open, idle connection: %v, want EAGAIN", err)
	}
	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := probe()
		if n == 0 && err == nil {
			return // end of stream: the driver drops the connection
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe after the peer closed: n=%d err=%v, want end of stream", n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
