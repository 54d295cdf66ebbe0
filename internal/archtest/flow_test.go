package archtest

import (
	"strings"
	"testing"
)

// TestFlowStaysBelowItsDeliveries: exporter/internal/flow is the shape the
// stream and lake deliveries share, so it imports neither of them (nor
// anything else of ours but schema).
func TestFlowStaysBelowItsDeliveries(t *testing.T) {
	found := false
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/exporter/internal/flow" {
			continue
		}
		found = true
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/") && imp != module+"/schema" {
				t.Errorf("exporter/internal/flow imports %s: it imports nothing of ours but schema (streams and the lake import it)", imp)
			}
		}
	}
	if !found {
		t.Fatal("exporter/internal/flow not found: the check would prove nothing")
	}
}
