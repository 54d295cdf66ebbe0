package testkit

import (
	"context"
	"net/http"
	"syscall"
	"testing"

	"github.com/auditstore/auditstore/internal/chtest"
)

// TestDoAsksAgainAfterTheEngineDied: a GET that failed with 500 because the
// shared engine was killed under it is answered by a second call once the
// engine is back; a 500 with the engine alive, and a failed POST, are not
// repeated.
func TestDoAsksAgainAfterTheEngineDied(t *testing.T) {
	db := chtest.NewDB(t)
	if db.Server.Engine == nil {
		t.Skip("no embedded engine to kill: " + db.Server.Kind)
	}
	calls := 0
	kill := true
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if kill {
			kill = false
			if err := syscall.Kill(db.Server.Engine.PID(), syscall.SIGKILL); err != nil {
				t.Errorf("kill engine: %v", err)
			}
			http.Error(w, `{"error":{"code":"internal"}}`, http.StatusInternalServerError)
			return
		}
		var n uint64
		if err := db.Conn.QueryRow(context.Background(), "SELECT count() FROM system.one").Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	if code, _, raw := Do(t, h, "acme", http.MethodGet, "/x", nil); code != http.StatusOK || calls != 2 {
		t.Fatalf("GET after the engine died: %d %s after %d calls, want 200 after 2", code, raw, calls)
	}

	fail := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusInternalServerError)
	})
	calls = 0
	if code, _, _ := Do(t, fail, "acme", http.MethodGet, "/x", nil); code != http.StatusInternalServerError || calls != 1 {
		t.Errorf("GET failing with the engine alive: %d after %d calls, want 500 after 1", code, calls)
	}
	calls, kill = 0, true
	h2 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if err := syscall.Kill(db.Server.Engine.PID(), syscall.SIGKILL); err != nil {
			t.Errorf("kill engine: %v", err)
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	if code, _, _ := Do(t, h2, "acme", http.MethodPost, "/x", map[string]any{}); code != http.StatusInternalServerError || calls != 1 {
		t.Errorf("POST when the engine died: %d after %d calls, want 500 after 1", code, calls)
	}
}
