// Package archtest keeps the dependency rules of DESIGN.md and STYLE.md:
// cmd → {ingest, query, exporter} → schema; schema imports only the
// standard library (and UUID); the three feature packages never import each
// other; Gin stays out of schema; client (importable by other modules)
// imports no other package of ours.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/auditstore/auditstore"

type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// area is the top-level folder of one of our packages ("" for outside ones).
func area(path string) string {
	rest, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	first, _, _ := strings.Cut(rest, "/")
	return first
}

func TestDependencyDirection(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 3 {
		t.Fatalf("go list found %d packages; the check would prove nothing", len(pkgs))
	}
	features := map[string]bool{"ingest": true, "query": true, "exporter": true}
	// schema's outside imports: UUIDs, and xxHash64, which defines the
	// metadata leaf hashes ClickHouse computes too (xxHash64 in SQL).
	schemaDeps := map[string]bool{"github.com/google/uuid": true, "github.com/cespare/xxhash/v2": true}
	for _, p := range pkgs {
		from := area(p.ImportPath)
		for _, imp := range p.Imports {
			to := area(imp)
			switch {
			case from == "schema" && to != "":
				t.Errorf("%s imports %s: schema imports no other package of ours", p.ImportPath, imp)
			case from == "schema" && (imp == "net/http" || strings.HasPrefix(imp, "github.com/gin-gonic/")):
				t.Errorf("%s imports %s: HTTP belongs to the handlers (internal/httpx maps error kinds to statuses)", p.ImportPath, imp)
			case from == "schema" && to == "" && strings.Contains(imp, ".") && !schemaDeps[imp]:
				t.Errorf("%s imports %s: schema imports only the standard library, uuid and xxhash", p.ImportPath, imp)
			case features[from] && features[to] && from != to:
				t.Errorf("%s imports %s: ingest, query and exporter never import each other", p.ImportPath, imp)
			case features[from] && strings.HasPrefix(imp, module+"/internal/tenant"):
				t.Errorf("%s imports %s: feature packages declare the few tenant methods they use (Recorder, Guard); cmd wires tenant in", p.ImportPath, imp)
			case from == "client" && to != "" && to != "client":
				t.Errorf("%s imports %s: the client is importable on its own and imports no other package of ours", p.ImportPath, imp)
			case (to == "cmd" || to == "bench") && to != from:
				t.Errorf("%s imports %s: nothing imports cmd or bench", p.ImportPath, imp)
			}
		}
	}
}
