package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// configFile is the engine's configuration (users and HTTP handlers),
// written into its data directory, readable by this user only, at every
// start.
const configFile = "auditstore-engine.xml"

// User is the engine's user for clients when it runs with a Password.
const User = "auditstore"

// NewPassword returns a random password for the engine's user.
func NewPassword() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// writeConfig writes the configuration of an engine with a password, and
// its uncompressed cache's size (Config.UncompressedCache).
//
// The engine's own session (the serving query) signs in as user default
// without a password, from what the engine counts as a local address, so
// default cannot be given a password, and a loopback client could use it
// too. Hence: clients use User, who needs password (stored as SHA-256);
// and the HTTP interface answers a query only when the request carries
// the password in X-ClickHouse-Key (as the exporter sends it), whatever
// user it names: a request without it (?query=..., ?user=default) gets
// 404, and /ping stays open for readiness checks. The native port still
// admits default from this host's own processes; nothing a stream sends
// can speak that protocol, and streams are refused the engine's ports.
func writeConfig(dataDir, password string, uncompressedCache int64) (string, error) {
	sum := sha256.Sum256([]byte(password))
	path := filepath.Join(dataDir, configFile)
	xml := fmt.Sprintf(`<clickhouse>
  <users_config>%[1]s</users_config>
  <uncompressed_cache_size>%[5]d</uncompressed_cache_size>
  <users>
    <default>
      <password></password>
      <networks><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </default>
    <%[2]s>
      <password_sha256_hex>%[3]s</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </%[2]s>
  </users>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <http_handlers>
    <rule>
      <url>/ping</url>
      <methods>GET,HEAD</methods>
      <handler><type>static</type><status>200</status><content_type>text/plain; charset=UTF-8</content_type><response_content>Ok.</response_content></handler>
    </rule>
    <rule>
      <headers><X-ClickHouse-Key>%[4]s</X-ClickHouse-Key></headers>
      <handler><type>dynamic_query_handler</type><query_param_name>query</query_param_name></handler>
    </rule>
  </http_handlers>
</clickhouse>
`, path, User, hex.EncodeToString(sum[:]), password, uncompressedCache)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(xml), 0o600); err != nil {
		return "", fmt.Errorf("write engine config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write engine config: %w", err)
	}
	return path, nil
}
