package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// FullPolicy is what Send does when the in-memory queue is full.
type FullPolicy int

const (
	// Block waits for room (or for the context to end).
	Block FullPolicy = iota
	// Fail returns ErrQueueFull at once, accepting none of the events.
	Fail
)

// Compression of the request bodies.
const (
	Gzip = "gzip"
	Zstd = "zstd"
	None = "none"
)

var (
	// ErrQueueFull is returned by Send under the Fail policy when the
	// queue has no room for all the events of the call.
	ErrQueueFull = errors.New("client: producer queue is full")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("client: producer is closed")
)

// ProducerConfig configures a Producer. The zero value of a field means
// its default (DefaultProducerConfig).
type ProducerConfig struct {
	// BatchEvents, BatchBytes and FlushInterval bound a request: it is
	// sent when it holds BatchEvents events or BatchBytes bytes of JSON,
	// or FlushInterval after its first event was queued.
	BatchEvents   int
	BatchBytes    int
	FlushInterval time.Duration
	// Compression is Gzip, Zstd or None.
	Compression string
	// QueueEvents bounds the events held in memory, those being sent
	// included; WhenFull says what Send does beyond it.
	QueueEvents int
	WhenFull    FullPolicy
	// Senders is how many requests may be in flight at once.
	Senders int
	// MinBackoff and MaxBackoff bound the wait between retries (full
	// jitter, doubling); a Retry-After from the server takes precedence.
	MinBackoff, MaxBackoff time.Duration
	// SpoolDir, when set, is a directory where Send appends the events
	// (fsynced before it returns) until the server acknowledges them; a
	// producer started on the same directory sends what it holds.
	SpoolDir string
	// SpoolSegmentBytes is the size at which a spool file is closed and a
	// new one started; a closed file is deleted once all its events are
	// acknowledged.
	SpoolSegmentBytes int64
	// Hooks are called on what happens (metrics); nil fields are skipped.
	Hooks Hooks
	// Logger receives warnings (retries, refused events); nil: none.
	Logger *slog.Logger
}

// Hooks are callbacks for metrics. They run on the producer's goroutines
// and must be quick and safe for concurrent use.
type Hooks struct {
	// Queued: Send accepted n events.
	Queued func(n int)
	// Delivered: a request of n events (bytes as sent) was acknowledged
	// after the given time, retries included.
	Delivered func(n, bytes int, took time.Duration)
	// Retry: a request failed temporarily and is retried after wait.
	Retry func(attempt int, wait time.Duration, err error)
	// Rejected: the server refused events (400, 413, other 4xx); they are
	// not retried. This is how events handed to Send report refusals.
	Rejected func(err *RejectedError)
}

// DefaultProducerConfig returns the defaults: batches of 1,000 events or
// 4 MiB every 200 ms, gzip, a queue of 100,000 events that blocks when
// full, 2 senders, backoff 100 ms to 30 s, no spool.
func DefaultProducerConfig() ProducerConfig {
	return ProducerConfig{BatchEvents: 1000, BatchBytes: 4 << 20, FlushInterval: 200 * time.Millisecond,
		Compression: Gzip, QueueEvents: 100_000, WhenFull: Block, Senders: 2,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second, SpoolSegmentBytes: 16 << 20}
}

func (c ProducerConfig) withDefaults() ProducerConfig {
	d := DefaultProducerConfig()
	if c.BatchEvents <= 0 {
		c.BatchEvents = d.BatchEvents
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = d.BatchBytes
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.Compression == "" {
		c.Compression = d.Compression
	}
	if c.QueueEvents <= 0 {
		c.QueueEvents = d.QueueEvents
	}
	if c.Senders <= 0 {
		c.Senders = d.Senders
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = d.MinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.SpoolSegmentBytes <= 0 {
		c.SpoolSegmentBytes = d.SpoolSegmentBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c ProducerConfig) Validate() error {
	c = c.withDefaults()
	switch c.Compression {
	case Gzip, Zstd, None:
	default:
		return fmt.Errorf("client: compression %q: want gzip, zstd or none", c.Compression)
	}
	if c.WhenFull != Block && c.WhenFull != Fail {
		return fmt.Errorf("client: unknown queue policy %d", c.WhenFull)
	}
	if c.QueueEvents < c.BatchEvents {
		return fmt.Errorf("client: queue of %d events is smaller than a batch (%d)", c.QueueEvents, c.BatchEvents)
	}
	if c.MinBackoff > c.MaxBackoff {
		return fmt.Errorf("client: min backoff %s above max backoff %s", c.MinBackoff, c.MaxBackoff)
	}
	return nil
}

// item is one queued event.
type item struct {
	raw   []byte
	id    string
	index int      // position in its Send call; -1 for events from the spool
	call  *call    // the SendWait call waiting for it, or nil
	seg   *segment // its spool file, or nil
}

// batch is one request's events.
type batch struct {
	items []*item
	done  chan struct{}
}

// Producer sends events in the background. It is safe for concurrent use.
type Producer struct {
	c     *Client
	cfg   ProducerConfig
	spool *spool
	enc   *encoder

	mu      sync.Mutex
	closed  bool
	used    int           // events held: queued or being sent
	space   chan struct{} // closed when used decreases
	pending []*item       // not yet in a batch
	pbytes  int
	flight  map[*batch]struct{}
	sends   sync.WaitGroup // Send calls between reserve and push
	unsent  atomic.Int64   // events given up on at Close

	wake     chan struct{}
	flushReq chan chan []chan struct{}
	stop     chan struct{}
	batches  chan *batch
	senders  sync.WaitGroup
	loopDone chan struct{}
	requeued chan struct{}   // closed once the spool's events are queued
	abort    context.Context // cancelled when Close gives up
	cancel   context.CancelFunc
}

// NewProducer starts a producer sending through c. With a spool
// directory, the events it holds from an earlier run are queued again.
func (c *Client) NewProducer(cfg ProducerConfig) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	enc, err := newEncoder(cfg.Compression)
	if err != nil {
		return nil, err
	}
	p := &Producer{c: c, cfg: cfg, enc: enc, space: make(chan struct{}), flight: map[*batch]struct{}{},
		wake: make(chan struct{}, 1), flushReq: make(chan chan []chan struct{}), stop: make(chan struct{}),
		batches: make(chan *batch), loopDone: make(chan struct{}), requeued: make(chan struct{})}
	p.abort, p.cancel = context.WithCancel(context.Background())
	var recovered []*item
	if cfg.SpoolDir != "" {
		if p.spool, recovered, err = openSpool(cfg.SpoolDir, cfg.SpoolSegmentBytes, cfg.Logger); err != nil {
			return nil, err
		}
	}
	for range cfg.Senders {
		p.senders.Add(1)
		go p.sender()
	}
	go p.loop()
	if len(recovered) > 0 {
		cfg.Logger.Info("auditstore client: sending events kept in the spool", "events", len(recovered), "dir", cfg.SpoolDir)
	}
	go p.requeue(recovered)
	return p, nil
}

// Send queues events for delivery and returns once they are queued (and,
// with a spool, written and fsynced to it). Events without an ID or
// Timestamp get one here, so that retries are idempotent. Refusals by
// the server are reported to Hooks.Rejected; use SendWait to wait for the
// server's answer instead.
func (p *Producer) Send(ctx context.Context, events ...Event) error {
	_, err := p.enqueue(ctx, events, nil)
	return err
}

// SendWait is Send that waits until the server acknowledged or refused
// every one of the events. It returns a *RejectedError naming each refused
// event by its index in events.
func (p *Producer) SendWait(ctx context.Context, events ...Event) error {
	cl := &call{left: len(events), done: make(chan struct{})}
	if len(events) == 0 {
		return nil
	}
	if _, err := p.enqueue(ctx, events, cl); err != nil {
		return err
	}
	select {
	case <-cl.done:
		return cl.result()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Producer) enqueue(ctx context.Context, events []Event, cl *call) ([]*item, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if len(events) > p.cfg.QueueEvents {
		return nil, fmt.Errorf("client: %d events in one call; the queue holds %d", len(events), p.cfg.QueueEvents)
	}
	items := make([]*item, len(events))
	now := time.Now().UTC()
	for i, e := range events {
		if e.ID == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("client: event id: %w", err)
			}
			e.ID = id.String()
		}
		if e.Timestamp.IsZero() {
			e.Timestamp = now
		}
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("client: event %d: %w", i, err)
		}
		items[i] = &item{raw: raw, id: e.ID, index: i, call: cl}
	}
	if err := p.reserve(ctx, len(items), false); err != nil {
		return nil, err
	}
	defer p.sends.Done()
	if p.spool != nil {
		if err := p.spool.append(items); err != nil {
			p.release(len(items))
			return nil, err
		}
	}
	p.push(items)
	if h := p.cfg.Hooks.Queued; h != nil {
		h(len(items))
	}
	return items, nil
}

// requeue queues the events recovered from the spool, waiting for room
// (Close waits for it too).
func (p *Producer) requeue(items []*item) {
	defer close(p.requeued)
	for len(items) > 0 {
		n := min(len(items), p.cfg.BatchEvents)
		if err := p.reserve(p.abort, n, true); err != nil {
			p.unsent.Add(int64(len(items))) // closed: they stay in the spool
			return
		}
		p.push(items[:n])
		p.sends.Done()
		items = items[n:]
	}
}

// reserve takes room for n events in the queue, per the full policy; on
// success the caller pushes them and then calls p.sends.Done.
func (p *Producer) reserve(ctx context.Context, n int, spooled bool) error {
	for {
		p.mu.Lock()
		if p.closed && !spooled {
			p.mu.Unlock()
			return ErrClosed
		}
		if p.used+n <= p.cfg.QueueEvents {
			p.used += n
			p.sends.Add(1)
			p.mu.Unlock()
			return nil
		}
		space := p.space
		p.mu.Unlock()
		if p.cfg.WhenFull == Fail {
			return ErrQueueFull
		}
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *Producer) release(n int) {
	p.mu.Lock()
	p.used -= n
	close(p.space)
	p.space = make(chan struct{})
	p.mu.Unlock()
}

func (p *Producer) push(items []*item) {
	p.mu.Lock()
	p.pending = append(p.pending, items...)
	for _, it := range items {
		p.pbytes += len(it.raw) + 1
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// loop cuts the queue into batches: full ones at once, the rest after
// FlushInterval, everything on Flush and Close.
func (p *Producer) loop() {
	defer close(p.loopDone)
	defer close(p.batches)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		force, last := false, false
		var reply chan []chan struct{}
		select {
		case <-p.wake:
		case <-timer.C:
			armed, force = false, true
		case reply = <-p.flushReq:
			force = true
		case <-p.stop:
			force, last = true, true
		}
		p.cut(force)
		if reply != nil {
			reply <- p.inFlight()
		}
		if last {
			return
		}
		p.mu.Lock()
		n := len(p.pending)
		p.mu.Unlock()
		switch {
		case n > 0 && !armed:
			timer.Reset(p.cfg.FlushInterval)
			armed = true
		case n == 0 && armed:
			timer.Stop()
			armed = false
		}
	}
}

// cut hands full batches to the senders, and with force the remainder.
func (p *Producer) cut(force bool) {
	for {
		p.mu.Lock()
		full := len(p.pending) >= p.cfg.BatchEvents || p.pbytes >= p.cfg.BatchBytes
		if len(p.pending) == 0 || (!full && !force) {
			p.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(p.pending) && n < p.cfg.BatchEvents {
			sz := len(p.pending[n].raw) + 1
			if n > 0 && size+sz > p.cfg.BatchBytes {
				break
			}
			size += sz
			n++
		}
		b := &batch{items: append([]*item(nil), p.pending[:n]...), done: make(chan struct{})}
		p.pending = append(p.pending[:0:0], p.pending[n:]...)
		p.pbytes -= size
		p.flight[b] = struct{}{}
		p.mu.Unlock()
		p.batches <- b
	}
}

func (p *Producer) inFlight() []chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	dones := make([]chan struct{}, 0, len(p.flight))
	for b := range p.flight {
		dones = append(dones, b.done)
	}
	return dones
}

func (p *Producer) sender() {
	defer p.senders.Done()
	for b := range p.batches {
		p.deliver(b.items)
		p.mu.Lock()
		delete(p.flight, b)
		p.mu.Unlock()
		p.release(len(b.items))
		close(b.done)
	}
}

// Flush sends what is queued now and waits until the server acknowledged
// or refused it.
func (p *Producer) Flush(ctx context.Context) error {
	reply := make(chan []chan struct{}, 1)
	select {
	case p.flushReq <- reply:
	case <-p.loopDone:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, d := range <-reply {
		select {
		case <-d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close stops accepting events, sends what is queued and waits for the
// answers. When ctx ends first, it stops retrying: the events not yet
// acknowledged are lost without a spool, and stay in the spool with one.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	close(p.space) // wake blocked Sends: they see closed
	p.space = make(chan struct{})
	p.mu.Unlock()
	select {
	case <-p.requeued:
	case <-ctx.Done():
		p.cancel()
		<-p.requeued
	}
	p.sends.Wait() // Sends that reserved room push before the last cut
	close(p.stop)
	done := make(chan struct{})
	go func() { p.senders.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		p.cancel()
		<-done
		err = fmt.Errorf("client: close: %w", ctx.Err())
	}
	p.cancel()
	left := p.unsent.Load()
	if left > 0 && err == nil {
		err = fmt.Errorf("client: close: %d events were not delivered", left)
	} else if left > 0 {
		err = fmt.Errorf("%w: %d events were not delivered", err, left)
	}
	if p.spool != nil {
		if serr := p.spool.close(); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}
