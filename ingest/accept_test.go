package ingest

import (
	"bytes"
	"testing"
)

// TestUnreadBodyClosesConnection: a body refused before it was read to its
// end (too large) closes the connection after the answer; refusals that
// read the whole body, or none of it, keep the connection.
func TestUnreadBodyClosesConnection(t *testing.T) {
	db := migrated(t)
	h := newHarness(t, db.Conn, t.TempDir(), func(c *Config) {
		c.MaxBodyBytes = 64 << 10
		c.MaxEvents = 10
	})
	big := append(append([]byte{'['}, bytes.Repeat([]byte(" "), 70<<10)...), ']')
	eleven := make([]map[string]any, 11)
	for i := range eleven {
		eleven[i] = event(i, "", true)
	}
	for _, tt := range []struct {
		name      string
		body      []byte
		hdr       map[string]string
		status    int
		wantClose bool
	}{
		{"body too large", big, nil, 413, true},
		{"too many events", mustJSON(t, eleven), nil, 413, false},
		{"bad content type", mustJSON(t, event(0, "", true)), map[string]string{"Content-Type": "text/plain"}, 415, false},
		{"accepted", mustJSON(t, event(0, "", true)), nil, 202, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.post(t, "acme", tt.body, tt.hdr)
			if resp.code != tt.status {
				t.Fatalf("%d %s, want %d", resp.code, resp.raw, tt.status)
			}
			if got := resp.header.Get("Connection") == "close"; got != tt.wantClose {
				t.Errorf("Connection: close=%v, want %v", got, tt.wantClose)
			}
		})
	}
}
