package flow

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
)

type testBatch struct {
	n    int
	next uint64
}

func (b testBatch) Empty() bool  { return b.n == 0 }
func (b testBatch) Next() uint64 { return b.next }

// log records the calls of a pass in order.
type log []string

type src struct {
	l   *log
	b   testBatch
	err error
}

func (s src) Read(_ context.Context, after, upto uint64) (testBatch, error) {
	*s.l = append(*s.l, "read")
	return s.b, s.err
}

type sink struct {
	l   *log
	err error
}

func (s sink) Deliver(context.Context, testBatch) error {
	*s.l = append(*s.l, "deliver")
	return s.err
}

type cur struct {
	l   *log
	pos uint64
}

func (c *cur) Begin(context.Context, testBatch) error {
	*c.l = append(*c.l, "begin")
	return nil
}

func (c *cur) Advance(_ context.Context, b testBatch) error {
	*c.l = append(*c.l, "advance")
	c.pos = b.next
	return nil
}

func TestPass(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name      string
		b         testBatch
		readErr   error
		sendErr   error
		want      Result
		stage     Stage
		calls     []string
		wantAfter uint64
	}{
		{name: "delivered", b: testBatch{n: 3, next: 7}, want: Delivered, calls: []string{"read", "begin", "deliver", "advance"}, wantAfter: 7},
		{name: "empty skipped", b: testBatch{next: 9}, want: Skipped, calls: []string{"read", "advance"}, wantAfter: 9},
		{name: "nothing yet", b: testBatch{n: 1, next: 5}, want: Idle, calls: []string{"read"}, wantAfter: 5},
		{name: "read fails", readErr: boom, want: Idle, stage: StageRead, calls: []string{"read"}, wantAfter: 5},
		{name: "deliver fails: the cursor stays", b: testBatch{n: 3, next: 7}, sendErr: boom, want: Idle, stage: StageDeliver,
			calls: []string{"read", "begin", "deliver"}, wantAfter: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l log
			c := &cur{l: &l, pos: 5}
			_, res, err := Pass[testBatch](context.Background(), src{&l, tc.b, tc.readErr}, sink{&l, tc.sendErr}, c, 5, 10)
			if res != tc.want {
				t.Errorf("result=%d, want %d", res, tc.want)
			}
			var fe *Error
			switch {
			case tc.stage == "" && err != nil:
				t.Errorf("err=%v, want none", err)
			case tc.stage != "" && (!errors.As(err, &fe) || fe.Stage != tc.stage || !errors.Is(err, boom)):
				t.Errorf("err=%v, want a %s error wrapping boom", err, tc.stage)
			}
			if !slices.Equal(l, tc.calls) {
				t.Errorf("calls=%v, want %v", l, tc.calls)
			}
			if c.pos != tc.wantAfter {
				t.Errorf("cursor=%d, want %d", c.pos, tc.wantAfter)
			}
		})
	}
}

type runner struct{ running *atomic.Int32 }

func (r runner) Run(ctx context.Context) {
	r.running.Add(1)
	defer r.running.Add(-1)
	<-ctx.Done()
}

func TestPoolSync(t *testing.T) {
	var running atomic.Int32
	var p Pool[runner]
	var started, kept, gone []string
	sync := func(ids ...string) {
		p.Sync(context.Background(), ids,
			func(id string) runner { started = append(started, id); return runner{&running} },
			func(id string, _ runner) { kept = append(kept, id) },
			func(id string) { gone = append(gone, id) })
	}
	sync("a", "b")
	sync("b", "c")
	slices.Sort(gone)
	if !slices.Equal(started, []string{"a", "b", "c"}) || !slices.Equal(kept, []string{"b"}) || !slices.Equal(gone, []string{"a"}) {
		t.Fatalf("started=%v kept=%v gone=%v, want [a b c] [b] [a]", started, kept, gone)
	}
	if _, ok := p.Get("a"); ok {
		t.Error("a still running after it left")
	}
	if _, ok := p.Get("c"); !ok {
		t.Error("c not running")
	}
	p.Stop()
	if n := running.Load(); n != 0 {
		t.Errorf("running=%d after Stop, want 0", n)
	}
}
