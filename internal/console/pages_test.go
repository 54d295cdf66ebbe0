package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/auditstore/auditstore/internal/servertest"
)

// testColumns: columns chosen and ordered by the user are remembered
// across reloads; the default comes back when forgotten.
func testColumns(t *testing.T, p *page) {
	heads := func() []string {
		var h []string
		p.eval(`[...document.querySelectorAll('#events thead th')].map(th => th.textContent.replace(/[▲▼↑↓]/g, '').trim())`, &h)
		return h
	}
	p.after(false, p.goHash("#/log?clear=1"))
	if h := heads(); !slices.Equal(h, []string{"Time", "Event", "Actor", "Resource", "IP", "Details"}) {
		t.Fatalf("default columns %q", h)
	}
	p.run(chromedp.Click(css("#columns-button")), chromedp.WaitVisible(css("#col-ip")),
		chromedp.Click(css("#col-ip")), chromedp.Click(css("#col-trace")),
		chromedp.Click(css(`button[aria-label="Move Actor left"]`)))
	want := []string{"Time", "Actor", "Event", "Resource", "Details", "Trace"}
	if h := heads(); !slices.Equal(h, want) {
		t.Fatalf("chosen columns %q, want %q", h, want)
	}
	p.reloadLog()
	if h := heads(); !slices.Equal(h, want) {
		t.Fatalf("after a reload the columns are %q, want %q", h, want)
	}
	p.shot("columns")
	p.run(js(`localStorage.removeItem('auditstore.columns')`))
	p.reloadLog()
	p.after(false, p.goHash("#/log")) // leave the fragment the next subtest sets
}

func testStreams(t *testing.T, s *servertest.Server, p *page, admin string) {
	p.run(p.goHash("#/streams"), chromedp.WaitVisible(css("#stream-new")))
	p.waitJS(`document.body.dataset.ready === '/streams'`)
	p.run(chromedp.Click(css("#stream-new")), chromedp.WaitVisible(css("#stream-form")),
		chromedp.SetValue(css("#stream-name"), "siem"),
		chromedp.SetValue(css("#stream-provider"), "custom"),
		chromedp.SetValue(css("#stream-config"), `{"url": "http://127.0.0.1:9/ingest"}`),
		chromedp.SetValue(css("#stream-types"), "secret.delete"),
		chromedp.Click(css("#stream-save")))
	p.waitJS(`document.querySelector('#streams-table tr[data-id]')`)
	p.run(chromedp.Click(css(`#streams-table tr[data-id] button.pause`)))
	p.waitJS(`document.querySelector('#streams-table tr[data-id] .state').textContent === 'paused'`)
	p.run(chromedp.Click(css(`#streams-table tr[data-id] button.test`)))
	p.waitJS(`/Test (failed|delivered)/.test(document.getElementById('streams-msg').textContent)`)
	// Edit: rename it and widen its event types.
	p.run(chromedp.Click(css(`#streams-table tr[data-id] button.edit`)), chromedp.WaitVisible(css("#stream-form")),
		chromedp.SetValue(css("#stream-name"), "siem-edited"),
		chromedp.SetValue(css("#stream-types"), "secret.delete, user.login"),
		chromedp.Click(css("#stream-save")))
	p.waitJS(`document.getElementById('streams-msg').textContent === 'Saved' && document.querySelector('#streams-table tr[data-id] td').textContent === 'siem-edited'`)
	code, body := s.JSON(t, "GET", "/v1/streams", admin, nil)
	list, _ := body["streams"].([]any)
	if code != 200 || len(list) != 1 {
		t.Fatalf("GET /v1/streams: %d %v", code, body)
	}
	st := list[0].(map[string]any)
	types, _ := st["filter"].(map[string]any)["eventTypes"].([]any)
	if st["name"] != "siem-edited" || fmt.Sprint(types) != "[secret.delete user.login]" || st["paused"] != true {
		t.Fatalf("the edited stream reads %v", st)
	}
	p.shot("streams")
	p.run(p.goHash("#/log"))
}

func testViewer(t *testing.T, s *servertest.Server, b context.Context, keys map[string]string) {
	grant := map[string]any{"viewerId": "customer-user-7", "filters": map[string]string{"resourceType": "secret", "resourceId": "s3"},
		"capabilities": []string{"read", "export"}}
	code, tok := s.JSON(t, "POST", "/v1/viewer-tokens", keys["admin"], grant)
	if code != 201 {
		t.Fatalf("viewer token: %d %v", code, tok)
	}
	if code, _ := s.JSON(t, "POST", "/v1/viewer-tokens", keys["read"], grant); code != 403 {
		t.Fatalf("a read key asked a viewer token: %d, want 403", code)
	}
	p := tab(t, b, s.Base, shots(t))
	p.run(chromedp.Navigate(s.Base + "/#viewer-token=" + tok["token"].(string)))
	p.waitJS(`+(document.body.dataset.loads||0) > 0 && +(document.body.dataset.summaries||0) > 0`)
	var hash string
	p.eval(`location.hash`, &hash)
	if strings.Contains(hash, "avt_") {
		t.Fatalf("the viewer token stays in the URL: %s", hash)
	}
	want, _, _ := apiList(t, s, keys["read"], "/v1/events?resourceType=secret&resourceId=s3")
	sameIDs(t, "viewer's events", p.rows(), want)
	p.shot("viewer")
	// Widening through the UI shows nothing beyond the scope.
	apply(p, map[string]string{"f-resourceId": "s1"})
	if r := p.rows(); len(r) != 0 {
		t.Fatalf("a viewer bound to s3 sees %d events of s1", len(r))
	}
	// And through the API with its session.
	var session string
	p.eval(`sessionStorage.getItem('auditstore.credential')`, &session)
	if !strings.HasPrefix(session, "avs_") {
		t.Fatalf("viewer session %q", session)
	}
	for _, q := range []string{"resourceId=s1", "resourceType=secret&resourceId=s1", "eventType=secret.create", ""} {
		ids, _, _ := apiList(t, s, session, "/v1/events?"+q)
		for _, id := range ids {
			if !slices.Contains(want, id) {
				t.Fatalf("viewer session, %q: event %s outside its scope", q, id)
			}
		}
	}
	// Aggregates and the event-type counts hold only the scope too.
	// (s3's events are carol's and the ci-bot service's, which has no email.)
	code, out := s.Do(t, "GET", "/v1/aggregates?groupBy=actorEmail", session, nil)
	var agg struct {
		Groups []struct {
			ActorEmail string
			Count      int
		}
	}
	if err := json.Unmarshal(out, &agg); code != 200 || err != nil {
		t.Fatalf("viewer aggregates: %d %s", code, out)
	}
	sum := 0
	for _, g := range agg.Groups {
		if g.ActorEmail != "carol@example.com" && g.ActorEmail != "" {
			t.Fatalf("viewer aggregates show %s, outside the scope", g.ActorEmail)
		}
		sum += g.Count
	}
	if sum != len(want) {
		t.Fatalf("viewer aggregates count %d events, want %d", sum, len(want))
	}
	var types struct{ EventTypes []struct{ Count int } }
	_, out = s.Do(t, "GET", "/v1/event-types", session, nil)
	_ = json.Unmarshal(out, &types)
	n := 0
	for _, et := range types.EventTypes {
		n += et.Count
	}
	if n != len(want) {
		t.Fatalf("viewer event-type counts sum to %d, want %d", n, len(want))
	}
	if code, _ := s.Do(t, "GET", "/v1/events/00000000-0000-4000-8000-000000000000", session, nil); code != 404 {
		t.Fatalf("viewer reads an event of s1 by id: %d, want 404", code)
	}
	if code, _ := s.Do(t, "GET", "/v1/export?format=csv&resourceId=s1", session, nil); code != 200 {
		t.Fatalf("viewer export: %d", code)
	} else if _, out := s.Do(t, "GET", "/v1/export?format=ndjson&resourceId=s1", session, nil); len(out) != 0 {
		t.Fatalf("viewer export of s1: %d bytes, want none", len(out))
	}
	// The token was one-time (in the UI too); the session start was audited.
	if code, _ := s.JSON(t, "POST", "/v1/viewer-sessions", "", map[string]string{"token": tok["token"].(string)}); code != 401 {
		t.Fatalf("second exchange: %d, want 401", code)
	}
	again := tab(t, b, s.Base, shots(t))
	again.run(chromedp.Navigate(s.Base + "/#viewer-token=" + tok["token"].(string)))
	again.waitJS(`/Viewer sign-in failed/.test(document.getElementById('signin-error').textContent)`)
	var signedIn bool
	again.eval(`!!sessionStorage.getItem('auditstore.credential') || !document.getElementById('log').hidden`, &signedIn)
	if signedIn {
		t.Fatal("a used viewer token signed a tab in")
	}
	code, out = s.Do(t, "GET", "/v1/events?eventType=audit-log.viewer-session", keys["read"], nil)
	if code != 200 || !bytes.Contains(out, []byte(`"viewerId":"customer-user-7"`)) || !bytes.Contains(out, []byte(`"resourceId":"s3"`)) {
		t.Fatalf("viewer session not audited: %d %s", code, out)
	}
	// Revoked: refused at once.
	if code, _ := s.Do(t, "DELETE", "/v1/viewer-sessions/"+tok["id"].(string), keys["admin"], nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := s.Do(t, "GET", "/v1/events", session, nil); code != 401 {
		t.Fatalf("revoked session: %d, want 401", code)
	}
}
