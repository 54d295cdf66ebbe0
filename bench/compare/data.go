package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/auditstore/auditstore/bench/gen"
	"github.com/auditstore/auditstore/schema"
)

// Both sides load one deterministic event stream per section, from
// bench/gen: orgs of Zipf-skewed sizes, their actors, projects, resources
// and traces, metadata of a few hundred bytes. No re-sent copies: the
// baseline's primary key (id, createdAt) would refuse them, and the point
// is the same rows on both sides.

// keepPlan is the plan of the rows loaded straight into storage (queries,
// export): a year of retention, so that no row expires during the run and
// both sides hold exactly the same rows.
var keepPlan = schema.Plan{Name: "enterprise", Retention: 365 * 24 * time.Hour}

// newGen returns the generator of a section's events.
func newGen(seed uint64, events, orgs int, span time.Duration, end time.Time) *gen.Generator {
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Orgs, cfg.Span, cfg.End, cfg.ResendRate = seed, events, orgs, span, end, 0
	g, err := gen.New(cfg)
	if err != nil {
		panic(err) // the flags are checked before
	}
	return g
}

// httpBodies returns the events of g as ingest requests: JSON arrays of up
// to batch events of one org each (an ingest key belongs to one org), in
// the order they fill. orgOf[i] is the org of request i.
func httpBodies(g *gen.Generator, batch int) (bodies [][]byte, orgOf []string, jsonBytes int64) {
	open := map[string]*bytes.Buffer{}
	counts := map[string]int{}
	flush := func(org string) {
		b := open[org]
		b.WriteByte(']')
		bodies, orgOf = append(bodies, b.Bytes()), append(orgOf, org)
		jsonBytes += int64(b.Len())
		delete(open, org)
		counts[org] = 0
	}
	for {
		it, ok := g.Next()
		if !ok {
			break
		}
		org := it.Org.ID
		b := open[org]
		if b == nil {
			b = bytes.NewBuffer(make([]byte, 0, batch*800))
			b.WriteByte('[')
			open[org] = b
		} else {
			b.WriteByte(',')
		}
		raw, err := json.Marshal(it.Event)
		if err != nil {
			panic(err) // generated events always marshal
		}
		b.Write(raw)
		if counts[org]++; counts[org] == batch {
			flush(org)
		}
	}
	rest := make([]string, 0, len(open))
	for org := range open {
		rest = append(rest, org)
	}
	sort.Strings(rest)
	for _, org := range rest {
		flush(org)
	}
	return bodies, orgOf, jsonBytes
}

// sample is a stored event the query shapes ask about: its org, type,
// project, actor, resource, trace and secret path.
type sample struct {
	org, eventType, project, actorID  string
	resType, resID, trace, secretPath string
}

// sampler keeps, per org, a reservoir of recent events (the last five
// days, inside every time window of the shapes) that have a resource.
type sampler struct {
	since  time.Time
	perOrg int
	byOrg  map[string][]sample
	seen   map[string]int
	share  map[string]float64
	rng    *rand.Rand
}

func newSampler(seed uint64, end time.Time) *sampler {
	return &sampler{since: end.Add(-5 * 24 * time.Hour), perOrg: 64, byOrg: map[string][]sample{},
		seen: map[string]int{}, share: map[string]float64{}, rng: rand.New(rand.NewPCG(seed, 11))}
}

func (s *sampler) offer(it *gen.Item) {
	e := &it.Event
	if e.Timestamp.Before(s.since) || e.Resource == nil {
		return
	}
	org := it.Org.ID
	s.share[org] = it.Org.Share
	x := sample{org: org, eventType: e.Event.Type, project: e.ProjectID, actorID: e.Actor.Identity().ID,
		resType: e.Resource.Type, resID: e.Resource.ID, trace: e.TraceID, secretPath: secretPath(e.Event.Metadata)}
	s.seen[org]++
	if l := s.byOrg[org]; len(l) < s.perOrg {
		s.byOrg[org] = append(l, x)
	} else if j := s.rng.IntN(s.seen[org]); j < s.perOrg {
		l[j] = x
	}
}

// secretPath returns metadata.secretPath, or a common one when absent.
func secretPath(md json.RawMessage) string {
	var v struct {
		SecretPath string `json:"secretPath"`
	}
	if json.Unmarshal(md, &v) != nil || v.SecretPath == "" {
		return "/apps/billing/config"
	}
	return v.SecretPath
}

// draw returns n samples: each picks an org in proportion to its size (a
// request lands on an org as often as the org has events), then one of its
// sampled events. The same draw serves both sides.
func (s *sampler) draw(n int, rng *rand.Rand) []sample {
	orgs := make([]string, 0, len(s.byOrg))
	for org := range s.byOrg {
		orgs = append(orgs, org)
	}
	sort.Strings(orgs)
	cdf, acc := make([]float64, len(orgs)), 0.0
	for i, org := range orgs {
		acc += s.share[org]
		cdf[i] = acc
	}
	out := make([]sample, n)
	for i := range out {
		l := s.byOrg[orgs[min(sort.SearchFloat64s(cdf, rng.Float64()*acc), len(orgs)-1)]]
		out[i] = l[rng.IntN(len(l))]
	}
	return out
}

// copyRow appends r as one line of COPY's text format in the column order
// of copyColumns.
func copyRow(b []byte, r *schema.Row) []byte {
	b = append(b, r.ID.String()...)
	b = copyText(b, r.ActorType)
	am := r.ActorMetadata
	if am == "" {
		am = "{}" // actorMetadata is NOT NULL in the peers' table
	}
	b = copyText(b, am)
	for _, s := range []string{r.IPAddress, r.EventType, r.EventMetadata, r.UserAgent, r.UserAgentType} {
		b = copyText(b, s)
	}
	b = append(append(b, '\t'), r.ExpiresAt.UTC().Format(time.RFC3339Nano)...)
	b = append(append(b, '\t'), r.Timestamp.UTC().Format(time.RFC3339Nano)...)
	for _, s := range []string{r.OrgID, r.ProjectID, r.ProjectName, r.ResourceType, r.ResourceID, r.ResourceName, r.TraceID} {
		b = copyText(b, s)
	}
	return append(b, '\n')
}

// copyText appends a tab and s escaped for COPY's text format; "" is NULL.
func copyText(b []byte, s string) []byte {
	b = append(b, '\t')
	if s == "" {
		return append(b, `\N`...)
	}
	if !strings.ContainsAny(s, "\\\t\n\r") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
