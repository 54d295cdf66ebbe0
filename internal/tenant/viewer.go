package tenant

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// Embedded viewers (the viewer model of Retraced and WorkOS): an org's
// backend, holding an admin key, asks for a short-lived token for one of its
// users, optionally bound to fixed filters and capabilities. The console
// exchanges the token, once, for a session the server can revoke and
// expire. A token reads "avt_<id>_<secret>", its session "avs_<id>_<secret>",
// both shaped like API keys; only hashes of the secrets are stored.
//
// The exchange is one-time across instances without a coordination
// service: the session's secret is derived from the token's
// (HMAC-SHA256 keyed by a random salt stored with the token and never given
// out, so a token leaked after its exchange opens nothing), and its audit
// record has an id and a time derived from the token. Two instances racing
// on one token therefore open the same session and write the same record,
// which the events table folds into one (same org, time and id); an
// exchange after the first one is written is refused.
const (
	viewerTokenPrefix   = "avt_"
	viewerSessionPrefix = "avs_"

	// DefaultViewerTTL and MaxViewerTTL bound a token's life; its session
	// ends when the token would have.
	DefaultViewerTTL = 15 * time.Minute
	MaxViewerTTL     = time.Hour

	maxViewerIDBytes    = 256
	maxScopeValueBytes  = 1024
	viewerCapRead       = "read"
	viewerCapExport     = "export"
	maxViewerCacheItems = 10000
)

// viewerRecord is a token and, once exchanged, its session.
type viewerRecord struct {
	ID, OrgID, UserID string
	Scope             map[schema.Field][]string
	Caps              []string
	TokenHash         string
	SessionHash       string
	SessionSalt       string // the HMAC key of the session secret
	CreatedAt         time.Time
	ExpiresAt         time.Time
	ExchangedAt       *time.Time
	RevokedAt         *time.Time
}

// ViewerGrant is what an admin asks a viewer token for.
type ViewerGrant struct {
	ViewerID     string            `json:"viewerId"`
	TTLSeconds   int               `json:"ttlSeconds"`
	Filters      map[string]string `json:"filters"`
	Capabilities []string          `json:"capabilities"`
}

// ViewerToken is a viewer token's description, without secrets.
type ViewerToken struct {
	ID           string            `json:"id"`
	ViewerID     string            `json:"viewerId"`
	Filters      map[string]string `json:"filters"`
	Capabilities []string          `json:"capabilities"`
	ExpiresAt    time.Time         `json:"expiresAt"`
}

func (r viewerRecord) describe() ViewerToken {
	f := map[string]string{}
	for k, vs := range r.Scope {
		if len(vs) > 0 {
			f[string(k)] = vs[0]
		}
	}
	return ViewerToken{ID: r.ID, ViewerID: r.UserID, Filters: f, Capabilities: r.Caps, ExpiresAt: r.ExpiresAt}
}

func invalidGrant(field, msg string) error {
	return schema.Invalid("invalid_viewer_token", field+": "+msg,
		schema.FieldError{Index: -1, Field: field, Code: "invalid", Message: msg})
}

// check validates a grant and returns the record it asks for.
func (g ViewerGrant) check(org string, now time.Time) (viewerRecord, error) {
	r := viewerRecord{OrgID: org, UserID: g.ViewerID, Scope: map[schema.Field][]string{}, CreatedAt: now}
	if g.ViewerID == "" || len(g.ViewerID) > maxViewerIDBytes || !utf8.ValidString(g.ViewerID) || hasCtl(g.ViewerID) {
		return r, invalidGrant("viewerId", fmt.Sprintf("the id of your user is required: 1 to %d bytes of text", maxViewerIDBytes))
	}
	ttl := DefaultViewerTTL
	if g.TTLSeconds != 0 {
		ttl = time.Duration(g.TTLSeconds) * time.Second
		if ttl < time.Minute || ttl > MaxViewerTTL {
			return r, invalidGrant("ttlSeconds", "must be from 60 to 3600")
		}
	}
	r.ExpiresAt = now.Add(ttl)
	for k, v := range g.Filters {
		f := schema.Field(k)
		if !slices.Contains(schema.ScopeFields, f) {
			return r, invalidGrant("filters."+truncateName(k), "may fix only resourceType, resourceId, projectId and actorId")
		}
		if v == "" || len(v) > maxScopeValueBytes || !utf8.ValidString(v) || hasCtl(v) ||
			(f == schema.FieldResourceType && !schema.ValidEventType(v)) {
			return r, invalidGrant("filters."+k, "must be a non-empty value without control characters")
		}
		r.Scope[f] = []string{v}
	}
	caps := g.Capabilities
	if caps == nil {
		caps = []string{viewerCapRead}
	}
	for _, c := range caps {
		if c != viewerCapRead && c != viewerCapExport {
			return r, invalidGrant("capabilities", "each must be read or export")
		}
		if !slices.Contains(r.Caps, c) {
			r.Caps = append(r.Caps, c)
		}
	}
	slices.Sort(r.Caps)
	return r, nil
}

func hasCtl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func truncateName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// newViewerSecret returns a token or session string under prefix for id and
// the hash to store.
func newViewerSecret(prefix, id string) (token, hash string) {
	var secret [32]byte
	mustRand(secret[:])
	s := base64.RawURLEncoding.EncodeToString(secret[:])
	return prefix + id + "_" + s, hashSecret(s)
}

// viewerSessionSecret derives a token's session secret (43 characters,
// shaped like every other secret) from the token's secret and its salt.
func viewerSessionSecret(salt, tokenSecret string) string {
	m := hmac.New(sha256.New, []byte(salt))
	m.Write([]byte("auditstore viewer session\x00" + tokenSecret))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// viewerEventNamespace names the ids of viewer-session records.
var viewerEventNamespace = uuid.MustParse("6f1c2b7e-4d3a-4f43-9a51-3c0de2a1b7a9")

// viewerEventID is the id of the audit record of session id's start: the
// same on every instance.
func viewerEventID(id string) string {
	return uuid.NewSHA1(viewerEventNamespace, []byte(schema.TypeViewerSession+"/"+id)).String()
}

// parseViewerSecret splits a viewer token string of prefix into its id and
// its secret.
func parseViewerSecret(prefix, token string) (id, secret string, ok bool) {
	if id, _, ok = parseViewer(prefix, token); !ok {
		return "", "", false
	}
	return id, token[len(token)-secretLen:], true
}

// parseViewer splits a viewer token or session string of prefix.
func parseViewer(prefix, token string) (id, hash string, ok bool) {
	if !strings.HasPrefix(token, prefix) {
		return "", "", false
	}
	return parseToken(tokenPrefix + strings.TrimPrefix(token, prefix))
}

var (
	errViewerRefused = &schema.Error{Kind: schema.KindUnauthenticated, Code: "invalid_credential",
		Message: "unknown, expired, revoked or already used viewer token"}
	errViewerSession = &schema.Error{Kind: schema.KindUnauthenticated, Code: "invalid_credential",
		Message: "unknown, expired or revoked viewer session"}
)

// viewerCache keeps viewer records read from ClickHouse for a short while:
// a session revoked on another instance is refused here within about the
// refresh interval, as keys are.
type viewerCache struct {
	mu    sync.Mutex
	items map[string]viewerEntry
}

type viewerEntry struct {
	rec    viewerRecord
	found  bool
	loaded time.Time
}

func (c *viewerCache) put(id string, e viewerEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil || len(c.items) >= maxViewerCacheItems {
		c.items = map[string]viewerEntry{}
	}
	c.items[id] = e
}

func (c *viewerCache) get(id string, now time.Time, ttl time.Duration) (viewerEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[id]
	if !ok || now.Sub(e.loaded) > ttl {
		return viewerEntry{}, false
	}
	return e, true
}

func (s *Service) viewerRecord(ctx context.Context, id string) (viewerRecord, bool, error) {
	now := s.now()
	if e, ok := s.viewers.get(id, now, s.cfg.RefreshInterval); ok {
		return e.rec, e.found, nil
	}
	r, found, err := s.store.viewer(ctx, id)
	if err != nil {
		return r, false, fmt.Errorf("look up viewer session: %w", err)
	}
	s.viewers.put(id, viewerEntry{rec: r, found: found, loaded: now})
	return r, found, nil
}

// CreateViewerToken issues a viewer token of org (the caller holds an
// admin key of org).
func (s *Service) CreateViewerToken(ctx context.Context, org string, g ViewerGrant) (ViewerToken, string, error) {
	r, err := g.check(org, s.now())
	if err != nil {
		return ViewerToken{}, "", err
	}
	id, _, _ := newKey()
	token, hash := newViewerSecret(viewerTokenPrefix, id)
	var salt [32]byte
	mustRand(salt[:])
	r.ID, r.TokenHash, r.SessionSalt = id, hash, base64.RawURLEncoding.EncodeToString(salt[:])
	if err := s.store.putViewer(ctx, r, r.CreatedAt); err != nil {
		return ViewerToken{}, "", err
	}
	s.viewers.put(id, viewerEntry{rec: r, found: true, loaded: s.now()})
	return r.describe(), token, nil
}

// ExchangeViewerToken turns a viewer token, once, into a session, and
// records the session's start as an event of the org. Exchanges racing on
// several instances all get the same session and leave one record (see
// the top of this file).
func (s *Service) ExchangeViewerToken(ctx context.Context, a schema.Attribution, token string) (ViewerToken, string, error) {
	id, secret, ok := parseViewerSecret(viewerTokenPrefix, token)
	if !ok {
		return ViewerToken{}, "", errViewerRefused
	}
	hash := hashSecret(secret)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	r, found, err := s.store.viewer(ctx, id) // fresh: the exchange is one-time
	if err != nil {
		return ViewerToken{}, "", fmt.Errorf("look up viewer token: %w", err)
	}
	now := s.now()
	if !found || !equalSecret(hash, r.TokenHash) || r.RevokedAt != nil || r.ExchangedAt != nil || !now.Before(r.ExpiresAt) {
		return ViewerToken{}, "", errViewerRefused
	}
	ss := viewerSessionSecret(r.SessionSalt, secret)
	session := viewerSessionPrefix + id + "_" + ss
	r.SessionHash, r.ExchangedAt = hashSecret(ss), &now
	a.Principal = r.principal()
	md := map[string]any{"viewerId": r.UserID, "sessionId": r.ID, "filters": r.describe().Filters,
		"capabilities": r.Caps, "expiresAt": r.ExpiresAt.UTC().Format(time.RFC3339)}
	// The record's id and time come from the token, so that a racing
	// exchange on another instance writes the same row (its time is the
	// token's issue, which the exchange follows within the token's life).
	e := a.Event(schema.TypeViewerSession, nil, md, r.CreatedAt)
	e.ID = viewerEventID(r.ID)
	// Recorded first: a session that cannot be recorded is not opened.
	if err := s.rec.Record(ctx, r.OrgID, e); err != nil {
		return ViewerToken{}, "", fmt.Errorf("record viewer session: %w", err)
	}
	if err := s.store.putViewer(ctx, r, r.exchangeVersion()); err != nil {
		return ViewerToken{}, "", err
	}
	s.viewers.put(id, viewerEntry{rec: r, found: true, loaded: now})
	return r.describe(), session, nil
}

// RevokeViewer ends a viewer token and its session at once on this
// instance, on others within about the refresh interval.
func (s *Service) RevokeViewer(ctx context.Context, org, id string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	r, found, err := s.store.viewer(ctx, id)
	if err != nil {
		return fmt.Errorf("look up viewer session: %w", err)
	}
	if !found || r.OrgID != org {
		return schema.NotFound("viewer_not_found", "no viewer token or session with this id in your org")
	}
	if r.RevokedAt != nil {
		return nil
	}
	now := s.now()
	r.RevokedAt = &now
	version := now
	if floor := r.exchangeVersion().Add(time.Millisecond); version.Before(floor) {
		version = floor // a clock behind the token's instance still revokes
	}
	if err := s.store.putViewer(ctx, r, version); err != nil {
		return err
	}
	s.viewers.put(id, viewerEntry{rec: r, found: true, loaded: now})
	return nil
}

// authenticateViewer resolves a viewer session.
func (s *Service) authenticateViewer(ctx context.Context, token string) (schema.Principal, error) {
	id, hash, ok := parseViewer(viewerSessionPrefix, token)
	if !ok {
		return schema.Principal{}, errMalformed
	}
	r, found, err := s.viewerRecord(ctx, id)
	if err == nil && found && r.SessionHash == "" {
		// Known here before its exchange, which another instance may have
		// made since: read it again.
		if r, found, err = s.store.viewer(ctx, id); err == nil {
			s.viewers.put(id, viewerEntry{rec: r, found: found, loaded: s.now()})
		}
	}
	if err != nil {
		return schema.Principal{}, err
	}
	if !found || r.SessionHash == "" || !equalSecret(hash, r.SessionHash) || r.RevokedAt != nil || !s.now().Before(r.ExpiresAt) {
		return schema.Principal{}, errViewerSession
	}
	return r.principal(), nil
}

// exchangeVersion is the version (updated_at) of an exchanged record: just
// after the token's, whenever and wherever the exchange ran, so that a
// revocation (versioned at its own time, later) wins over an exchange
// written after it by an instance that read the token before it.
func (r viewerRecord) exchangeVersion() time.Time { return r.CreatedAt.Add(time.Millisecond) }

func (r viewerRecord) principal() schema.Principal {
	return schema.Principal{OrgID: r.OrgID, Role: schema.RoleViewer, KeyID: "viewer-" + r.ID, Viewer: &schema.Viewer{
		SessionID: r.ID, UserID: r.UserID, Scope: r.Scope,
		Read: slices.Contains(r.Caps, viewerCapRead), Export: slices.Contains(r.Caps, viewerCapExport),
	}}
}

func (s *store) putViewer(ctx context.Context, r viewerRecord, updated time.Time) error {
	scope, _ := json.Marshal(r.Scope) // a map of strings always marshals
	opt := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return chconn.Time(*t)
	}
	err := s.conn.Exec(params(ctx, clickhouse.Parameters{
		"id": r.ID, "org": r.OrgID, "user": r.UserID, "scope": string(scope), "th": r.TokenHash, "sh": r.SessionHash, "salt": r.SessionSalt,
		"c": chconn.Time(r.CreatedAt), "e": chconn.Time(r.ExpiresAt), "x": opt(r.ExchangedAt), "r": opt(r.RevokedAt), "u": chconn.Time(updated)}),
		`INSERT INTO viewer_sessions (id, org_id, user_id, scope, capabilities, token_hash, session_hash, session_salt,
		   created_at, expires_at, exchanged_at, revoked_at, updated_at)
		 VALUES ({id:String}, {org:String}, {user:String}, {scope:String}, `+capsLiteral(r.Caps)+`, {th:String}, {sh:String}, {salt:String},
		         {c:DateTime64(3, 'UTC')}, {e:DateTime64(3, 'UTC')},
		         if({x:String} = '', NULL, parseDateTime64BestEffort({x:String}, 3, 'UTC')),
		         if({r:String} = '', NULL, parseDateTime64BestEffort({r:String}, 3, 'UTC')),
		         {u:DateTime64(3, 'UTC')})`)
	if err != nil {
		return fmt.Errorf("write viewer session: %w", err)
	}
	return nil
}

// capsLiteral renders capabilities, which check allows only from a fixed
// list, as an array literal.
func capsLiteral(caps []string) string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		if c == viewerCapRead || c == viewerCapExport {
			out = append(out, "'"+c+"'")
		}
	}
	return "CAST([" + strings.Join(out, ", ") + "] AS Array(String))"
}

func (s *store) viewer(ctx context.Context, id string) (viewerRecord, bool, error) {
	rows, err := s.conn.Query(params(ctx, clickhouse.Parameters{"id": id}),
		`SELECT id, org_id, user_id, scope, capabilities, token_hash, session_hash, session_salt, created_at, expires_at, exchanged_at, revoked_at
		 FROM viewer_sessions FINAL WHERE id = {id:String}`)
	if err != nil {
		return viewerRecord{}, false, err
	}
	defer rows.Close()
	var r viewerRecord
	found := false
	for rows.Next() {
		var scope string
		if err := rows.Scan(&r.ID, &r.OrgID, &r.UserID, &scope, &r.Caps, &r.TokenHash, &r.SessionHash, &r.SessionSalt,
			&r.CreatedAt, &r.ExpiresAt, &r.ExchangedAt, &r.RevokedAt); err != nil {
			return viewerRecord{}, false, err
		}
		if err := json.Unmarshal([]byte(scope), &r.Scope); err != nil {
			return viewerRecord{}, false, fmt.Errorf("viewer %s: scope: %w", id, err)
		}
		found = true
	}
	return r, found, rows.Err()
}
