package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/auditstore/auditstore/client"
)

// cmdQuarantine lists, replays or discards what a server set aside: events
// ClickHouse refused for good and damaged write-ahead log records. It
// needs the operator token, and speaks to one node (each keeps its own).
func cmdQuarantine(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, stderr *os.File) error {
	fs := newFlagSet("quarantine", stderr)
	var c common
	c.register(fs, getenv)
	output := fs.String("o", "table", "output of list: table or json")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: auditctl quarantine [-server URL] [-key OPERATOR_TOKEN] list | replay ID...|all | discard ID...|all\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("quarantine: want list, replay ID... or discard ID... (or all)")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	verb := rest[0]
	switch {
	case verb == "list" && len(rest) == 1:
		if *output != "table" && *output != "json" {
			return usagef("-o %q: want table or json", *output)
		}
		return quarantineList(ctx, cl, *output, stdout)
	case (verb == "replay" || verb == "discard") && len(rest) >= 2:
		ids := rest[1:]
		if len(ids) == 1 && ids[0] == "all" {
			out, err := cl.Quarantine(ctx)
			if err != nil {
				return err
			}
			ids = ids[:0]
			for _, e := range out.Entries {
				if verb == "discard" || !e.Damaged {
					ids = append(ids, e.ID)
				}
			}
		}
		for _, id := range ids {
			if err := quarantineAct(ctx, cl, verb, id, stdout); err != nil {
				return err
			}
		}
		return nil
	}
	return usagef("quarantine: want list, replay ID... or discard ID... (or all), got %q", strings.Join(rest, " "))
}

// quarantineAct replays or discards one entry.
func quarantineAct(ctx context.Context, cl *client.Client, verb, id string, stdout io.Writer) error {
	var err error
	if verb == "replay" {
		_, err = cl.ReplayQuarantined(ctx, id)
	} else {
		err = cl.DiscardQuarantined(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, id, err)
	}
	if verb == "replay" {
		fmt.Fprintf(stdout, "replayed %s: its events are back in the write-ahead log (if ClickHouse refuses them again they return to the quarantine)\n", id)
	} else {
		fmt.Fprintf(stdout, "discarded %s\n", id)
	}
	return nil
}

func quarantineList(ctx context.Context, cl *client.Client, output string, stdout io.Writer) error {
	out, err := cl.Quarantine(ctx)
	if err != nil {
		return err
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(out.Entries) == 0 {
		fmt.Fprintf(stdout, "node %s: the quarantine is empty\n", out.Node)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSINCE\tEVENTS\tORGS\tREASON")
	for _, e := range out.Entries {
		events := fmt.Sprint(e.Events)
		if e.Damaged {
			events = "damaged"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.120s\n", e.ID, e.QuarantinedAt.Format(time.RFC3339), events,
			strings.Join(e.Orgs, ","), e.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "node %s: %d entries (auditctl quarantine replay ID | discard ID)\n", out.Node, len(out.Entries))
	return nil
}
