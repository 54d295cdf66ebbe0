package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestReadCompilerStaysPure: internal/readsql, the one compiler of reads,
// imports only the standard library, schema and internal/chconn (for the
// parameter encoding), never an HTTP framework, net/http or the driver.
func TestReadCompilerStaysPure(t *testing.T) {
	found := false
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/internal/readsql" {
			continue
		}
		found = true
		for _, imp := range p.Imports {
			switch {
			case imp == module+"/schema", imp == module+"/internal/chconn":
			case strings.HasPrefix(imp, module+"/"):
				t.Errorf("readsql imports %s: it imports only schema and internal/chconn of ours", imp)
			case imp == "net/http" || strings.HasPrefix(imp, "net/http/"):
				t.Errorf("readsql imports %s: it knows no HTTP; handlers bind requests", imp)
			case strings.Contains(imp, "."):
				t.Errorf("readsql imports %s: no framework nor driver, only the standard library", imp)
			}
		}
	}
	if !found {
		t.Fatal("internal/readsql not found: the check would prove nothing")
	}
}

// eventReads finds SQL that reads the events tables: a FROM naming them,
// as a schema constant or as literal text.
var eventReads = regexp.MustCompile(`FROM\s*"\s*\+\s*schema\.(EventsTable|KeysTable)\b|(?i)\bFROM\s+(events|events_by_key)\b`)

// TestOneReadCompiler: no package but internal/readsql builds SQL that
// reads the events tables. Writers (INSERT INTO) are not reads; tests,
// benchmarks, migrations and the DDL are outside the rule.
func TestOneReadCompiler(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	skip := map[string]bool{
		filepath.Join("internal", "readsql"): true, // the compiler itself
		filepath.Join("internal", "migrate"): true, // migrations
		filepath.Join("internal", "chtest"):  true, // test helpers
		filepath.Join("schema", "sql"):       true, // DDL
		"bench":                              true,
	}
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || skip[rel] {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "//") {
				continue
			}
			if m := eventReads.FindString(line); m != "" {
				t.Errorf("%s:%d reads the events tables (%q): compile the statement in internal/readsql", rel, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked %d files; the walk found too few to prove anything", checked)
	}
}
