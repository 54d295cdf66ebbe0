package main

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/auditstore/auditstore/client"
)

func cmdTail(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, stderr *os.File) error {
	fs := newFlagSet("tail", stderr)
	var c common
	c.register(fs, getenv)
	output := fs.String("o", "table", "output: table or json (one event per line)")
	interval := fs.Duration("interval", 2*time.Second, "how often to ask for new events")
	overlap := fs.Duration("overlap", time.Minute, "how far back each poll looks again, for events that arrive late")
	since := fs.Duration("since", 0, "start with the events of this long ago (default: only new ones)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return usagef("-o %q: want table or json", *output)
	}
	if *interval < 100*time.Millisecond || *overlap < 0 || *since < 0 {
		return usagef("-interval must be at least 100ms; -overlap and -since must not be negative")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	q, err := filters(fs.Args())
	if err != nil {
		return err
	}
	for _, p := range []string{"from", "sort", "order", "cursor", "page", "limit"} {
		if q.Has(p) {
			return usagef("tail sets %q itself; give only filters", p)
		}
	}
	pr := newPrinter(*output, stdout)
	start := time.Now().Add(-*since) // nothing older is shown
	from, high := start, start
	seen := map[string]time.Time{} // ids printed, by timestamp, within the overlap
	for {
		opts := client.ListOptions{Filter: client.Filter{Params: q, From: from}, Sort: "timestamp", Order: "asc", Limit: 1000}
		for {
			p, err := cl.Events(ctx, opts)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			var fresh []client.StoredEvent
			for _, e := range p.Events {
				if _, dup := seen[e.ID]; !dup && !e.Timestamp.Before(start) {
					seen[e.ID] = e.Timestamp
					fresh = append(fresh, e)
				}
				if e.Timestamp.After(high) {
					high = e.Timestamp
				}
			}
			pr.print(fresh)
			if p.NextCursor == "" {
				break
			}
			opts.Cursor = p.NextCursor
		}
		// Look again from a little before the newest event: late arrivals
		// within the overlap are shown once, thanks to seen.
		from = high.Add(-*overlap)
		for id, ts := range seen {
			if ts.Before(from) {
				delete(seen, id)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}
