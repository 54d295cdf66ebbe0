package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// handlerFiles are the files outside http*.go that hold handlers (or the
// helpers that write a handler's response) and so may take *gin.Context.
var handlerFiles = map[string]bool{
	"query/session.go":   true, // POST /v1/session
	"exporter/ndjson.go": true, // writes the NDJSON export response
}

// TestGinContextStaysInHandlers keeps *gin.Context out of everything but
// the HTTP files of ingest, query and exporter (STYLE.md: "*gin.Context
// never travels past a handler"): a source scan, tests excepted.
func TestGinContextStaysInHandlers(t *testing.T) {
	root := filepath.Join("..", "..")
	scanned := 0
	for _, area := range []string{"ingest", "query", "exporter"} {
		err := filepath.WalkDir(filepath.Join(root, area), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			scanned++
			if strings.HasPrefix(filepath.Base(rel), "http") || handlerFiles[rel] {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if strings.Contains(string(src), "gin.Context") {
				t.Errorf("%s mentions *gin.Context: it belongs in the HTTP files (http*.go) only; give the code behind the handler plain arguments", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if scanned < 20 {
		t.Fatalf("scanned %d files of ingest, query and exporter; the check would prove nothing", scanned)
	}
}
