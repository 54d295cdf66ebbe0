package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// tableDDL is the events table's CREATE statement as the migrated database
// reports it (SHOW CREATE TABLE), split so that a variant can remove or
// change one element (a column or an index) or one table setting.
type tableDDL struct {
	elems []string // one column or index each, without the trailing comma
	tail  string   // from ") ENGINE" on: engine, partition, order, TTL, settings
}

// schemaDDL is what every variant starts from: the events table, and the
// tables and materialized views that every insert into it feeds.
type schemaDDL struct {
	db        string // the migrated database the statements name
	events    tableDDL
	byKey     string // CREATE TABLE db.events_by_key ...
	view      string // CREATE MATERIALIZED VIEW db.events_by_key_mv TO db.events_by_key ... FROM db.events ...
	hours     string // CREATE TABLE db.event_hours ... (migration 0012)
	hoursView string // CREATE MATERIALIZED VIEW db.event_hours_mv TO db.event_hours ... FROM db.events ...
}

// readDDL reads the migrated database's statements.
func readDDL(ctx context.Context, conn driver.Conn, db string) (schemaDDL, error) {
	show := func(name string) (string, error) {
		var s string
		if err := conn.QueryRow(ctx, "SHOW CREATE TABLE "+db+"."+name).Scan(&s); err != nil {
			return "", fmt.Errorf("show create %s: %w", name, err)
		}
		return s, nil
	}
	ev, err := show("events")
	if err != nil {
		return schemaDDL{}, err
	}
	t, err := parseTable(ev)
	if err != nil {
		return schemaDDL{}, err
	}
	d := schemaDDL{db: db, events: t}
	if d.byKey, err = show("events_by_key"); err != nil {
		return schemaDDL{}, err
	}
	if d.view, err = show("events_by_key_mv"); err != nil {
		return schemaDDL{}, err
	}
	if d.hours, err = show("event_hours"); err != nil {
		return schemaDDL{}, err
	}
	if d.hoursView, err = show("event_hours_mv"); err != nil {
		return schemaDDL{}, err
	}
	return d, nil
}

// parseTable splits SHOW CREATE TABLE's output, which puts each column and
// index on a line of its own between "(" and ")".
func parseTable(s string) (tableDDL, error) {
	open := strings.Index(s, "\n(\n")
	end := strings.Index(s, "\n)\nENGINE")
	if open < 0 || end < open {
		return tableDDL{}, fmt.Errorf("unexpected SHOW CREATE TABLE layout: %.200s", s)
	}
	var t tableDDL
	for _, l := range strings.Split(s[open+3:end], "\n") {
		l = strings.TrimSuffix(strings.TrimSpace(l), ",")
		if !strings.HasPrefix(l, "`") && !strings.HasPrefix(l, "INDEX ") {
			return tableDDL{}, fmt.Errorf("unexpected element of the events table: %.200s", l)
		}
		t.elems = append(t.elems, l)
	}
	t.tail = s[end+1:]
	return t, nil
}

// clone returns a copy that a variant may change.
func (t tableDDL) clone() tableDDL {
	return tableDDL{elems: append([]string(nil), t.elems...), tail: t.tail}
}

// create returns the statement creating this table as db.name.
func (t tableDDL) create(db, name string) string {
	return "CREATE TABLE " + db + "." + name + "\n(\n    " + strings.Join(t.elems, ",\n    ") + "\n" + t.tail
}

// has reports whether the table has the column or index.
func (t tableDDL) has(column, index string) bool {
	for _, e := range t.elems {
		if (column != "" && strings.HasPrefix(e, "`"+column+"` ")) || (index != "" && strings.HasPrefix(e, "INDEX "+index+" ")) {
			return true
		}
	}
	return false
}

// dropIndex removes an index; it fails if there is none of that name.
func (t *tableDDL) dropIndex(name string) error {
	return t.remove(func(e string) bool { return strings.HasPrefix(e, "INDEX "+name+" ") }, "index "+name)
}

// dropColumn removes a column; it fails if there is none of that name.
func (t *tableDDL) dropColumn(name string) error {
	return t.remove(func(e string) bool { return strings.HasPrefix(e, "`"+name+"` ") }, "column "+name)
}

func (t *tableDDL) remove(match func(string) bool, what string) error {
	for i, e := range t.elems {
		if match(e) {
			t.elems = append(t.elems[:i], t.elems[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("the events table has no %s", what)
}

// setCodec replaces the codec of every column whose codec is from (all
// columns with a codec when from is ""), with to ("" removes the codec:
// the server's default, LZ4). It returns how many columns changed.
func (t *tableDDL) setCodec(from, to string, only func(column string) bool) int {
	n := 0
	for i, e := range t.elems {
		if !strings.HasPrefix(e, "`") {
			continue
		}
		col := e[1 : strings.Index(e[1:], "`")+1]
		at := strings.LastIndex(e, " CODEC(")
		if at < 0 || (only != nil && !only(col)) {
			continue
		}
		codec := e[at+len(" CODEC(") : len(e)-1]
		if from != "" && codec != from {
			continue
		}
		if to == "" {
			t.elems[i] = e[:at]
		} else {
			t.elems[i] = e[:at] + " CODEC(" + to + ")"
		}
		n++
	}
	return n
}

// setSetting sets a table setting, adding it when absent.
func (t *tableDDL) setSetting(name, value string) {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + ` = [^,\n]+`)
	if re.MatchString(t.tail) {
		t.tail = re.ReplaceAllString(t.tail, name+" = "+value)
		return
	}
	if strings.Contains(t.tail, "SETTINGS ") {
		t.tail = strings.Replace(t.tail, "SETTINGS ", "SETTINGS "+name+" = "+value+", ", 1)
		return
	}
	t.tail += "\nSETTINGS " + name + " = " + value
}

// The suffixes of a variant's tables after its own name.
const (
	byKeySuffix = "_bk"
	hoursSuffix = "_hr"
)

// variantObjects are the migrated database's tables and views that a
// variant named name copies, each as name plus its suffix. A name that
// begins with another comes before it (renamer replaces the first that
// matches).
var variantObjects = []struct {
	migrated, suffix string
	view             bool
}{
	{"events_by_key_mv", "_mv", true},
	{"events_by_key", byKeySuffix, false},
	{"event_hours_mv", "_hmv", true},
	{"event_hours", hoursSuffix, false},
	{"events", "", false},
}

// renamer rewrites the names of the migrated database's statements for a
// variant's tables in another database.
func renamer(from, to, name string) *strings.Replacer {
	var pairs []string
	for _, o := range variantObjects {
		pairs = append(pairs, from+"."+o.migrated, to+"."+name+o.suffix)
	}
	return strings.NewReplacer(pairs...)
}

// dropStatements drop every table and view of the variant named name in db.
func dropStatements(db, name string) []string {
	var out []string
	for _, o := range variantObjects {
		kind := "TABLE"
		if o.view {
			kind = "VIEW"
		}
		out = append(out, "DROP "+kind+" IF EXISTS "+db+"."+name+o.suffix+" SYNC")
	}
	return out
}
