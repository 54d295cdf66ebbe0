package console_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/auditstore/auditstore/internal/servertest"
)

// TestConsole runs the console's workflows in one browser against one
// server, comparing what the page shows with what the API answers.
func TestConsole(t *testing.T) {
	chromium(t)
	// Page mode reaches 50 events deep here, so that the cursor takes over
	// at page 4 of 25.
	s := servertest.Start(t, "-allow-private-destinations", "-max-page-offset", "50", "-console-trace-url", "https://logs.example.com/search?trace={traceId}")
	keys := s.Org(t, "acme", "ingest", "read", "admin")
	read := keys["read"]
	seed(t, s, keys["ingest"], time.Now().UTC())
	s.WaitTotal(t, read, "resourceType=secret", seedCount+1)
	_, all, _ := apiList(t, s, read, "/v1/events?limit=1") // the seed, the org and its keys

	dir := shots(t)
	b := newBrowser(t)
	p := tab(t, b, s.Base, dir)
	p.signIn(keys["admin"])
	if got, want := len(p.rows()), 50; got != want {
		t.Fatalf("first page rows=%d, want %d", got, want)
	}
	p.shot("log")

	t.Run("Filters", func(t *testing.T) { p.t = t; testFilters(t, s, p, read) })
	t.Run("PagingAndSorting", func(t *testing.T) { p.t = t; testPaging(t, s, p, read) })
	t.Run("DrawerAndLinks", func(t *testing.T) { p.t = t; testDrawer(t, s, p, read, keys["admin"]) })
	t.Run("HistogramNarrows", func(t *testing.T) { p.t = t; testHistogram(t, s, p, read) })
	t.Run("Export", func(t *testing.T) { p.t = t; testExport(t, s, p, read) })
	t.Run("HostileDataIsText", func(t *testing.T) { p.t = t; testHostile(t, p) })
	// DrawerAndLinks changed the org's settings once (org.update-settings).
	t.Run("AccessRecords", func(t *testing.T) { p.t = t; testAccess(t, s, p, read, keys["admin"][4:20], all+1) })
	t.Run("ReadSessions", func(t *testing.T) { testReadSessions(t, s, read, keys["admin"]) })
	t.Run("CursorPastPageLimit", func(t *testing.T) { p.t = t; testCursorPaging(t, s, p, read) })
	t.Run("Live", func(t *testing.T) { p.t = t; testLive(t, s, p, keys["ingest"]) })
	t.Run("Streams", func(t *testing.T) { p.t = t; testStreams(t, s, p, keys["admin"]) })
	t.Run("Viewer", func(t *testing.T) { p.t = t; testViewer(t, s, b, keys) })
	t.Run("ColumnsRemembered", func(t *testing.T) { p.t = t; testColumns(t, p) })
	t.Run("PhoneAndDark", func(t *testing.T) {
		p.t = t
		p.after(false, p.goHash("#/log?clear=1"))
		p.darkMode(true)
		p.shot("log-dark")
		p.run(chromedp.EmulateViewport(390, 844))
		p.shot("log-phone-dark")
		p.darkMode(false)
		p.run(chromedp.EmulateViewport(1280, 800))
	})
}

// apply sets the filter form's fields (by element id) and submits it.
func apply(p *page, fields map[string]string) {
	p.t.Helper()
	var acts []action
	acts = append(acts, chromedp.Click(css("#f-clear")))
	p.after(false, acts...)
	acts = nil
	for id, v := range fields {
		acts = append(acts, chromedp.SetValue(css("#"+id), v))
	}
	acts = append(acts, chromedp.Click(css("#f-apply")))
	p.after(len(fields) > 0, acts...)
}

func testFilters(t *testing.T, s *servertest.Server, p *page, key string) {
	cases := []struct {
		name   string
		fields map[string]string
		query  string
	}{
		{"actor email contains", map[string]string{"f-actorEmail": "CAROL@", "f-email-mode": "actorEmailContains"}, "actorEmailContains=CAROL@"},
		{"actor email prefix", map[string]string{"f-actorEmail": "bo", "f-email-mode": "actorEmailPrefix"}, "actorEmailPrefix=bo"},
		{"actor type", map[string]string{"f-actorType": "service"}, "actorType=service"},
		{"resource", map[string]string{"f-resourceType": "secret", "f-resourceId": "s2"}, "resourceType=secret&resourceId=s2"},
		{"project", map[string]string{"f-projectId": "p2"}, "projectId=p2"},
		{"ip range", map[string]string{"f-ipAddress": "10.0.1.0/24"}, "ipAddress=10.0.1.0%2F24"},
		{"ipv6", map[string]string{"f-ipAddress": "2001:db8::/32"}, "ipAddress=2001%3Adb8%3A%3A%2F32"},
		{"source", map[string]string{"f-userAgentType": "terraform"}, "userAgentType=terraform"},
		{"trace", map[string]string{"f-traceId": "trace-04"}, "traceId=trace-04"},
		{"metadata", map[string]string{"f-metadata": "env=dev"}, "metadata.env=dev"},
		{"actor id", map[string]string{"f-actorId": "u-dave"}, "actorId=u-dave"},
	}
	for _, c := range cases {
		apply(p, c.fields)
		want, total, pages := apiList(t, s, key, "/v1/events?"+c.query)
		sameIDs(t, c.name, p.rows(), want)
		if got, w := p.text("#pageinfo"), fmt.Sprintf("Page 1 of %d (%d total)", pages, total); got != w {
			t.Fatalf("%s: page info %q, want %q", c.name, got, w)
		}
		// The URL holds the filter: reopening it shows the same rows.
		q, _ := url.ParseQuery(c.query)
		for k, v := range q {
			if got := p.hashParams()[k]; !slices.Equal(got, v) {
				t.Fatalf("%s: URL %s=%v, want %v", c.name, k, got, v)
			}
		}
	}
	// Event types: the multi-select, with counts from /v1/event-types.
	apply(p, nil)
	p.run(chromedp.Click(css("#f-types-button")))
	p.shot("filters-event-types")
	p.after(true, chromedp.Click(css(`#f-types input[value="secret.delete"]`)))
	p.run(chromedp.Click(css("#f-types-button")))
	p.after(true, chromedp.Click(css(`#f-types input[value="user.login"]`)))
	want, _, _ := apiList(t, s, key, "/v1/events?eventType=secret.delete&eventType=user.login")
	sameIDs(t, "event types", p.rows(), want)
	var count string
	p.eval(`document.querySelector('#f-types input[value="user.login"]').parentElement.querySelector('.count').textContent`, &count)
	if count != fmt.Sprint(seedCount/5+boolInt(seedCount%5 > 3)) {
		t.Fatalf("user.login count %q, want %d", count, seedCount/5)
	}
	// From/To: the 24 h preset.
	apply(p, nil)
	p.after(true, chromedp.Click(css(`.preset[data-ms="86400000"]`)))
	from := p.hashParams().Get("from")
	want, _, _ = apiList(t, s, key, "/v1/events?from="+url.QueryEscape(from))
	sameIDs(t, "last 24 h", p.rows(), want)
	// Back returns to the previous view.
	p.after(true, chromedp.NavigateBack())
	if p.hashParams().Get("from") != "" {
		t.Fatalf("Back kept the time filter: %v", p.hashParams())
	}
	// Clear filters.
	p.after(false, chromedp.Click(css("#f-clear")))
	want, _, _ = apiList(t, s, key, "/v1/events")
	sameIDs(t, "cleared", p.rows(), want)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func testPaging(t *testing.T, s *servertest.Server, p *page, key string) {
	p.after(false, p.goHash("#/log?limit=25"))
	for page := 1; page <= 3; page++ {
		want, total, pages := apiList(t, s, key, fmt.Sprintf("/v1/events?limit=25&page=%d", page))
		sameIDs(t, fmt.Sprintf("page %d", page), p.rows(), want)
		if got, w := p.text("#pageinfo"), fmt.Sprintf("Page %d of %d (%d total)", page, pages, total); got != w {
			t.Fatalf("page info %q, want %q", got, w)
		}
		var nextOff bool
		p.eval(`document.getElementById('next').disabled`, &nextOff)
		if nextOff != (page == pages) {
			t.Fatalf("page %d of %d: Next disabled=%v", page, pages, nextOff)
		}
		if page < 3 {
			p.after(false, chromedp.Click(css("#next")))
		}
	}
	p.after(false, chromedp.Click(css("#prev")))
	want, _, _ := apiList(t, s, key, "/v1/events?limit=25&page=2")
	sameIDs(t, "previous", p.rows(), want)

	for _, c := range []struct{ button, query string }{
		{"#sort-event", "sort=eventType&order=asc"},
		{"#sort-event", "sort=eventType&order=desc"},
		{"#sort-actor", "sort=actor&order=asc"},
		{"#sort-actor", "sort=actor&order=desc"},
		{"#sort-time", "sort=timestamp&order=desc"},
		{"#sort-time", "sort=timestamp&order=asc"},
	} {
		p.after(false, chromedp.Click(css(c.button)))
		want, _, _ := apiList(t, s, key, "/v1/events?limit=25&"+c.query)
		sameIDs(t, c.query, p.rows(), want)
	}
}

// orgTraceURL is the org's own trace link-out, set by testDrawer (the
// subtests after it see it).
const orgTraceURL = "https://trace.acme.example/t/{traceId}?from=console"

func testDrawer(t *testing.T, s *servertest.Server, p *page, key, admin string) {
	p.after(true, p.goHash("#/log?eventType=secret.update"))
	// Keyboard: Enter on a focused row opens the drawer, Escape closes it
	// and gives the focus back to the row.
	p.run(chromedp.Focus(css(`#events tbody tr[data-id]`)), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(css("#drawer")))
	p.run(chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(css("#drawer")))
	var focused bool
	p.eval(`document.activeElement.matches('#events tbody tr[data-id]')`, &focused)
	if !focused {
		t.Fatal("after Escape the focus is not back on the row")
	}
	id := "00000000-0000-4000-8000-000000000006" // changes {"value": {"old","new"}, ...}
	p.run(chromedp.Click(css(`tr[data-id="`+id+`"]`)), chromedp.WaitVisible(css("#drawer")))
	diff := p.text("#drawer-diff")
	for _, w := range []string{"value", "v1", "→", "v2", "ttl", "30", "60"} {
		if !strings.Contains(diff, w) {
			t.Fatalf("diff %q lacks %q", diff, w)
		}
	}
	p.shot("drawer")
	var out string
	p.eval(`document.getElementById('link-trace-out').href`, &out)
	if out != "https://logs.example.com/search?trace=trace-02" {
		t.Fatalf("trace link-out %q, want the server's default", out)
	}
	// The org's own template replaces the server's default; a hostile one
	// is refused and changes nothing.
	for _, bad := range []string{"javascript:alert({traceId})", "data:text/html,{traceId}", "https://{traceId}.evil.example/", "https://logs.example.com/"} {
		if code, body := s.JSON(t, "PATCH", "/v1/orgs/acme/settings", admin, map[string]string{"traceUrl": bad}); code != 400 {
			t.Fatalf("template %q: %d %v, want 400", bad, code, body)
		}
	}
	if code, body := s.JSON(t, "PATCH", "/v1/orgs/acme/settings", key, map[string]string{"traceUrl": orgTraceURL}); code != 403 {
		t.Fatalf("a read key sets the template: %d %v, want 403", code, body)
	}
	if code, body := s.JSON(t, "PATCH", "/v1/orgs/acme/settings", admin, map[string]string{"traceUrl": orgTraceURL}); code != 200 {
		t.Fatalf("set the org's template: %d %v", code, body)
	}
	p.reloadLog()
	p.run(chromedp.Click(css(`tr[data-id="`+id+`"]`)), chromedp.WaitVisible(css("#drawer")))
	p.eval(`document.getElementById('link-trace-out').href`, &out)
	if out != "https://trace.acme.example/t/trace-02?from=console" {
		t.Fatalf("trace link-out %q, want the org's template", out)
	}
	// before/after convention.
	p.run(chromedp.Click(css("#drawer-close")))
	p.run(chromedp.Click(css(`tr[data-id="00000000-0000-4000-8000-000000000001"]`)), chromedp.WaitVisible(css("#drawer")))
	if d := p.text("#drawer-diff"); !strings.Contains(d, "owner") || !strings.Contains(d, "alice") || !strings.Contains(d, "bob") || strings.Contains(d, "size") {
		t.Fatalf("before/after diff %q", d)
	}
	// The resource timeline (InfraKitchen's Activity tab).
	p.after(true, chromedp.Click(css("#link-resource")))
	want, _, _ := apiList(t, s, key, "/v1/resources/secret/s2/events")
	sameIDs(t, "resource timeline", p.rows(), want)
	p.shot("resource-timeline")
	// The trace.
	p.run(chromedp.Click(css(`tr[data-id="00000000-0000-4000-8000-000000000005"]`)), chromedp.WaitVisible(css("#drawer")))
	p.after(true, chromedp.Click(css("#link-trace")))
	want, _, _ = apiList(t, s, key, "/v1/traces/trace-01/events")
	sameIDs(t, "trace", p.rows(), want)
	// The actor's activity.
	p.run(chromedp.Click(css(`tr[data-id="00000000-0000-4000-8000-000000000005"]`)), chromedp.WaitVisible(css("#drawer")))
	p.after(true, chromedp.Click(css("#link-actor")))
	want, _, _ = apiList(t, s, key, "/v1/events?actorId=u-bob")
	sameIDs(t, "actor activity", p.rows(), want)
	var hidden bool
	p.eval(`document.getElementById('drawer').hidden`, &hidden)
	if !hidden {
		p.run(chromedp.Click(css("#drawer-close")))
	}
}

func testHistogram(t *testing.T, s *servertest.Server, p *page, key string) {
	p.after(true, p.goHash("#/log?projectId=p1"))
	var bar struct{ From, To string }
	p.eval(`(() => { const b = [...document.querySelectorAll('#histogram rect.bar')].find(r => +r.dataset.count > 0); return {from: b.dataset.from, to: b.dataset.to}; })()`, &bar)
	p.after(true, chromedp.Click(css(`#histogram rect.bar[data-from="`+bar.From+`"]`)))
	q := p.hashParams()
	if q.Get("from") != bar.From || q.Get("to") != bar.To || q.Get("projectId") != "p1" {
		t.Fatalf("after the bar click the URL holds %v, want from=%s to=%s projectId=p1", q, bar.From, bar.To)
	}
	want, _, _ := apiList(t, s, key, "/v1/events?projectId=p1&from="+url.QueryEscape(bar.From)+"&to="+url.QueryEscape(bar.To))
	sameIDs(t, "histogram bar", p.rows(), want)
	// A top row narrows too.
	p.after(true, p.goHash("#/log"))
	p.shot("summary")
	p.after(true, chromedp.Click(css(`#top-actorEmail button[data-value="carol@example.com"]`)))
	want, _, _ = apiList(t, s, key, "/v1/events?actorEmail=carol@example.com")
	sameIDs(t, "top actor", p.rows(), want)
}

func testExport(t *testing.T, s *servertest.Server, p *page, key string) {
	dir := t.TempDir()
	p.downloads(dir)
	p.after(true, p.goHash("#/log?eventType=secret.create&projectId=p1"))
	for _, format := range []string{"csv", "ndjson"} {
		p.run(chromedp.SetValue(css("#export-format"), format), chromedp.Click(css("#export")))
		p.waitJS(`document.getElementById('export-status').dataset.name && document.getElementById('export-status').dataset.name.endsWith('.` + format + `') && document.getElementById('export-status').textContent.startsWith('Saved')`)
		var name string
		p.eval(`document.getElementById('export-status').dataset.name`, &name)
		var got []byte
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil && len(b) > 0 {
				got = b
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("download %s did not arrive", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		code, want := s.Do(t, "GET", "/v1/export?format="+format+"&eventType=secret.create&projectId=p1", key, nil)
		if code != 200 {
			t.Fatalf("export: %d %s", code, want)
		}
		if !bytes.Equal(sortedLines(got), sortedLines(want)) {
			t.Fatalf("%s: the UI's export differs from /v1/export:\n%s\n---\n%s", format, got, want)
		}
		if n := bytes.Count(want, []byte("\n")); n < 5 {
			t.Fatalf("%s export has %d lines: the case tests nothing", format, n)
		}
	}
	p.shot("export")
}

func sortedLines(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(lines)
	return []byte(strings.Join(lines, "\n"))
}

func testHostile(t *testing.T, p *page) {
	p.after(true, p.goHash("#/log?resourceId=s9"))
	p.run(chromedp.Click(css(`tr[data-id="`+hostileID+`"]`)), chromedp.WaitVisible(css("#drawer")))
	// Click every link and summary of the drawer, hover the row.
	p.run(js(`document.querySelectorAll('#drawer summary').forEach(s => s.click())`))
	var res struct {
		XSS    any
		Imgs   int
		Bold   int
		Text   bool
		Script int
		Hrefs  []string
	}
	p.eval(`({xss: window.__xss ?? null, imgs: document.querySelectorAll('#events img, #drawer img').length,
		bold: document.querySelectorAll('#events b, #drawer b').length,
		script: document.querySelectorAll('body script').length,
		text: document.body.innerText.includes('<img src=x onerror="window.__xss=1">') && document.body.innerText.includes('<script>window.__xss = 2</script>'),
		hrefs: [...document.querySelectorAll('#drawer a')].map(a => a.href)})`, &res)
	if res.XSS != nil || res.Imgs != 0 || res.Bold != 0 || res.Script != 0 || !res.Text {
		t.Fatalf("hostile event: %+v", res)
	}
	for _, h := range res.Hrefs {
		if strings.HasPrefix(strings.ToLower(h), "javascript:") {
			t.Fatalf("a javascript: link in the drawer: %s", h)
		}
	}
	// The trace id goes into the org's template URL-escaped.
	if !slices.Contains(res.Hrefs, "https://trace.acme.example/t/javascript%3Aalert(1)?from=console") {
		t.Fatalf("drawer links %q lack the escaped trace link-out", res.Hrefs)
	}
	p.shot("hostile")
	p.run(chromedp.Click(css("#drawer-close")))
}

func testAccess(t *testing.T, s *servertest.Server, p *page, key, consoleKeyID string, events int) {
	count := func(q string) int {
		_, total, _ := apiList(t, s, key, "/v1/events?limit=1&"+q)
		return total
	}
	// The console's session was recorded once; its reads (and polls) were not.
	if n := count("eventType=audit-log.session&actorId=" + consoleKeyID); n != 1 {
		t.Fatalf("read sessions recorded=%d, want 1", n)
	}
	// The console signed in with the admin key: count the reads of that key.
	before := count("eventType=audit-log.query&actorId=" + consoleKeyID)
	p.after(true, p.goHash("#/log?projectId=p2"))
	time.Sleep(6 * time.Second) // one live poll
	if after := count("eventType=audit-log.query&actorId=" + consoleKeyID); after != before {
		t.Fatalf("audit-log.query %d → %d: the console's reads were recorded one by one", before, after)
	}
	// Access records stay out of lists unless asked for.
	_, all, _ := apiList(t, s, key, "/v1/events?limit=1")
	_, with, _ := apiList(t, s, key, "/v1/events?limit=1&includeAccess=true")
	if all != events || with <= all {
		t.Fatalf("total=%d (want %d), with access records=%d", all, events, with)
	}
	// The access records keep arriving (every API read here adds one): the
	// page's total lies between the API's before and after it.
	_, lo, _ := apiList(t, s, key, "/v1/events?limit=1&includeAccess=true")
	p.after(true, p.goHash("#/log?includeAccess=true"))
	_, hi, _ := apiList(t, s, key, "/v1/events?limit=1&includeAccess=true")
	var ui int
	p.eval(`+(/\((\d+) total\)/.exec(document.getElementById('pageinfo').textContent) || [0, 0])[1]`, &ui)
	if ui < lo || ui > hi || ui <= all {
		t.Fatalf("with access records the page says %q; the API %d before, %d after", p.text("#pageinfo"), lo, hi)
	}
}

// testReadSessions: a read carrying a live read session of its key is not
// recorded one by one; a forged one, or another key's, is.
func testReadSessions(t *testing.T, s *servertest.Server, read, admin string) {
	readID := read[4:20]
	count := func() int { // counted with the admin key, so as not to count itself
		_, total, _ := apiList(t, s, admin, "/v1/events?limit=1&eventType=audit-log.query&actorId="+readID)
		return total
	}
	code, out := s.Do(t, "POST", "/v1/read-sessions", admin, nil)
	var other struct{ Session, Role string }
	if err := json.Unmarshal(out, &other); code != 201 || err != nil || other.Role != "admin" {
		t.Fatalf("read session: %d %s", code, out)
	}
	code, out = s.Do(t, "POST", "/v1/read-sessions", read, nil)
	var mine struct{ Session, Role string }
	if err := json.Unmarshal(out, &mine); code != 201 || err != nil || mine.Role != "read" {
		t.Fatalf("read session: %d %s", code, out)
	}
	// Wait until the earlier reads' records have all landed.
	q0 := count()
	for {
		time.Sleep(300 * time.Millisecond)
		q := count()
		if q == q0 {
			break
		}
		q0 = q
	}
	for _, h := range []string{"AQAAAAB", mine.Session[:len(mine.Session)-2] + "AA", other.Session} {
		s.Do(t, "GET", "/v1/events?limit=1", read, nil, "Audit-Session", h)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() != q0+3 {
		if time.Now().After(deadline) {
			t.Fatalf("forged or foreign sessions: audit-log.query %d → %d, want +3", q0, count())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Do(t, "GET", "/v1/events?limit=1", read, nil, "Audit-Session", mine.Session)
	time.Sleep(time.Second) // the flush interval is 20ms
	if q := count(); q != q0+3 {
		t.Fatalf("a read in its key's session was recorded: %d, want %d", q, q0+3)
	}
}

// testLive: new events appear on top while the user is at the top of the
// first page; scrolled down, they wait behind a banner.
func testLive(t *testing.T, s *servertest.Server, p *page, ingest string) {
	p.after(true, p.goHash("#/log?resourceType=secret"))
	event := func(id string) []byte {
		return []byte(`{"id":"` + id + `","event":{"type":"secret.rotate"},"actor":{"type":"user","metadata":{"userId":"u-erin","email":"erin@example.com"}},"resource":{"type":"secret","id":"s1"}}` + "\n")
	}
	first := "00000000-0000-4000-8000-00000000a001"
	s.Ingest(t, ingest, event(first))
	p.waitJS(`(document.querySelector('#events tbody tr[data-id]') || {}).dataset?.id === '` + first + `'`)
	var fresh bool
	p.eval(`document.querySelector('#events tbody tr[data-id]').classList.contains('fresh')`, &fresh)
	if !fresh {
		t.Fatal("the new event is not marked as new")
	}
	p.run(js(`window.scrollTo(0, document.body.scrollHeight)`))
	second := "00000000-0000-4000-8000-00000000a002"
	s.Ingest(t, ingest, event(second))
	p.waitJS(`!document.getElementById('live-banner').hidden`)
	if slices.Contains(p.rows(), second) {
		t.Fatal("the table changed under a reader scrolled down")
	}
	p.run(chromedp.Click(css("#live-banner")))
	p.waitJS(`(document.querySelector('#events tbody tr[data-id]') || {}).dataset?.id === '` + second + `'`)
}

// testCursorPaging: past the depth of page mode, Next follows the API's
// cursor, and the page still says "Page X of Y (Z total)".
func testCursorPaging(t *testing.T, s *servertest.Server, p *page, key string) {
	p.after(false, p.goHash("#/log?limit=25"))
	for i := 0; i < 3; i++ {
		p.after(false, chromedp.Click(css("#next")))
	}
	q := p.hashParams()
	if q.Get("cursor") == "" || q.Get("page") != "4" {
		t.Fatalf("page 4 is not read by cursor: %v", q)
	}
	code, out := s.Do(t, "GET", "/v1/events?limit=25&page=3", key, nil)
	var page3 struct {
		NextCursor   string
		Total, Pages int
	}
	if err := json.Unmarshal(out, &page3); code != 200 || err != nil || page3.NextCursor == "" || page3.Pages != 4 {
		t.Fatalf("page 3: %d %s", code, out)
	}
	want, _, _ := apiList(t, s, key, "/v1/events?limit=25&cursor="+url.QueryEscape(page3.NextCursor))
	sameIDs(t, "page 4 by cursor", p.rows(), want)
	if got, w := p.text("#pageinfo"), fmt.Sprintf("Page 4 of 4 (%d total)", page3.Total); got != w {
		t.Fatalf("page info %q, want %q", got, w)
	}
	p.after(false, chromedp.Click(css("#prev")))
	want, _, _ = apiList(t, s, key, "/v1/events?limit=25&page=3")
	sameIDs(t, "back to page 3", p.rows(), want)
}
