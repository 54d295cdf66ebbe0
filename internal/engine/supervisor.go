package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Supervisor keeps an embedded engine running: when the engine dies, it
// reports it (Err) and starts it again on the same ports and data, with a
// backoff between attempts, until Stop.
type Supervisor struct {
	cfg Config

	mu       sync.Mutex
	cur      *Engine
	down     error // why the engine is not running, while it is not
	restarts int
	stopping bool

	quit chan struct{}
	done chan struct{}
}

// Restart backoff bounds.
const (
	restartMin = time.Second
	restartMax = 30 * time.Second
)

// StartSupervised starts the engine (failing if the first start fails)
// and supervises it.
func StartSupervised(ctx context.Context, cfg Config) (*Supervisor, error) {
	e, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Later starts reuse the ports the first one got, so clients' addresses
	// stay valid.
	cfg.TCPPort = port(e.Addr())
	cfg.HTTPPort = port(e.HTTPAddr())
	s := &Supervisor{cfg: cfg, cur: e, quit: make(chan struct{}), done: make(chan struct{})}
	go s.watch()
	return s, nil
}

func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (s *Supervisor) watch() {
	defer close(s.done)
	backoff := restartMin
	for {
		s.mu.Lock()
		e := s.cur
		s.mu.Unlock()
		select {
		case <-s.quit:
			return
		case <-e.Done():
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		s.down = e.Err()
		if s.down == nil {
			s.down = errors.New("embedded clickhouse exited")
		}
		s.mu.Unlock()
		for {
			s.cfg.Logger.Warn("restarting embedded clickhouse", "in", backoff)
			select {
			case <-s.quit:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, restartMax)
			ne, err := Start(context.Background(), s.cfg)
			if err != nil {
				s.cfg.Logger.Error("embedded clickhouse did not restart", "error", err)
				s.mu.Lock()
				s.down = fmt.Errorf("embedded clickhouse is down and did not restart: %w", err)
				s.mu.Unlock()
				continue
			}
			s.mu.Lock()
			if s.stopping {
				s.mu.Unlock()
				_ = ne.Stop(context.Background())
				return
			}
			s.cur, s.down = ne, nil
			s.restarts++
			s.mu.Unlock()
			s.cfg.Logger.Info("embedded clickhouse restarted")
			backoff = restartMin
			break
		}
	}
}

// Addr is the native protocol address (stable across restarts).
func (s *Supervisor) Addr() string {
	return net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.TCPPort))
}

// HTTPAddr is the HTTP address (stable across restarts).
func (s *Supervisor) HTTPAddr() string {
	return net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.HTTPPort))
}

// Err is nil while the engine runs; otherwise it says why it is down.
func (s *Supervisor) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down != nil {
		return s.down
	}
	return s.cur.Err()
}

// Restarts counts the restarts so far.
func (s *Supervisor) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// PID is the process id of the current engine.
func (s *Supervisor) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.cmd.Process.Pid
}

// Stop stops supervising and stops the engine.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return nil
	}
	s.stopping = true
	e := s.cur
	s.mu.Unlock()
	close(s.quit)
	<-s.done
	return e.Stop(ctx)
}
