// Package tenant decides who is calling, for which org, allowed to do what:
// orgs on plans, scoped API keys, the operator's admin token, and the audit
// events that key and org changes leave behind.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// Config configures the tenant service.
type Config struct {
	// AdminToken authenticates the operator. Required; at least 16 bytes.
	AdminToken string
	// Plans are the plans orgs may be on. Required.
	Plans schema.Plans
	// RefreshInterval is how often keys and orgs are re-read from
	// ClickHouse; a key revoked on any server instance is refused by every
	// other instance within about this delay. Default 2s.
	RefreshInterval time.Duration
	// LookupsPerSecond and LookupBurst bound, per client address, the
	// ClickHouse lookups of key ids missing from the cache (a token bucket,
	// at most MaxAddrs addresses remembered); beyond, 429 rate_limited.
	// Defaults 1/s and 20.
	LookupsPerSecond float64
	LookupBurst      int
	// MaxAddrs bounds the addresses the lookup limit remembers. Default 100,000.
	MaxAddrs int
	// MissTTL is how long an unknown key id is remembered as unknown; at
	// most MaxMisses ids are, the least recently used forgotten first.
	// Defaults 10m and 100,000.
	MissTTL   time.Duration
	MaxMisses int
	// DefaultTraceURL is the console's trace link-out template for orgs
	// that set none (GET /v1/settings); see CheckTraceURL. Default "": none.
	DefaultTraceURL string
}

// DefaultConfig returns the defaults; AdminToken remains to be set.
func DefaultConfig() Config {
	return Config{Plans: schema.DefaultPlans(), RefreshInterval: 2 * time.Second,
		LookupsPerSecond: 1, LookupBurst: 20, MaxAddrs: 100_000, MissTTL: 10 * time.Minute, MaxMisses: 100_000}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case len(c.AdminToken) < 16:
		return errors.New("tenant: the admin token must be at least 16 characters")
	case len(c.Plans) == 0:
		return errors.New("tenant: no plans")
	case c.RefreshInterval <= 0:
		return errors.New("tenant: refresh interval must be positive")
	case c.LookupsPerSecond <= 0 || c.LookupBurst < 1 || c.MaxAddrs < 1:
		return errors.New("tenant: lookup rate, burst and max addresses must be positive")
	case c.MissTTL <= 0 || c.MaxMisses < 1:
		return errors.New("tenant: miss TTL and max misses must be positive")
	}
	if err := CheckTraceURL(c.DefaultTraceURL); err != nil {
		return fmt.Errorf("tenant: default trace URL: %w", err)
	}
	return nil
}

// Recorder durably records an audit event of an org (the store's own
// audit trail: key changes, queries, exports).
type Recorder interface {
	// Record returns nil only once the event is durable.
	Record(ctx context.Context, org string, e schema.Event) error
}

// Service is the one place where credentials are resolved. Orgs and keys
// live in ClickHouse and are cached in memory, refreshed every
// RefreshInterval.
type Service struct {
	cfg   Config
	store store
	rec   Recorder
	log   *slog.Logger
	now   func() time.Time

	mu   sync.RWMutex
	orgs map[string]schema.Org
	keys map[string]storedKey
	// Ordering of refreshes and local changes (under mu): gen counts local
	// changes, localOrgs and localKeys hold the gen of each one a running
	// refresh may not have read; started counts refreshes, applied is the
	// latest one applied. See Refresh.
	gen                  uint64
	localOrgs, localKeys map[string]uint64
	started, applied     uint64
	// afterRead, when set (tests), runs between a refresh's read and its apply.
	afterRead func()

	misses  *lru[struct{}] // well-formed key ids ClickHouse does not know
	lookups *addrLimiter   // ClickHouse key lookups per client address

	writeMu sync.Mutex // serializes org and key changes made by this instance

	viewers viewerCache // embedded viewers' sessions (viewer.go)
}

// New returns a service reading conn; call Refresh (or Run) before use.
func New(conn Conn, rec Recorder, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: store{conn: conn}, rec: rec, log: log, now: time.Now,
		orgs: map[string]schema.Org{}, keys: map[string]storedKey{},
		localOrgs: map[string]uint64{}, localKeys: map[string]uint64{},
		misses:  newLRU[struct{}](cfg.MaxMisses, cfg.MissTTL),
		lookups: newAddrLimiter(cfg.LookupsPerSecond, cfg.LookupBurst, cfg.MaxAddrs)}, nil
}

// Refresh re-reads all orgs and keys. What it read may be older than a
// change this instance made meanwhile (a revocation written after the read
// began): such changes are kept over what was read, and a refresh that
// started before one already applied is dropped, so that a refresh never
// brings back a revoked key.
func (s *Service) Refresh(ctx context.Context) error {
	s.mu.Lock()
	s.started++
	seq, gen := s.started, s.gen
	s.mu.Unlock()
	orgs, err := s.store.orgs(ctx)
	if err != nil {
		return err
	}
	keys, err := s.store.allKeys(ctx)
	if err != nil {
		return err
	}
	if s.afterRead != nil {
		s.afterRead()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq < s.applied {
		return nil // a refresh that started later already applied what it read
	}
	keepLocal(s.localOrgs, gen, s.orgs, orgs)
	keepLocal(s.localKeys, gen, s.keys, keys)
	s.orgs, s.keys, s.applied = orgs, keys, seq
	return nil
}

// keepLocal copies into read the entries of cur changed locally after gen
// (the read may predate them), and forgets the older changes: the read,
// which began after them, holds them.
func keepLocal[V any](local map[string]uint64, gen uint64, cur, read map[string]V) {
	for id, g := range local {
		if g > gen {
			read[id] = cur[id]
		} else {
			delete(local, id)
		}
	}
}

// setKey and setOrg record a local change (called with mu held).
func (s *Service) setKey(k storedKey) {
	s.gen++
	s.keys[k.ID], s.localKeys[k.ID] = k, s.gen
}

func (s *Service) setOrg(o schema.Org) {
	s.gen++
	s.orgs[o.ID], s.localOrgs[o.ID] = o, s.gen
}

// Run refreshes every RefreshInterval until ctx ends. A failed refresh keeps
// the previous state and is logged.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := s.Refresh(rctx); err != nil && ctx.Err() == nil {
				s.log.Warn("tenant refresh failed; keeping the previous keys", "error", err)
			}
			cancel()
		}
	}
}

var (
	errNoCredential = &schema.Error{Kind: schema.KindUnauthenticated, Code: "unauthenticated",
		Message: "missing credential: send Authorization: Bearer <API key>"}
	errMalformed = &schema.Error{Kind: schema.KindUnauthenticated, Code: "invalid_credential",
		Message: "malformed credential: want Authorization: Bearer <API key>"}
	errUnknownKey = &schema.Error{Kind: schema.KindUnauthenticated, Code: "invalid_credential",
		Message: "unknown or revoked API key"}
)

// Authenticate resolves a bearer token to a principal, or returns a
// KindUnauthenticated error. Secrets are compared in constant time.
func (s *Service) Authenticate(ctx context.Context, token string) (schema.Principal, error) {
	return s.AuthenticateFrom(ctx, token, "")
}

// AuthenticateFrom is Authenticate for a client at addr: the ClickHouse
// lookups its unknown key ids cause are rate-limited per address (a 429
// rate_limited error beyond); "" is not limited.
func (s *Service) AuthenticateFrom(ctx context.Context, token, addr string) (schema.Principal, error) {
	if token == "" {
		return schema.Principal{}, errNoCredential
	}
	if strings.HasPrefix(token, viewerSessionPrefix) {
		return s.authenticateViewer(ctx, token)
	}
	id, hash, ok := parseToken(token)
	if !ok {
		if equalSecret(token, s.cfg.AdminToken) {
			return schema.Principal{Operator: true}, nil
		}
		return schema.Principal{}, errMalformed
	}
	k, found, err := s.lookupKey(ctx, id, addr)
	if err != nil {
		return schema.Principal{}, err
	}
	if !found || !equalSecret(hash, k.hash) || k.RevokedAt != nil {
		return schema.Principal{}, errUnknownKey
	}
	return schema.Principal{OrgID: k.OrgID, Role: k.Role, KeyID: k.ID}, nil
}

// lookupKey finds a key in the cache or, for a key created on another
// instance since the last refresh, in ClickHouse; ids ClickHouse does not
// know are remembered (MissTTL), and lookups are limited per addr.
func (s *Service) lookupKey(ctx context.Context, id, addr string) (storedKey, bool, error) {
	s.mu.RLock()
	k, ok := s.keys[id]
	s.mu.RUnlock()
	now := s.now()
	if ok {
		return k, true, nil
	}
	if _, missed := s.misses.get(id, now); missed {
		return storedKey{}, false, nil
	}
	if addr != "" {
		if allowed, wait := s.lookups.take(addr, now); !allowed {
			e := schema.TooManyRequests("rate_limited", "too many requests with unknown API keys from your address; retry later")
			e.RetryAfter = max(wait, time.Second)
			return storedKey{}, false, e
		}
	}
	k, ok, err := s.store.key(ctx, id)
	if err != nil {
		return storedKey{}, false, fmt.Errorf("look up api key: %w", err)
	}
	if !ok {
		s.misses.put(id, struct{}{}, now)
		return k, false, nil
	}
	s.mu.Lock()
	if cur, known := s.keys[id]; known {
		k = cur // a refresh or a local change came first, and is newer
	} else {
		s.keys[id] = k
	}
	s.mu.Unlock()
	return k, true, nil
}

// Org returns an org, or a KindNotFound error.
func (s *Service) Org(ctx context.Context, id string) (schema.Org, error) {
	s.mu.RLock()
	o, ok := s.orgs[id]
	s.mu.RUnlock()
	if ok {
		return o, nil
	}
	// Created on another instance since the last refresh?
	if err := s.Refresh(ctx); err != nil {
		return schema.Org{}, err
	}
	s.mu.RLock()
	o, ok = s.orgs[id]
	s.mu.RUnlock()
	if !ok {
		return schema.Org{}, schema.NotFound("org_not_found", fmt.Sprintf("no org %q", id))
	}
	return o, nil
}

// Plan returns the current plan of an org (its events' retention).
func (s *Service) Plan(ctx context.Context, org string) (schema.Plan, error) {
	o, err := s.Org(ctx, org)
	if err != nil {
		return schema.Plan{}, err
	}
	return s.cfg.Plans.Lookup(o.Plan)
}

func checkOrgID(id string) error {
	if !schema.OrgIDPattern.MatchString(id) {
		return schema.Invalid("invalid_org_id", fmt.Sprintf("org id must match %s", schema.OrgIDPattern),
			schema.FieldError{Index: -1, Field: "id", Code: "pattern", Message: "org id must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"})
	}
	return nil
}

// CreateOrg creates an org on a plan; a KindConflict error if it exists.
func (s *Service) CreateOrg(ctx context.Context, a Attribution, id, plan string) (schema.Org, error) {
	if err := checkOrgID(id); err != nil {
		return schema.Org{}, err
	}
	if _, err := s.cfg.Plans.Lookup(plan); err != nil {
		return schema.Org{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.Org(ctx, id); err == nil {
		return schema.Org{}, schema.Conflict("org_exists", fmt.Sprintf("org %q already exists", id))
	} else if schema.KindOf(err) != schema.KindNotFound {
		return schema.Org{}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	o := schema.Org{ID: id, Plan: plan, CreatedAt: now, UpdatedAt: now}
	if err := s.store.putOrg(ctx, o); err != nil {
		return schema.Org{}, err
	}
	s.mu.Lock()
	s.setOrg(o)
	s.mu.Unlock()
	err := s.recordOrUndo(ctx, id, a.event("org.create", &schema.Resource{Type: "org", ID: id}, map[string]any{"plan": plan}),
		func(ctx context.Context) error {
			if err := s.store.deleteOrg(ctx, o); err != nil {
				return err
			}
			s.mu.Lock()
			delete(s.orgs, id)
			s.mu.Unlock()
			return nil
		})
	if err != nil {
		return schema.Org{}, err
	}
	return o, nil
}

// SetPlan moves an org to another plan. Events already stored keep their
// expiry; new events get the new plan's retention.
func (s *Service) SetPlan(ctx context.Context, a Attribution, id, plan string) (schema.Org, error) {
	if _, err := s.cfg.Plans.Lookup(plan); err != nil {
		return schema.Org{}, err
	}
	return s.changeOrg(ctx, a, id, "org.update-plan", func(o *schema.Org) map[string]any {
		old := o.Plan
		o.Plan = plan
		return map[string]any{"plan": plan, "previousPlan": old}
	})
}

// changeOrg applies change to org id as ClickHouse holds it (not the
// cache, so that it keeps what another instance wrote to the other
// fields), stores it with a newer version, and records action with the
// metadata change returns; if that record cannot be written, the previous
// org is put back (recordOrUndo).
func (s *Service) changeOrg(ctx context.Context, a Attribution, id, action string, change func(*schema.Org) map[string]any) (schema.Org, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	o, err := s.freshOrg(ctx, id)
	if err != nil {
		return schema.Org{}, err
	}
	prev := o
	meta := change(&o)
	o.UpdatedAt = s.after(o.UpdatedAt)
	if err := s.store.putOrg(ctx, o); err != nil {
		return schema.Org{}, err
	}
	s.mu.Lock()
	s.setOrg(o)
	s.mu.Unlock()
	err = s.recordOrUndo(ctx, id, a.event(action, &schema.Resource{Type: "org", ID: id}, meta), func(ctx context.Context) error {
		prev.UpdatedAt = s.after(o.UpdatedAt)
		if err := s.store.putOrg(ctx, prev); err != nil {
			return err
		}
		s.mu.Lock()
		s.setOrg(prev)
		s.mu.Unlock()
		return nil
	})
	if err != nil {
		return schema.Org{}, err
	}
	return o, nil
}

// CreateKey creates a key of org with a role; the token is returned only
// here and never stored.
func (s *Service) CreateKey(ctx context.Context, a Attribution, org, role, name string) (schema.APIKey, string, error) {
	r, err := schema.ParseRole(role)
	if err != nil {
		return schema.APIKey{}, "", err
	}
	if len(name) > schema.MaxKeyNameBytes || hasControl(name) {
		return schema.APIKey{}, "", schema.Invalid("invalid_key_name",
			fmt.Sprintf("key name must be at most %d bytes without control characters", schema.MaxKeyNameBytes),
			schema.FieldError{Index: -1, Field: "name", Code: "too_long", Message: "key name too long or with control characters"})
	}
	if _, err := s.Org(ctx, org); err != nil {
		return schema.APIKey{}, "", err
	}
	id, token, hash := newKey()
	now := s.now().UTC().Truncate(time.Millisecond)
	k := storedKey{APIKey: schema.APIKey{ID: id, OrgID: org, Name: name, Role: r, CreatedAt: now}, hash: hash}
	if err := s.store.putKey(ctx, k, now); err != nil {
		return schema.APIKey{}, "", err
	}
	s.mu.Lock()
	s.setKey(k)
	s.mu.Unlock()
	s.misses.remove(id)
	err = s.recordOrUndo(ctx, org, a.event("api-key.create", &schema.Resource{Type: "api-key", ID: id, Name: name},
		map[string]any{"role": string(r), "name": name}), func(ctx context.Context) error {
		if err := s.store.deleteKey(ctx, id); err != nil {
			return err
		}
		s.mu.Lock()
		delete(s.keys, id)
		s.mu.Unlock()
		return nil
	})
	if err != nil {
		return schema.APIKey{}, "", err
	}
	return k.APIKey, token, nil
}

// Keys lists an org's keys, newest first, without secrets.
func (s *Service) Keys(ctx context.Context, org string) ([]schema.APIKey, error) {
	if _, err := s.Org(ctx, org); err != nil {
		return nil, err
	}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	out := []schema.APIKey{}
	for _, k := range s.keys {
		if k.OrgID == org {
			out = append(out, k.APIKey)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeKey revokes a key of org. Revoking a revoked key is a no-op.
func (s *Service) RevokeKey(ctx context.Context, a Attribution, org, id string) error {
	if !validKeyID(id) {
		return schema.NotFound("key_not_found", "no such key")
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	k, ok, err := s.store.key(ctx, id)
	if err != nil {
		return err
	}
	if !ok || k.OrgID != org {
		return schema.NotFound("key_not_found", fmt.Sprintf("org %q has no key %q", org, id))
	}
	if k.RevokedAt != nil {
		return nil
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	k.RevokedAt = &now
	updated := now
	if !updated.After(k.CreatedAt) {
		updated = k.CreatedAt.Add(time.Millisecond)
	}
	if err := s.store.putKey(ctx, k, updated); err != nil {
		return err
	}
	s.mu.Lock()
	s.setKey(k)
	s.mu.Unlock()
	return s.recordOrUndo(ctx, org, a.event("api-key.revoke", &schema.Resource{Type: "api-key", ID: id, Name: k.Name}, nil),
		func(ctx context.Context) error {
			restored := k
			restored.RevokedAt = nil
			if err := s.store.putKey(ctx, restored, s.after(updated)); err != nil {
				return err
			}
			s.mu.Lock()
			s.setKey(restored)
			s.mu.Unlock()
			return nil
		})
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
