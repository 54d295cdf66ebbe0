package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/auditstore/auditstore/internal/servertest"
)

// The browser tests drive Debian's headless Chromium through chromedp
// against the real server binary and the embedded ClickHouse engine.

// chromium finds the browser, or skips: CI (.ci/run) installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("AUDITSTORE_TEST_BROWSER") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
	return ""
}

// shots is where screenshots go: $AUDITSTORE_SCREENSHOTS, else a
// temporary directory.
func shots(t *testing.T) string {
	if d := os.Getenv("AUDITSTORE_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// page is one browser tab on the console.
type page struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab opens a new tab (its own sessionStorage) in the browser of parent.
func tab(t *testing.T, parent context.Context, base, dir string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent)
	t.Cleanup(cancel)
	// The whole workflow's bound; each step has its own (stepTimeout), so a
	// stuck step fails at once rather than taking the steps after it along.
	ctx, cancel2 := context.WithTimeout(ctx, 8*time.Minute)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	return &page{t: t, ctx: ctx, base: base, shots: dir}
}

type action = chromedp.Action[chromedp.Void]

// stepTimeout bounds one run or eval: a click waits for its element, and
// an element that never comes would otherwise hold the test until the
// tab's deadline.
const stepTimeout = 45 * time.Second

func (p *page) run(actions ...action) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression and decodes its value (through
// JSON) into out; nil discards it.
func (p *page) eval(js string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("JSON.stringify((() => ("+js+"))()) ?? 'null'"))
	if err != nil {
		p.t.Fatalf("browser: %s: %v", js, err)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(s), out); err != nil {
			p.t.Fatalf("decode %s: %v", s, err)
		}
	}
}

// js is an action that evaluates JavaScript for its effect.
func js(expr string) action {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[string]("String("+expr+")")(ctx, t)
		return err
	})
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func (p *page) counter(name string) int {
	var n int
	p.eval(fmt.Sprintf(`+(document.body.dataset.%s || 0)`, name), &n)
	return n
}

// after runs an action and waits until the list (and, when summary, the
// summary) has loaded again.
func (p *page) after(summary bool, actions ...action) {
	p.t.Helper()
	loads, sums := p.counter("loads"), p.counter("summaries")
	p.run(actions...)
	p.waitJS(fmt.Sprintf(`+(document.body.dataset.loads||0) > %d`, loads))
	if summary {
		p.waitJS(fmt.Sprintf(`+(document.body.dataset.summaries||0) > %d`, sums))
	}
}

// reloadLog reloads the audit log page and waits for its rows and its
// summary: the summary comes after the rows, and an element clicked before
// it is drawn may have moved by the time the click lands.
func (p *page) reloadLog() {
	p.t.Helper()
	p.run(chromedp.Reload())
	p.waitJS(`document.body.dataset.ready === '/log' && +(document.body.dataset.loads||0) > 0 && +(document.body.dataset.summaries||0) > 0`)
}

func (p *page) waitJS(cond string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		p.eval(`!!(`+cond+`)`, &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var hash, errText string
			p.eval(`location.hash`, &hash)
			p.eval(`(document.getElementById('log-error')||{}).textContent||''`, &errText)
			p.t.Fatalf("waited 30s for %s (hash %s, error %q)", cond, hash, errText)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// rows returns the event ids of the table, top to bottom.
func (p *page) rows() []string {
	var ids []string
	p.eval(`[...document.querySelectorAll('#events tbody tr[data-id]')].map(r => r.dataset.id)`, &ids)
	return ids
}

// goHash changes the fragment (a same-document navigation).
func (p *page) goHash(h string) action {
	return js(fmt.Sprintf(`location.hash = %q`, h))
}

func (p *page) text(sel string) string {
	var s string
	p.eval(fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||''`, sel), &s)
	return s
}

func (p *page) hashParams() url.Values {
	var h string
	p.eval(`location.hash`, &h)
	_, q, _ := strings.Cut(h, "?")
	v, err := url.ParseQuery(q)
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

func (p *page) shot(name string) {
	p.t.Helper()
	b, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), b, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *page) darkMode(on bool) {
	v := "light"
	if on {
		v = "dark"
	}
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}}); err != nil {
		p.t.Fatal(err)
	}
}

func (p *page) downloads(dir string) {
	if _, err := chromedp.CallBrowser(p.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		p.t.Fatal(err)
	}
}

// signIn opens the console and signs in with key.
func (p *page) signIn(key string) {
	p.t.Helper()
	p.run(chromedp.Navigate(p.base+"/"), chromedp.WaitVisible(css("#key")))
	p.after(true, chromedp.SendKeys(css("#key"), key), chromedp.Click(css("#signin-form button[type=submit]")))
}

// apiIDs lists the ids GET path answers (a list endpoint) with key.
func apiList(t *testing.T, s *servertest.Server, key, path string) (ids []string, total, pages int) {
	t.Helper()
	code, out := s.Do(t, "GET", path, key, nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, out)
	}
	var r struct {
		Events []struct {
			ID string `json:"id"`
		}
		Total, Pages int
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	for _, e := range r.Events {
		ids = append(ids, e.ID)
	}
	return ids, r.Total, r.Pages
}

func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the API answers no events: the case tests nothing", what)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: UI rows=%d %v\nAPI rows=%d %v", what, len(got), got, len(want), want)
	}
}
