package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/auditstore/auditstore/client"
)

func cmdExport(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, stderr *os.File) error {
	fs := newFlagSet("export", stderr)
	var c common
	c.register(fs, getenv)
	format := fs.String("format", "parquet", "parquet, arrow, csv or ndjson")
	out := fs.String("o", "", "file to write (required; - for standard output)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch *format {
	case "parquet", "arrow", "csv", "ndjson":
	default:
		return usagef("-format %q: want parquet, arrow, csv or ndjson", *format)
	}
	if *out == "" {
		return usagef("-o is required: the file to write, or - for standard output")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	q, err := filters(fs.Args())
	if err != nil {
		return err
	}
	// How many rows to expect, for the progress line (a terminal only).
	var expect int = -1
	tty := isTerminal(stderr)
	if tty {
		p, err := cl.Events(ctx, client.ListOptions{Filter: client.Filter{Params: q}, Limit: 1})
		if err != nil {
			return err
		}
		if p.Total != nil {
			expect = int(*p.Total)
		}
	}
	body, err := cl.Export(ctx, *format, client.Filter{Params: q})
	if err != nil {
		return err
	}
	defer body.Close()

	var w io.Writer = stdout
	var tmp *os.File
	if *out != "-" {
		// Write beside the target and rename at the end: a failed download
		// never leaves a file that looks complete.
		tmp, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".part-*")
		if err != nil {
			return fmt.Errorf("create %s: %w", *out, err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	prog := &progress{out: stderr, tty: tty, expect: expect, lines: *format == "csv" || *format == "ndjson",
		header: *format == "csv", start: time.Now()}
	n, err := io.Copy(io.MultiWriter(w, prog), body)
	prog.done()
	if err != nil {
		return fmt.Errorf("download broke off after %d bytes: %w (nothing was written to %s)", n, err, *out)
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
		fmt.Fprintf(stderr, "wrote %s: %s in %s\n", *out, prog.summary(), time.Since(prog.start).Round(time.Millisecond))
	}
	return nil
}

// progress counts bytes (and lines, for the text formats) and, on a
// terminal, redraws one line: rows, bytes and rate.
type progress struct {
	out    *os.File
	tty    bool
	expect int
	lines  bool
	header bool
	start  time.Time
	bytes  int64
	rows   int64
	last   time.Time
}

func (p *progress) Write(b []byte) (int, error) {
	p.bytes += int64(len(b))
	if p.lines {
		p.rows += int64(bytes.Count(b, []byte{'\n'}))
	}
	if p.tty && time.Since(p.last) > 200*time.Millisecond {
		p.last = time.Now()
		fmt.Fprintf(p.out, "\r%s   ", p.summary())
	}
	return len(b), nil
}

func (p *progress) summary() string {
	secs := max(time.Since(p.start).Seconds(), 0.001)
	rows := ""
	switch {
	case p.lines:
		n := p.rows
		if p.header && n > 0 {
			n--
		}
		rows = strconv.FormatInt(n, 10) + " rows"
		if p.expect >= 0 {
			rows += " of ~" + strconv.Itoa(p.expect)
		}
		rows += fmt.Sprintf(" (%.0f rows/s), ", float64(n)/secs)
	case p.expect >= 0:
		rows = "~" + strconv.Itoa(p.expect) + " rows, "
	}
	return fmt.Sprintf("%s%.1f MB (%.1f MB/s)", rows, float64(p.bytes)/1e6, float64(p.bytes)/1e6/secs)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprint(p.out, "\r\033[K")
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
