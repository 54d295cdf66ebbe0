// Command auditctl reads an auditstore server from the command line:
//
//	auditctl events [flags] [filter=value ...]   list events (table or JSON), page by page or all
//	auditctl export -format parquet -o FILE [filter=value ...]   download an export, with progress
//	auditctl tail [flags] [filter=value ...]     follow new events as they arrive
//	auditctl quarantine list|replay ID...|discard ID...  what the server set aside (operator token; "all" for every entry)
//
// Filters are the query parameters of GET /v1/events, e.g.
// eventType=USER_LOGIN actorEmail=ada@example.com from=2026-11-01T00:00:00Z.
// The server and key come from -server/-key or AUDITCTL_SERVER/AUDITCTL_KEY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/auditstore/auditstore/client"
)

const usage = `usage: auditctl <command> [flags] [filter=value ...]

commands:
  events   list events (-o table|json, -limit, -page, -all)
  export   download events (-format parquet|arrow|csv|ndjson, -o FILE)
  tail     follow new events as they arrive
  quarantine list | replay ID...|all | discard ID...|all
           events ClickHouse refused for good, damaged log records
           (-key is then the operator token; one node at a time)

global flags (every command): -server URL (env AUDITCTL_SERVER, default
http://127.0.0.1:8080), -key KEY (env AUDITCTL_KEY, a read key).
Filters are GET /v1/events query parameters: eventType=USER_LOGIN ...
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "auditctl:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "auditctl:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// common holds the flags every command has.
type common struct {
	server, key string
}

func (c *common) register(fs *flag.FlagSet, getenv func(string) string) {
	def := getenv("AUDITCTL_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	fs.StringVar(&c.server, "server", def, "server URL (env AUDITCTL_SERVER)")
	fs.StringVar(&c.key, "key", getenv("AUDITCTL_KEY"), "API key with the read role (env AUDITCTL_KEY)")
}

func (c *common) client() (*client.Client, error) {
	if c.key == "" {
		return nil, usagef("no API key: give -key or set AUDITCTL_KEY")
	}
	u, err := url.Parse(c.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("-server %q: want a URL like http://127.0.0.1:8080", c.server)
	}
	cfg := client.DefaultConfig(c.server, c.key)
	cfg.UserAgent = "auditctl"
	return client.New(cfg)
}

// filters reads filter=value arguments into query parameters.
func filters(args []string) (url.Values, error) {
	q := url.Values{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usagef("filter %q: want name=value, e.g. eventType=USER_LOGIN", a)
		}
		q.Add(k, v)
	}
	return q, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, stderr *os.File) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	switch args[0] {
	case "events":
		return cmdEvents(ctx, args[1:], getenv, stdout, stderr)
	case "export":
		return cmdExport(ctx, args[1:], getenv, stdout, stderr)
	case "tail":
		return cmdTail(ctx, args[1:], getenv, stdout, stderr)
	case "quarantine":
		return cmdQuarantine(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", args[0])
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses fs and wraps its errors as usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
