package chconn

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

// TestCloseWithUnreadBytesDoesNotReset: the server sent bytes the client
// never read; closing the client's end must reach the server as an end of
// stream, not as a reset (which a plain close sends, and on which the
// embedded engine has been seen to abort).
func TestCloseWithUnreadBytesDoesNotReset(t *testing.T) {
	for _, tc := range []struct {
		name      string
		close     func(c *boundedWrites) error
		wantReset bool
	}{
		{"plain close (the kernel's reset, for contrast)", func(c *boundedWrites) error { return c.Conn.Close() }, true},
		{"Close", (*boundedWrites).Close, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := tcpPair(t, time.Second)
			if _, err := srv.Write([]byte("a packet the client does not read")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // the bytes are in the client's receive buffer
			// The server, as ClickHouse does, closes its side when the
			// client's stream ends.
			read := make(chan error, 1)
			go func() {
				_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err := srv.Read(make([]byte, 1))
				srv.Close()
				read <- err
			}()
			start := time.Now()
			if err := tc.close(c); err != nil {
				t.Fatalf("close: %v", err)
			}
			took := time.Since(start)
			err := <-read
			reset := errors.Is(err, syscall.ECONNRESET)
			if reset != tc.wantReset || (!reset && err != io.EOF) {
				t.Fatalf("the server read %v after the client closed, want reset=%v", err, tc.wantReset)
			}
			if !tc.wantReset && took >= closeDrain {
				t.Errorf("Close took %s with a server that closes at once; closeDrain is %s", took, closeDrain)
			}
		})
	}
}

// TestCloseIsBoundedWhenTheServerKeepsSending: a server that never closes
// its side and keeps sending holds Close for closeDrain at most.
func TestCloseIsBoundedWhenTheServerKeepsSending(t *testing.T) {
	c, srv := tcpPair(t, time.Second)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := srv.Write(buf); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if took := time.Since(start); took > closeDrain+2*time.Second {
		t.Fatalf("Close took %s against a server that keeps sending, want about %s", took, closeDrain)
	}
}
