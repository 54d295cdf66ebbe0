package engine

import (
	"fmt"
	"os"
	"strings"
)

// WriteClusterConfig writes to path a configuration (for Config.ConfigFile)
// whose remote_servers names a cluster of one shard per port, each an
// engine on 127.0.0.1 at that native port: engines started with it serve
// Distributed tables over each other. The engine has no Keeper client, so
// a cluster of engines is sharded, not replicated.
func WriteClusterConfig(path, name string, tcpPorts []int) error {
	var xml strings.Builder
	fmt.Fprintf(&xml, "<clickhouse>\n  <remote_servers>\n    <%s>\n", name)
	for _, p := range tcpPorts {
		fmt.Fprintf(&xml, "      <shard><replica><host>127.0.0.1</host><port>%d</port></replica></shard>\n", p)
	}
	fmt.Fprintf(&xml, "    </%s>\n  </remote_servers>\n</clickhouse>\n", name)
	if err := os.WriteFile(path, []byte(xml.String()), 0o600); err != nil {
		return fmt.Errorf("write cluster config: %w", err)
	}
	return nil
}
