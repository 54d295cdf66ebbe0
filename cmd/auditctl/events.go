package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/auditstore/auditstore/client"
)

func cmdEvents(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, stderr *os.File) error {
	fs := newFlagSet("events", stderr)
	var c common
	c.register(fs, getenv)
	output := fs.String("o", "table", "output: table or json (one event per line)")
	limit := fs.Int("limit", 50, "events per page (1-1000)")
	pageNo := fs.Int("page", 1, "page number")
	all := fs.Bool("all", false, "follow the pages to the end (cursor paging)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return usagef("-o %q: want table or json", *output)
	}
	if *limit < 1 || *limit > 1000 {
		return usagef("-limit %d: want 1 to 1000", *limit)
	}
	if *pageNo < 1 {
		return usagef("-page %d: want 1 or more", *pageNo)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	q, err := filters(fs.Args())
	if err != nil {
		return err
	}
	opts := client.ListOptions{Filter: client.Filter{Params: q}, Limit: *limit}
	pr := newPrinter(*output, stdout)
	if *all {
		for e, err := range cl.All(ctx, opts) {
			if err != nil {
				return err
			}
			pr.print([]client.StoredEvent{e})
		}
		pr.flush()
		return nil
	}
	opts.Page = *pageNo
	p, err := cl.Events(ctx, opts)
	if err != nil {
		return err
	}
	pr.print(p.Events)
	pr.flush()
	if *output == "table" && p.Page != nil && p.Pages != nil && p.Total != nil {
		fmt.Fprintf(stdout, "\nPage %d of %d (%d total)\n", *p.Page, *p.Pages, *p.Total)
	}
	return nil
}

// printer writes events as an aligned table or as JSON lines.
type printer struct {
	json bool
	out  io.Writer
	tw   *tabwriter.Writer
	head bool
}

func newPrinter(format string, out io.Writer) *printer {
	return &printer{json: format == "json", out: out, tw: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)}
}

func (p *printer) print(events []client.StoredEvent) {
	for i := range events {
		e := &events[i]
		if p.json {
			_, _ = p.out.Write(append(append(json.RawMessage(nil), e.Raw...), '\n'))
			continue
		}
		if !p.head {
			fmt.Fprintln(p.tw, "TIME\tEVENT\tACTOR\tRESOURCE\tIP\tID")
			p.head = true
		}
		res := ""
		if e.Resource != nil {
			res = e.Resource.Type + ":" + e.Resource.ID
		}
		fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Timestamp.UTC().Format(time.RFC3339), e.Action.Type, actorName(e), res, e.IPAddress, e.ID)
	}
	if !p.json {
		p.tw.Flush()
	}
}

// actorName names who acted, from the identity fields products use.
func actorName(e *client.StoredEvent) string {
	for _, k := range []string{"email", "username", "userId", "serviceId", "identityId", "keyId", "name"} {
		if s, ok := e.Actor.Metadata[k].(string); ok && s != "" {
			return e.Actor.Type + ":" + s
		}
	}
	return e.Actor.Type
}

func (p *printer) flush() {
	if !p.json {
		p.tw.Flush()
	}
}
