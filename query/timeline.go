package query

import (
	"context"
	"strconv"
	"strings"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// keyLookup is a filter that schema.KeysTable serves: one resource or one
// actor, and a time range.
type keyLookup struct {
	kind, key string
}

// lookupFor returns the key f amounts to, when f is that key alone (and a
// time range).
func lookupFor(f schema.Filter) (keyLookup, bool) {
	if len(f.EmailPrefixes)+len(f.EmailContains)+len(f.IPs)+len(f.IPRanges)+len(f.Metadata)+len(f.Scope) > 0 {
		return keyLookup{}, false
	}
	rt, rid, aid := f.Match[schema.FieldResourceType], f.Match[schema.FieldResourceID], f.Match[schema.FieldActorID]
	switch {
	case len(f.Match) == 2 && len(rt) == 1 && len(rid) == 1:
		// A resource type matches EventTypePattern: it holds no '/'.
		return keyLookup{schema.KeyResource, rt[0] + "/" + rid[0]}, true
	case len(f.Match) == 1 && len(aid) == 1 && len(f.ExcludeTypes) == 0:
		// Access records have an actor but no resource: only the resource
		// timeline may ignore ExcludeTypes.
		return keyLookup{schema.KeyActor, aid[0]}, true
	}
	return keyLookup{}, false
}

// CompileTimeline compiles, when f is one resource or one actor (and a
// time range) sorted by time, the statements that serve its list from
// schema.KeysTable: the (timestamp, id) of the page p and the total. ok is
// false for any other filter or sort, which the events table serves.
func CompileTimeline(org string, f schema.Filter, s schema.Sort, p schema.Page) (keys, total Statement, ok bool) {
	k, ok := lookupFor(f)
	if !ok || s.By != schema.SortTimestamp {
		return Statement{}, Statement{}, false
	}
	return compileKeyPage(org, k, f, s, p.Limit, p.Offset(), p.After), compileKeyCount(org, k, f), true
}

const fromKeys = "FROM " + schema.KeysTable + " FINAL"

func keyWhere(b *builder, org string, k keyLookup, f schema.Filter) []string {
	conds := []string{
		schema.ColOrgID + " = " + b.named("org", typeString, org),
		"key_kind = " + b.named("keyKind", typeString, k.kind),
		"key = " + b.named("key", typeString, k.key),
		schema.NotExpired,
	}
	if !f.From.IsZero() {
		conds = append(conds, schema.ColTimestamp+" >= "+b.named("from", typeTime, chconn.Time(f.From)))
	}
	if !f.To.IsZero() {
		conds = append(conds, schema.ColTimestamp+" < "+b.named("to", typeTime, chconn.Time(f.To)))
	}
	return conds
}

// compileKeyCount compiles the number of events of a timeline.
func compileKeyCount(org string, k keyLookup, f schema.Filter) Statement {
	b := newBuilder()
	return Statement{SQL: "SELECT count()\n" + fromKeys + "\n" + joinWhere(keyWhere(b, org, k, f)), Params: b.params}
}

// compileKeyPage compiles the (timestamp, id) of a page of a timeline, in
// the order of s (a sort by timestamp).
func compileKeyPage(org string, k keyLookup, f schema.Filter, s schema.Sort, limit, offset int, after *schema.Position) Statement {
	b := newBuilder()
	conds := keyWhere(b, org, k, f)
	keys := s.Keys()
	if after != nil {
		conds = append(conds, keyset(b, keys, *after))
		limit++
	}
	sql := "SELECT timestamp, id\n" + fromKeys + "\n" + joinWhere(conds) + "\n" + orderBy(keys) +
		"\nLIMIT " + b.named("limit", "UInt32", strconv.Itoa(limit))
	if offset > 0 {
		sql += " OFFSET " + b.named("offset", "UInt64", strconv.Itoa(offset))
	}
	return Statement{SQL: sql, Params: b.params}
}

// compileFetch compiles the events of org with the given (timestamp, id),
// in the order of s: point reads on the events table's primary key.
func compileFetch(org string, at []schema.Position, s schema.Sort) Statement {
	b := newBuilder()
	pairs := make([]string, len(at))
	for i, p := range at {
		pairs[i] = "(" + b.param("t", typeTime, chconn.Time(p.Timestamp)) + ", " + b.param("i", "UUID", p.ID.String()) + ")"
	}
	conds := where(b, org, schema.Filter{})
	conds = append(conds, "(timestamp, id) IN ("+strings.Join(pairs, ", ")+")")
	sql := selectEvents + "\n" + from + "\n" + joinWhere(conds) + "\n" + orderBy(s.Keys())
	return Statement{SQL: sql, Params: b.params}
}

// keyPage serves a page of a timeline from schema.KeysTable: in page mode
// the total and the page's keys side by side, then the page's events.
func (h *Handler) keyPage(ctx context.Context, org string, k keyLookup, f schema.Filter, s schema.Sort,
	pg schema.Page) ([]storedRow, uint64, error) {
	var (
		total    uint64
		countErr error
		counted  = make(chan struct{})
	)
	if pg.After == nil {
		go func() {
			defer close(counted)
			total, countErr = h.store.count(ctx, compileKeyCount(org, k, f))
		}()
	} else {
		close(counted)
	}
	at, err := h.store.positions(ctx, compileKeyPage(org, k, f, s, pg.Limit, pg.Offset(), pg.After))
	<-counted
	if err == nil {
		err = countErr
	}
	if err != nil || len(at) == 0 {
		return nil, total, err
	}
	rows, err := h.store.events(ctx, compileFetch(org, at, s))
	return rows, total, err
}
