package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSecretsFromFiles: each secret may come from a file (flag or
// AUDITSTORE_*_FILE), without its trailing newline; a secret given both
// ways, an unreadable or empty file are errors.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	admin := write("admin", "admin-token-from-file-0123\n")
	pw := write("pw", "ch pass word\r\n")
	sk := write("sk", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n")
	ck := write("ck", "cursor-key-from-a-file-0123456789abcdef")
	c, err := parseConfig("serve", []string{"-admin-token-file", admin, "-clickhouse-password-file", pw, "-stream-key-file", sk},
		env(map[string]string{"AUDITSTORE_CURSOR_KEY_FILE": ck}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "admin-token-from-file-0123" || c.ClickHouse.Password != "ch pass word" ||
		c.StreamKey != "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" || string(c.CursorKey) != "cursor-key-from-a-file-0123456789abcdef" {
		t.Fatalf("secrets from files: admin %q password %q stream %q cursor %q", c.AdminToken, c.ClickHouse.Password, c.StreamKey, c.CursorKey)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-admin-token-file", admin, "-admin-token", "admin-token-on-the-command-line"}, nil, "both given"},
		{[]string{"-admin-token-file", admin}, map[string]string{"AUDITSTORE_ADMIN_TOKEN": "admin-token-in-the-environment"}, "both given"},
		{[]string{"-clickhouse-password-file", filepath.Join(dir, "missing")}, nil, "-clickhouse-password-file"},
		{[]string{"-stream-key-file", write("empty", "\n")}, nil, "is empty"},
		{[]string{"-admin-token-file", write("short", "short\n")}, nil, "-admin-token: must be at least 16"},
		{[]string{"-trusted-proxies", "10.0.0.0/8,not-a-cidr"}, nil, "-trusted-proxies"},
		{[]string{"-metrics-token", "short"}, nil, "-metrics-token"},
	} {
		_, err := parseConfig("serve", tt.args, env(tt.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("args %v env %v: err=%v, want it to contain %q", tt.args, tt.env, err, tt.want)
		}
	}
}

func TestTrustedProxiesParse(t *testing.T) {
	c, err := parseConfig("serve", []string{"-trusted-proxies", " 10.0.0.0/8, 192.168.1.7 ,::1"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.0/8", "192.168.1.7/32", "::1/128"}; !slices.Equal(c.Security.TrustedProxies, want) {
		t.Fatalf("trusted proxies %v, want %v", c.Security.TrustedProxies, want)
	}
	if c, _ := parseConfig("serve", nil, env(nil), io.Discard); c.Security.TrustedProxies != nil {
		t.Fatalf("default trusted proxies %v, want none", c.Security.TrustedProxies)
	}
}
