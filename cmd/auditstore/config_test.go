package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigPrecedence(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		listen   string
		data     string
		ch       string
		database string
	}{
		{"defaults", nil, nil, "127.0.0.1:8080", "./data", "", "auditstore"},
		{"env", nil, map[string]string{"AUDITSTORE_LISTEN": "127.0.0.1:9999", "AUDITSTORE_CLICKHOUSE": "db:9000",
			"AUDITSTORE_CLICKHOUSE_DATABASE": "audit"}, "127.0.0.1:9999", "./data", "db:9000", "audit"},
		{"flag beats env", []string{"-listen", "127.0.0.1:7000", "-data", "/tmp/x"},
			map[string]string{"AUDITSTORE_LISTEN": "127.0.0.1:9999", "AUDITSTORE_DATA": "/env"}, "127.0.0.1:7000", "/tmp/x", "", "auditstore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig("serve", tt.args, env(tt.env), nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.Listen != tt.listen || c.DataDir != tt.data || c.ClickHouse.Addr != tt.ch || c.ClickHouse.Database != tt.database {
				t.Fatalf("got listen=%q data=%q clickhouse=%q db=%q, want %q %q %q %q",
					c.Listen, c.DataDir, c.ClickHouse.Addr, c.ClickHouse.Database, tt.listen, tt.data, tt.ch, tt.database)
			}
		})
	}
}

func TestConfigBoolFlagAlone(t *testing.T) {
	c, err := parseConfig("serve", []string{"-allow-private-destinations"}, env(nil), io.Discard)
	if err != nil || !c.AllowPrivate {
		t.Fatalf("bare -allow-private-destinations: %v %v, want true", c.AllowPrivate, err)
	}
	c, err = parseConfig("serve", nil, env(map[string]string{"AUDITSTORE_ALLOW_PRIVATE_DESTINATIONS": "true"}), io.Discard)
	if err != nil || !c.AllowPrivate {
		t.Fatalf("env: %v %v, want true", c.AllowPrivate, err)
	}
}

func TestConfigPlans(t *testing.T) {
	c, err := parseConfig("serve", nil, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]time.Duration{"free": 7 * 24 * time.Hour, "pro": 90 * 24 * time.Hour, "enterprise": 365 * 24 * time.Hour} {
		if got := c.Plans[name].Retention; got != want {
			t.Errorf("default plan %s retention=%s, want %s", name, got, want)
		}
	}
	c, err = parseConfig("serve", []string{"-plans", "trial=12h,pro=30d"}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Plans) != 2 || c.Plans["trial"].Retention != 12*time.Hour {
		t.Fatalf("plans=%v, want trial=12h and pro=30d", c.Plans)
	}
}

func TestConfigLimits(t *testing.T) {
	c, err := parseConfig("serve", []string{"-clickhouse-conns", "query=3,export=2", "-max-page-bytes", "1000"}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultPools
	want.Query, want.Export = 3, 2
	if c.Limits.Conns != want || c.ClickHouse.MaxOpenConns != want.Auth || c.Limits.MaxPageBytes != 1000 {
		t.Fatalf("pools=%+v auth conns=%d page bytes=%d, want %+v", c.Limits.Conns, c.ClickHouse.MaxOpenConns, c.Limits.MaxPageBytes, want)
	}
	if c.BodyReadTimeout != 30*time.Second || c.Ingest.BodyReadTimeout != c.BodyReadTimeout || c.Limits.MaxExports != 2 {
		t.Fatalf("defaults: body read %s (ingest %s), max exports %d", c.BodyReadTimeout, c.Ingest.BodyReadTimeout, c.Limits.MaxExports)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-plans", "pro"}, "want name=retention"},
		{[]string{"-plans", "pro=0d"}, "positive"},
		{[]string{"-plans", "Pro=1d"}, "must match"},
		{[]string{"-log-level", "loud"}, "-log-level"},
		{[]string{"-log-format", "xml"}, "-log-format"},
		{[]string{"-engine-tcp-port", "70000"}, "-engine-tcp-port"},
		{[]string{"-clickhouse-database", "a;DROP"}, "database name"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"-allow-private-destinations=maybe"}, "-allow-private-destinations"},
		{[]string{"-cursor-key", "short"}, "-cursor-key"},
		{[]string{"-max-events", "65536"}, "-max-events: at most 65535"},
		{[]string{"-clickhouse-conns", "query=0"}, "-clickhouse-conns"},
		{[]string{"-clickhouse-conns", "reads=4"}, "-clickhouse-conns"},
		{[]string{"-body-read-timeout", "10ms"}, "-body-read-timeout"},
		{[]string{"-max-queries-per-org", "0"}, "-max-queries-per-org"},
		{[]string{"-export-timeout", "soon"}, "-export-timeout"},
	} {
		_, err := parseConfig("serve", tt.args, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("args %v: err=%v, want it to contain %q", tt.args, err, tt.want)
		}
	}
}
