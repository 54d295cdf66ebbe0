// Command auditstore is the audit-log store server.
//
//	auditstore serve    run the HTTP server (runs migrations first)
//	auditstore migrate  apply database migrations and exit
//	auditstore fetch    download the embedded ClickHouse engine into the cache
//	auditstore version  print versions
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/auditstore/auditstore/internal/engine"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: auditstore <command> [flags]

commands:
  serve     run the server (applies migrations first)
  migrate   apply database migrations and exit
  fetch     download the embedded ClickHouse engine into its cache and exit
  version   print the version

Run 'auditstore <command> -h' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "auditstore:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, stderr *os.File) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve", "migrate", "fetch":
		cfg, err := parseConfig(cmd, rest, getenv, stderr)
		if err != nil {
			return err
		}
		log := cfg.logger(stderr)
		switch cmd {
		case "serve":
			return serve(ctx, cfg, log, stderr)
		case "migrate":
			return migrateOnly(ctx, cfg, log, stderr)
		default:
			lib, err := engine.Fetch(ctx, cfg.EngineCache, progressPrinter(stderr))
			if err == nil {
				fmt.Fprintln(stdout, lib)
			}
			return err
		}
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "auditstore %s (embedded engine %s@%s)\n", version, engine.Package, engine.Version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
