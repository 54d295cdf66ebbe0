package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestOneParameterEncoder: server-side parameter values are encoded in one
// place, internal/chconn (Escape, Params, WithParams). Elsewhere no
// package builds its own escaper, nor binds a literal map of raw values.
func TestOneParameterEncoder(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	forbidden := []string{
		"clickhouse.WithParameters(clickhouse.Parameters{", // raw values, unescaped
		"NewReplacer(`\\`", // a private escaper
		`NewReplacer("\\"`, // the same, in a quoted string
	}
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || rel == filepath.Join("internal", "chconn") || rel == "bench" {
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
		for _, f := range forbidden {
			if strings.Contains(string(b), f) {
				t.Errorf("%s has %q: bind values with chconn.Params or chconn.WithParams", rel, f)
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
