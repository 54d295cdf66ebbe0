package tenant

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/internal/httpx"
	"github.com/auditstore/auditstore/schema"
)

// viewerEnv adds the viewer routes and an endpoint answering the caller's
// scope to the tenant test env.
func viewerEnv(t *testing.T) *env {
	e := newEnv(t)
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	r := gin.New()
	r.Use(httpx.Errors(log))
	api := r.Group("", e.svc.Middleware())
	e.svc.Routes(api)
	e.svc.ViewerRoutes(r, api)
	api.GET("/v1/events", Require(schema.PermReadEvents), func(c *gin.Context) {
		p, _ := schema.PrincipalFrom(c.Request.Context())
		c.JSON(http.StatusOK, gin.H{"org": p.OrgID, "role": p.Role, "scope": p.Viewer.Scope, "user": p.Viewer.UserID})
	})
	api.GET("/v1/export", Require(schema.PermExport), func(c *gin.Context) { c.Status(http.StatusOK) })
	e.h = r
	return e
}

func TestViewerTokenLifecycle(t *testing.T) {
	e := viewerEnv(t)
	e.mustOrg(t, "acme", "pro")
	e.mustOrg(t, "other", "pro")
	_, admin := e.mustKey(t, "acme", "admin")
	_, read := e.mustKey(t, "acme", "read")
	_, otherAdmin := e.mustKey(t, "other", "admin")
	grant := map[string]any{"viewerId": "user-7", "filters": map[string]string{"resourceType": "secret", "resourceId": "s3"}}

	for name, c := range map[string]struct {
		token string
		body  any
		code  int
	}{
		"read key":        {read, grant, 403},
		"operator":        {adminToken, grant, 403},
		"ttl too long":    {admin, map[string]any{"viewerId": "u", "ttlSeconds": 7200}, 400},
		"no viewer":       {admin, map[string]any{"filters": map[string]string{"projectId": "p"}}, 400},
		"unbindable":      {admin, map[string]any{"viewerId": "u", "filters": map[string]string{"eventType": "x"}}, 400},
		"bad capability":  {admin, map[string]any{"viewerId": "u", "capabilities": []string{"admin"}}, 400},
		"unknown field":   {admin, map[string]any{"viewerId": "u", "org": "other"}, 400},
		"control in user": {admin, map[string]any{"viewerId": "u\n"}, 400},
	} {
		if code, body := e.do(t, "POST", "/v1/viewer-tokens", c.token, c.body); code != c.code {
			t.Errorf("%s: %d %v, want %d", name, code, body, c.code)
		}
	}

	code, tok := e.do(t, "POST", "/v1/viewer-tokens", admin, grant)
	if code != 201 || !strings.HasPrefix(tok["token"].(string), "avt_") {
		t.Fatalf("create: %d %v", code, tok)
	}
	exp, _ := time.Parse(time.RFC3339Nano, tok["expiresAt"].(string))
	if d := time.Until(exp); d < 14*time.Minute || d > 15*time.Minute {
		t.Fatalf("default ttl gives expiry in %s, want 15m", d)
	}
	// The token itself is not a credential for reads.
	if code, _ := e.do(t, "GET", "/v1/events", tok["token"].(string), nil); code != 401 {
		t.Fatalf("token used as credential: %d, want 401", code)
	}
	code, ses := e.do(t, "POST", "/v1/viewer-sessions", "", map[string]string{"token": tok["token"].(string)})
	if code != 201 {
		t.Fatalf("exchange: %d %v", code, ses)
	}
	session := ses["session"].(string)
	if code, _ := e.do(t, "POST", "/v1/viewer-sessions", "", map[string]string{"token": tok["token"].(string)}); code != 401 {
		t.Fatalf("second exchange: %d, want 401", code)
	}
	code, who := e.do(t, "GET", "/v1/events", session, nil)
	if code != 200 || who["org"] != "acme" || who["user"] != "user-7" || who["role"] != "viewer" {
		t.Fatalf("session reads as %d %v", code, who)
	}
	scope := who["scope"].(map[string]any)
	if len(scope) != 2 || scope["resourceId"].([]any)[0] != "s3" {
		t.Fatalf("scope %v", scope)
	}
	// No export capability asked: refused.
	if code, _ := e.do(t, "GET", "/v1/export", session, nil); code != 403 {
		t.Fatalf("export without the capability: %d, want 403", code)
	}
	// A viewer manages nothing.
	if code, _ := e.do(t, "POST", "/v1/viewer-tokens", session, grant); code != 403 {
		t.Fatalf("viewer creates tokens: %d, want 403", code)
	}
	// The session start is an event of the org.
	rows, err := e.db.Conn.Query(context.Background(),
		"SELECT actor_id, event_metadata FROM events WHERE org_id = 'acme' AND event_type = 'audit-log.viewer-session'")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var actor, md string
		if err := rows.Scan(&actor, &md); err != nil {
			t.Fatal(err)
		}
		if actor != "user-7" || !strings.Contains(md, `"resourceId":"s3"`) {
			t.Fatalf("audit event actor=%q metadata=%s", actor, md)
		}
		n++
	}
	rows.Close()
	if n != 1 {
		t.Fatalf("viewer-session events=%d, want 1", n)
	}
	// Revocation: another org's admin cannot; this org's can, at once.
	if code, _ := e.do(t, "DELETE", "/v1/viewer-sessions/"+tok["id"].(string), otherAdmin, nil); code != 404 {
		t.Fatalf("other org revokes: %d, want 404", code)
	}
	if code, _ := e.do(t, "DELETE", "/v1/viewer-sessions/"+tok["id"].(string), admin, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := e.do(t, "GET", "/v1/events", session, nil); code != 401 {
		t.Fatalf("revoked session: %d, want 401", code)
	}
	// A forged session secret is refused.
	if code, _ := e.do(t, "GET", "/v1/events", session[:len(session)-4]+"AAAA", nil); code != 401 {
		t.Fatalf("forged session: %d, want 401", code)
	}
}

func TestViewerExpiry(t *testing.T) {
	e := viewerEnv(t)
	e.mustOrg(t, "acme", "pro")
	_, admin := e.mustKey(t, "acme", "admin")
	now := time.Now()
	e.svc.now = func() time.Time { return now }
	mint := func() string {
		code, tok := e.do(t, "POST", "/v1/viewer-tokens", admin, map[string]any{"viewerId": "u", "ttlSeconds": 60, "capabilities": []string{"read", "export"}})
		if code != 201 {
			t.Fatalf("create: %d %v", code, tok)
		}
		return tok["token"].(string)
	}
	late := mint()
	fresh := mint()
	code, ses := e.do(t, "POST", "/v1/viewer-sessions", "", map[string]string{"token": fresh})
	if code != 201 {
		t.Fatalf("exchange: %d %v", code, ses)
	}
	if code, _ := e.do(t, "GET", "/v1/export", ses["session"].(string), nil); code != 200 {
		t.Fatalf("export with the capability: %d", code)
	}
	now = now.Add(61 * time.Second)
	if code, _ := e.do(t, "POST", "/v1/viewer-sessions", "", map[string]string{"token": late}); code != 401 {
		t.Fatalf("expired token exchanged: %d, want 401", code)
	}
	if code, _ := e.do(t, "GET", "/v1/events", ses["session"].(string), nil); code != 401 {
		t.Fatalf("expired session: %d, want 401", code)
	}
}

// TestViewerExchangeIsOneTimeAcrossInstances: exchanges of one token racing
// on two instances over one database open one session and leave one audit
// record; any later exchange, on either, is refused; the session cannot be
// computed from the token alone.
func TestViewerExchangeIsOneTimeAcrossInstances(t *testing.T) {
	e := viewerEnv(t)
	e.mustOrg(t, "acme", "pro")
	_, admin := e.mustKey(t, "acme", "admin")
	nodes := []*Service{e.svc, e.fresh(t)}
	ctx := context.Background()
	for round := range 5 {
		code, tok := e.do(t, "POST", "/v1/viewer-tokens", admin, map[string]any{"viewerId": fmt.Sprintf("user-%d", round)})
		if code != 201 {
			t.Fatalf("create: %d %v", code, tok)
		}
		token := tok["token"].(string)
		sessions := make([]string, len(nodes))
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, sessions[i], errs[i] = n.ExchangeViewerToken(ctx, schema.Attribution{IPAddress: "203.0.113.9"}, token)
			}()
		}
		close(start)
		wg.Wait()
		var opened []string
		for i, err := range errs {
			switch {
			case err == nil:
				opened = append(opened, sessions[i])
			case schema.KindOf(err) != schema.KindUnauthenticated:
				t.Fatalf("round %d: node %d: %v", round, i, err)
			}
		}
		if len(opened) == 0 || (len(opened) == 2 && opened[0] != opened[1]) {
			t.Fatalf("round %d: sessions opened %q, want one session", round, opened)
		}
		for i, n := range nodes {
			if _, err := n.Authenticate(ctx, opened[0]); err != nil {
				t.Fatalf("round %d: node %d refuses the session: %v", round, i, err)
			}
			if _, _, err := n.ExchangeViewerToken(ctx, schema.Attribution{}, token); schema.KindOf(err) != schema.KindUnauthenticated {
				t.Fatalf("round %d: node %d: exchange after the first: %v, want refused", round, i, err)
			}
		}
		if n := e.count(t, "SELECT count() FROM events FINAL WHERE org_id = 'acme' AND event_type = 'audit-log.viewer-session' AND actor_id = {u:String}",
			clickhouse.Parameters{"u": fmt.Sprintf("user-%d", round)}); n != 1 {
			t.Fatalf("round %d: viewer-session records=%d, want 1", round, n)
		}
		// The session is not the token's secret hashed without the salt.
		id, secret, _ := parseViewerSecret(viewerTokenPrefix, token)
		if _, err := e.svc.Authenticate(ctx, viewerSessionPrefix+id+"_"+viewerSessionSecret("", secret)); err == nil {
			t.Fatalf("round %d: a session computed without the salt is accepted", round)
		}
	}
}

// TestViewerRevocationWinsOverALateExchange: an exchange written after a
// revocation (by an instance that read the token before it) does not
// bring the session back.
func TestViewerRevocationWinsOverALateExchange(t *testing.T) {
	e := viewerEnv(t)
	e.mustOrg(t, "acme", "pro")
	_, admin := e.mustKey(t, "acme", "admin")
	ctx := context.Background()
	code, tok := e.do(t, "POST", "/v1/viewer-tokens", admin, map[string]any{"viewerId": "user-1"})
	if code != 201 {
		t.Fatalf("create: %d %v", code, tok)
	}
	id, secret, _ := parseViewerSecret(viewerTokenPrefix, tok["token"].(string))
	stale, _, err := e.svc.store.viewer(ctx, id) // read before the revocation
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := e.do(t, "DELETE", "/v1/viewer-sessions/"+id, admin, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	// The late exchange, as ExchangeViewerToken writes it.
	ss := viewerSessionSecret(stale.SessionSalt, secret)
	now := time.Now()
	stale.SessionHash, stale.ExchangedAt = hashSecret(ss), &now
	if err := e.svc.store.putViewer(ctx, stale, stale.exchangeVersion()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fresh(t).Authenticate(ctx, viewerSessionPrefix+id+"_"+ss); schema.KindOf(err) != schema.KindUnauthenticated {
		t.Fatalf("session of a revoked token after a late exchange: %v, want refused", err)
	}
}
