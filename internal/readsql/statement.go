// Package readsql is the one compiler of every read of the events: it turns
// the query parameters of a request into a schema.Filter (ParseFilter, the
// Parser), and a filter into statements — SQL text whose only variable parts
// are names from schema's allow-list and our own constants, with the values
// as ClickHouse server-side parameters ({name:Type}). Lists (page, offset
// and keyset), counts, hourly counts, single events, the event-type
// catalog, timelines, aggregates, export selections, stream batches and
// lag, and the data lake's selections all come from here; query, exporter,
// exporter/stream and exporter/lake run them. It knows no HTTP framework
// and no driver: running a statement is its caller's business.
package readsql

import (
	"strconv"
	"strings"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// Statement is one compiled read: SQL text, and the values of its
// {name:Type} placeholders, which ClickHouse binds on the server. Params
// hold the values themselves (Wire escapes them); Arrays hold the elements
// of {name:Array(String)} placeholders (chconn.WithParams encodes them).
type Statement struct {
	SQL    string
	Params map[string]string
	Arrays map[string][]string
}

// Wire returns the parameters of st as they are sent, over the native
// protocol or as HTTP param_ values: escaped by chconn, the one encoder.
// Statements with Arrays go through chconn.WithParams instead.
func (st Statement) Wire() map[string]string {
	out := make(map[string]string, len(st.Params))
	for k, v := range st.Params {
		out[k] = chconn.Escape(v)
	}
	return out
}

// from is the source of every read through a filter: FINAL folds the
// identical copies of a re-sent event that ReplacingMergeTree keeps until
// its next merge. It is cheap because of ReadSettings.
const from = "FROM " + schema.EventsTable + " FINAL"

// builder collects placeholders under deterministic names, so that the
// same request always compiles to the same text (golden files pin it).
type builder struct {
	params map[string]string
	seq    map[string]int
}

func newBuilder() *builder {
	return &builder{params: map[string]string{}, seq: map[string]int{}}
}

func (b *builder) statement(sql string) Statement {
	return Statement{SQL: sql, Params: b.params}
}

// param adds a value under a fresh name starting with prefix and returns
// its placeholder.
func (b *builder) param(prefix, typ, value string) string {
	name := prefix + strconv.Itoa(b.seq[prefix])
	b.seq[prefix]++
	return b.named(name, typ, value)
}

// named adds a value under a fixed name and returns its placeholder.
func (b *builder) named(name, typ, value string) string {
	b.params[name] = value
	return "{" + name + ":" + typ + "}"
}

// in renders "expr = p" for one value and "expr IN (p, ...)" for several.
func (b *builder) in(expr, prefix, typ string, values []string) string {
	ps := make([]string, len(values))
	for i, v := range values {
		ps[i] = b.param(prefix, typ, v)
	}
	if len(ps) == 1 {
		return expr + " = " + ps[0]
	}
	return expr + " IN (" + strings.Join(ps, ", ") + ")"
}

const (
	typeString = "String"
	typeTime   = "DateTime64(3, 'UTC')"
	typeUInt64 = "UInt64"
)

func u64(n uint64) string { return strconv.FormatUint(n, 10) }
