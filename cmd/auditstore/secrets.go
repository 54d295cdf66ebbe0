package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// securityOptions are the settings of issue 13: secrets read from files,
// trusted proxies, and who may read /metrics. They join options at init.
var securityOptions = []option{
	{"admin-token-file", "AUDITSTORE_ADMIN_TOKEN_FILE", "", "file holding the operator token (preferred to -admin-token, which shows in ps)"},
	{"clickhouse-password-file", "AUDITSTORE_CLICKHOUSE_PASSWORD_FILE", "", "file holding the ClickHouse password (preferred to -clickhouse-password)"},
	{"stream-key-file", "AUDITSTORE_STREAM_KEY_FILE", "", "file holding the stream key (preferred to -stream-key)"},
	{"cursor-key-file", "AUDITSTORE_CURSOR_KEY_FILE", "", "file holding the cursor key (preferred to -cursor-key)"},
	{"trusted-proxies", "AUDITSTORE_TRUSTED_PROXIES", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed; empty trusts none (the client address is the connection's)"},
	{"metrics-listen", "AUDITSTORE_METRICS_LISTEN", "", "serve /metrics on this address only, without a token unless -metrics-token (empty: on -listen, with a token)"},
	{"metrics-token", "AUDITSTORE_METRICS_TOKEN", "", "bearer token for /metrics (empty: the operator token on -listen, none on -metrics-listen)"},
}

func init() { options = append(options, securityOptions...) }

// security is the parsed form of securityOptions.
type security struct {
	TrustedProxies []string // CIDRs; nil trusts no proxy
	MetricsListen  string
	MetricsToken   string
}

// secretFiles pairs each secret with the flag naming a file holding it.
var secretFiles = [][2]string{
	{"admin-token", "admin-token-file"},
	{"clickhouse-password", "clickhouse-password-file"},
	{"stream-key", "stream-key-file"},
	{"cursor-key", "cursor-key-file"},
}

// readSecretFiles replaces each secret given as a file by the file's
// content (without its trailing newline); giving both is an error.
func readSecretFiles(vals map[string]*string) error {
	for _, p := range secretFiles {
		path := *vals[p[1]]
		if path == "" {
			continue
		}
		if *vals[p[0]] != "" {
			return fmt.Errorf("-%s and -%s both given (flag or environment): keep one", p[0], p[1])
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("-%s: %w", p[1], err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return fmt.Errorf("-%s: %s is empty", p[1], path)
		}
		*vals[p[0]] = v
	}
	return nil
}

// parseSecurity reads the proxy and metrics settings.
func parseSecurity(vals map[string]*string) (security, error) {
	s := security{MetricsListen: *vals["metrics-listen"], MetricsToken: *vals["metrics-token"]}
	for _, c := range strings.Split(*vals["trusted-proxies"], ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return s, fmt.Errorf("-trusted-proxies: %q is not a CIDR (e.g. 10.0.0.0/8) nor an address", c)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		s.TrustedProxies = append(s.TrustedProxies, p.String())
	}
	if s.MetricsToken != "" && len(s.MetricsToken) < 16 {
		return s, fmt.Errorf("-metrics-token: must be at least 16 characters")
	}
	return s, nil
}
