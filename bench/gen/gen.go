// Package gen generates realistic audit events for benchmarks: many orgs of
// Zipf-skewed sizes on mixed plans, each with its own actors (users,
// services, machine identities, API keys, each busy to a Zipf-skewed
// degree), projects, resources and client addresses; a weighted catalog of
// event types in several naming styles with metadata of a few hundred
// bytes; traces that group an actor's consecutive actions; a small share of
// re-sent events. Events come in time order over the configured span and
// are deterministic for a seed.
package gen

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

// Config says what to generate.
type Config struct {
	// Seed makes the output reproducible.
	Seed uint64
	// Orgs is the number of orgs. Default 120.
	Orgs int
	// Events is the number of events. Default 1,000,000.
	Events int
	// Span is the time the events cover, ending at End. Default 90 days.
	Span time.Duration
	// End is the newest timestamp. Default: now, to the millisecond.
	End time.Time
	// OrgSkew is the Zipf exponent of org sizes: org k gets a share
	// proportional to 1/k^OrgSkew. Default 1.0 (the largest of 120 orgs
	// holds about 19% of the events).
	OrgSkew float64
	// ResendRate is the share of events sent a second time, identically
	// (a client retry after a lost acknowledgment). Default 0.002.
	ResendRate float64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Seed: 1, Orgs: 120, Events: 1_000_000, Span: 90 * 24 * time.Hour, OrgSkew: 1.0, ResendRate: 0.002}
}

// Validate reports a configuration that cannot generate.
func (c Config) Validate() error {
	switch {
	case c.Orgs < 1 || c.Events < 1:
		return errors.New("gen: orgs and events must be positive")
	case c.Span <= 0:
		return errors.New("gen: span must be positive")
	case c.OrgSkew < 0 || c.ResendRate < 0 || c.ResendRate >= 1:
		return errors.New("gen: skew must not be negative, resend rate within [0, 1)")
	}
	return nil
}

// Org is a generated tenant.
type Org struct {
	ID   string
	Plan schema.Plan
	// Share is the expected fraction of all events that are this org's.
	Share float64

	actors    []actor
	actorPick *rand.Zipf
	projects  []string
	resPick   *rand.Zipf
	resources int
}

type actor struct {
	typ, id, email, username, name string
	uaType, ua                     string
	ips                            []string
	project                        int
	trace                          string
	traceLeft                      int
}

// Item is one generated event: the wire event of an org and when the
// store received it.
type Item struct {
	Org      *Org
	Event    schema.Event
	Received time.Time
	// Resent marks the second copy of an earlier event.
	Resent bool
}

// Row is the stored form of the item.
func (it *Item) Row() schema.Row {
	return schema.NewRow(&it.Event, it.Org.ID, it.Received, it.Org.Plan)
}

// Generator produces events in time order.
type Generator struct {
	cfg      Config
	rng      *rand.Rand
	orgs     []*Org
	cdf      []float64
	start    time.Time
	step     float64 // nanoseconds between consecutive events
	n        int
	recent   []Item
	kindCDF  []int
	kindSum  int
	metaBuf  []byte
	resendAt int
}

// Plans of the generated orgs: mostly pro, large ones often enterprise,
// small ones sometimes free.
var (
	planFree       = schema.Plan{Name: "free", Retention: 7 * 24 * time.Hour}
	planPro        = schema.Plan{Name: "pro", Retention: 90 * 24 * time.Hour}
	planEnterprise = schema.Plan{Name: "enterprise", Retention: 365 * 24 * time.Hour}
)

// New returns a generator for cfg.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.End.IsZero() {
		cfg.End = time.Now().UTC().Truncate(time.Millisecond)
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		start: cfg.End.Add(-cfg.Span), step: float64(cfg.Span) / float64(cfg.Events)}
	total := 0.0
	for k := 1; k <= cfg.Orgs; k++ {
		total += 1 / math.Pow(float64(k), cfg.OrgSkew)
	}
	acc := 0.0
	for k := 1; k <= cfg.Orgs; k++ {
		share := 1 / math.Pow(float64(k), cfg.OrgSkew) / total
		acc += share
		g.cdf = append(g.cdf, acc)
		g.orgs = append(g.orgs, g.newOrg(k, share))
	}
	for _, k := range catalog {
		g.kindSum += k.weight
		g.kindCDF = append(g.kindCDF, g.kindSum)
	}
	return g, nil
}

// Orgs returns the orgs, largest first.
func (g *Generator) Orgs() []*Org { return g.orgs }

func clamp(v, lo, hi int) int { return max(lo, min(hi, v)) }

func (g *Generator) newOrg(k int, share float64) *Org {
	rng := g.rng
	expected := int(share * float64(g.cfg.Events))
	o := &Org{ID: fmt.Sprintf("org-%03d", k), Share: share, Plan: planPro}
	switch r := rng.IntN(10); {
	case k <= 10 && r < 5, r == 0:
		o.Plan = planEnterprise
	case k > 20 && r >= 8:
		o.Plan = planFree
	}
	for p := range clamp(expected/20000, 1, 50) {
		o.projects = append(o.projects, fmt.Sprintf("prj_%s_%02d", o.ID[4:], p))
	}
	v4 := netip.AddrFrom4([4]byte{byte(10 + k%200), byte(k), 0, 0})
	nActors := clamp(expected/400, 3, 20000)
	for i := range nActors {
		a := actor{project: rng.IntN(len(o.projects))}
		switch r := rng.IntN(20); {
		case r < 12:
			a.typ, a.id = "user", fmt.Sprintf("usr_%s%05d", o.ID[4:], i)
			first := []string{"ada", "bob", "carol", "dan", "eve", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj"}[rng.IntN(12)]
			a.username = fmt.Sprintf("%s%d", first, i)
			a.name = fmt.Sprintf("%s %c.", first, 'A'+rng.IntN(26))
			a.email = fmt.Sprintf("%s@%s.example.com", a.username, o.ID)
			a.uaType = []string{"web", "web", "web", "cli"}[rng.IntN(4)]
		case r < 16:
			a.typ, a.id, a.name = "service", fmt.Sprintf("svc_%s%04d", o.ID[4:], i), services[rng.IntN(len(services))]
			a.uaType = []string{"node-sdk", "go-sdk", "terraform", "k8-operator"}[rng.IntN(4)]
		case r < 19:
			a.typ, a.id, a.name = "identity", fmt.Sprintf("idn_%s%04d", o.ID[4:], i), "machine-"+services[rng.IntN(len(services))]
			a.uaType = []string{"k8-operator", "cli", "other"}[rng.IntN(3)]
		default:
			a.typ, a.id = "apiKey", fmt.Sprintf("key_%s%04d", o.ID[4:], i)
			a.uaType = "other"
		}
		uas := userAgents[a.uaType]
		a.ua = uas[rng.IntN(len(uas))]
		for range 1 + rng.IntN(3) {
			if rng.IntN(8) == 0 {
				a.ips = append(a.ips, fmt.Sprintf("2001:db8:%x:%x::%x", k, rng.IntN(256), 1+rng.IntN(65535)))
			} else {
				b := v4.As4()
				b[2], b[3] = byte(rng.IntN(256)), byte(1+rng.IntN(254))
				a.ips = append(a.ips, netip.AddrFrom4(b).String())
			}
		}
		o.actors = append(o.actors, a)
	}
	o.actorPick = rand.NewZipf(rng, 1.2, 1, uint64(nActors-1))
	o.resources = clamp(expected/40, 10, 200000)
	o.resPick = rand.NewZipf(rng, 1.1, 1, uint64(o.resources-1))
	return o
}

func (g *Generator) pickOrg() *Org {
	i := sort.SearchFloat64s(g.cdf, g.rng.Float64())
	return g.orgs[min(i, len(g.orgs)-1)]
}

// Next returns the next event; ok is false once Events events (re-sent
// copies included) have been produced.
func (g *Generator) Next() (it Item, ok bool) {
	if g.n >= g.cfg.Events {
		return Item{}, false
	}
	g.n++
	if len(g.recent) > 0 && g.rng.Float64() < g.cfg.ResendRate {
		it = g.recent[g.rng.IntN(len(g.recent))]
		it.Resent = true
		return it, true
	}
	rng := g.rng
	ts := g.start.Add(time.Duration(float64(g.n) * g.step)).Truncate(time.Millisecond)
	o := g.pickOrg()
	a := &o.actors[o.actorPick.Uint64()]
	kind := &catalog[sort.SearchInts(g.kindCDF, 1+rng.IntN(g.kindSum))]
	env := environments[rng.IntN(len(environments))]

	if a.traceLeft == 0 {
		a.trace, a.traceLeft = string(hexID(nil, rng, 32)), 1+rng.IntN(6)
	}
	a.traceLeft--
	e := schema.Event{
		ID:            uuidV7(rng, ts).String(),
		Timestamp:     ts,
		Event:         schema.EventInfo{Type: kind.typ},
		Actor:         schema.Actor{Type: a.typ},
		OrgID:         o.ID,
		IPAddress:     a.ips[rng.IntN(len(a.ips))],
		UserAgent:     a.ua,
		UserAgentType: a.uaType,
		TraceID:       a.trace,
	}
	if p := a.project; rng.IntN(5) > 0 {
		e.ProjectID = o.projects[p]
	} else {
		e.ProjectID = o.projects[rng.IntN(len(o.projects))]
	}
	e.ProjectName = "project " + e.ProjectID[4:]
	if kind.resource != "" {
		r := o.resPick.Uint64()
		e.Resource = &schema.Resource{Type: kind.resource, ID: fmt.Sprintf("%s_%s%06d", kind.resource[:3], o.ID[4:], r),
			Name: secretKeys[r%uint64(len(secretKeys))]}
	}
	g.metaBuf = kind.meta(append(g.metaBuf[:0], '{'), rng, env)
	g.metaBuf = append(g.metaBuf, '}')
	e.Event.Metadata = json.RawMessage(string(g.metaBuf))
	e.Actor.Metadata = actorMeta(a)
	// Most events reach the store within a second; some (queued clients,
	// retries) minutes later.
	lag := time.Duration(rng.IntN(800)) * time.Millisecond
	if rng.IntN(50) == 0 {
		lag = time.Duration(rng.IntN(600)) * time.Second
	}
	it = Item{Org: o, Event: e, Received: ts.Add(lag)}
	if len(g.recent) < 1024 {
		g.recent = append(g.recent, it)
	} else {
		g.recent[rng.IntN(len(g.recent))] = it
	}
	return it, true
}

func actorMeta(a *actor) json.RawMessage {
	b := []byte{'{'}
	switch a.typ {
	case "user":
		b = str(b, "userId", a.id)
		b = str(b, "email", a.email)
		b = str(b, "username", a.username)
		b = str(b, "name", a.name)
	case "service":
		b = str(b, "serviceId", a.id)
		b = str(b, "name", a.name)
	case "identity":
		b = str(b, "identityId", a.id)
		b = str(b, "name", a.name)
	default:
		b = str(b, "keyId", a.id)
	}
	return json.RawMessage(append(b, '}'))
}

// uuidV7 is a time-ordered id, as the ingest path gives events without one.
func uuidV7(rng *rand.Rand, ts time.Time) uuid.UUID {
	var u uuid.UUID
	ms := uint64(ts.UnixMilli())
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	for i := 6; i < 16; i++ {
		u[i] = byte(rng.UintN(256))
	}
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	return u
}
