package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/auditstore/auditstore/internal/servertest"
)

// quickStart returns the shell commands of README's Quick start: its
// indented code lines, with continuation lines joined.
func quickStart(t *testing.T) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Quick start\n")
	if start < 0 {
		t.Fatal("README.md has no Quick start section")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var cmds []string
	cont := false
	for _, line := range strings.Split(section, "\n") {
		code, ok := strings.CutPrefix(line, "    ")
		if !ok {
			cont = false
			continue
		}
		code = strings.TrimSpace(code)
		if cont {
			cmds[len(cmds)-1] += " " + code
		} else {
			cmds = append(cmds, code)
		}
		cont = strings.HasSuffix(code, `\`)
		if cont {
			c := cmds[len(cmds)-1]
			cmds[len(cmds)-1] = strings.TrimSuffix(c, `\`)
		}
	}
	return cmds
}

// TestReadmeQuickStart runs README's Quick start as written against the
// real server: the server command is the binary servertest starts (on a
// free port, whose address replaces 127.0.0.1:8080 and localhost:8080),
// ADMIN=... is the printed admin token, KEY=ask_... the key the previous
// command printed; every curl command runs in bash as written and must
// answer what its comment says (the status before the body).
func TestReadmeQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("needs curl")
	}
	cmds := quickStart(t)
	var s *servertest.Server
	env := map[string]string{}
	var last, lastBody string // the previous command's answer ("201 {...}") and body
	ran := 0
	for i, cmd := range cmds {
		switch {
		case strings.HasPrefix(cmd, "#"): // an expected answer, checked below
			want := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(cmd, "#"), " →"))
			checkAnswer(t, cmds[i-1], last, want)
		case cmd == "go run ./cmd/auditstore serve":
			s = servertest.Start(t)
		case strings.HasPrefix(cmd, "go test"):
		case strings.HasPrefix(cmd, "ADMIN="):
			env["ADMIN"] = servertest.AdminToken
		case strings.HasPrefix(cmd, "KEY="):
			var k struct{ Key string }
			if err := json.Unmarshal([]byte(lastBody), &k); err != nil || !strings.HasPrefix(k.Key, "ask_") {
				t.Fatalf("KEY=: the previous command printed %q, not a key", lastBody)
			}
			env["KEY"] = k.Key
		case strings.HasPrefix(cmd, "curl "):
			if s == nil {
				t.Fatalf("%q comes before the server command", cmd)
			}
			addr := strings.TrimPrefix(s.Base, "http://")
			run := strings.NewReplacer("127.0.0.1:8080", addr, "localhost:8080", addr).Replace(cmd)
			body, code, comment := curl(t, run, env)
			if comment != "" {
				checkAnswer(t, cmd, code+" "+body, strings.TrimSpace(strings.TrimPrefix(comment, "→")))
			} else if !strings.HasPrefix(code, "2") {
				t.Fatalf("%s\n→ %s %s", cmd, code, body)
			}
			last, lastBody = code+" "+body, body
			ran++
		default:
			t.Fatalf("README's Quick start has a command this test does not know how to run: %q", cmd)
		}
	}
	if ran < 5 || s == nil {
		t.Fatalf("ran %d curl commands (server started: %v): the Quick start section was not found whole", ran, s != nil)
	}
}

// curl runs one README command in bash with -w to learn the status, and
// returns the body, the status and the command's trailing comment.
func curl(t *testing.T, cmd string, env map[string]string) (body, code, comment string) {
	t.Helper()
	if i := strings.Index(cmd, " # "); i >= 0 {
		cmd, comment = cmd[:i], strings.TrimSpace(cmd[i+3:])
	}
	c := exec.Command("bash", "-c", cmd+` -w '\n%{http_code}'`)
	c.Env = os.Environ()
	for k, v := range env {
		c.Env = append(c.Env, k+"="+v)
	}
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndex(s, "\n")
	return strings.TrimSpace(s[:i]), s[i+1:], comment
}

// checkAnswer checks an answer ("201 {...}") against a README comment:
// the status must match, and each JSON member the comment shows with a
// value, unless the value is elided ("...").
func checkAnswer(t *testing.T, cmd, got, want string) {
	t.Helper()
	wantCode, wantBody, _ := strings.Cut(want, " ")
	if len(wantCode) != 3 || wantCode[0] < '1' || wantCode[0] > '5' {
		return // a comment that is not an answer
	}
	gotCode, gotBody, _ := strings.Cut(got, " ")
	if gotCode != wantCode {
		t.Fatalf("%s\n→ %s, README says %s", cmd, got, want)
	}
	if !strings.HasPrefix(wantBody, "{") {
		return
	}
	wantBody = wantBody[:strings.LastIndex(wantBody, "}")+1] // words may follow
	var g map[string]any
	if err := json.Unmarshal([]byte(gotBody), &g); err != nil {
		t.Fatalf("%s\n→ %s: not JSON", cmd, got)
	}
	// Members written out in the comment ("status":"ready", "accepted":1)
	// must be in the answer; "..." elides.
	for _, m := range strings.Split(strings.Trim(wantBody, "{}"), ",") {
		k, v, ok := strings.Cut(m, ":")
		if !ok || strings.Contains(v, "...") || strings.Contains(k, "...") {
			continue
		}
		k = strings.Trim(strings.TrimSpace(k), `"`)
		gv, _ := json.Marshal(g[k])
		if string(gv) != strings.TrimSpace(v) {
			t.Fatalf("%s\n→ %s: %s is %s, README says %s", cmd, got, k, gv, v)
		}
	}
}
