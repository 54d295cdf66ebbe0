package lake

import (
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/exporter"
	"github.com/auditstore/auditstore/internal/readsql"
)

// The statements ClickHouse runs to write a destination's files. Every
// value a user chose (URL, credentials, partition literals) is a
// server-side parameter; the SQL text holds only our own constants.

// location is where a destination's files go, and the table function that
// reaches them.
type location struct {
	base    string // URL or absolute path, ending with '/'
	s3      bool
	key     string // "" when the ClickHouse server signs with its own credentials
	secret  string
	secrets []string
}

// locate returns the location of t for a destination of org ("" for every
// org).
func (s *Service) locate(t Target, org string) location {
	if t.Kind == "dir" {
		scope := "all/"
		if org != "" {
			scope = "org/" + org + "/"
		}
		return location{base: strings.TrimSuffix(s.cfg.DirRoot, "/") + "/" + scope + t.Dir.Path}
	}
	c := t.S3
	scheme, host, _ := strings.Cut(c.Endpoint, "://")
	base := c.Endpoint + "/" + c.Bucket + "/"
	if !c.PathStyle {
		base = scheme + "://" + c.Bucket + "." + host + "/"
	}
	return location{base: base + c.Prefix, s3: true, key: c.AccessKeyID, secret: c.SecretAccessKey, secrets: t.secrets()}
}

// function returns the table function over the object or file named by
// parameter urlParam, in format, and adds its credentials to p.
func (l location) function(urlParam, format string, p clickhouse.Parameters) string {
	if !l.s3 {
		return "file({" + urlParam + ":String}, '" + format + "')"
	}
	if l.key == "" {
		return "s3({" + urlParam + ":String}, '" + format + "')"
	}
	p["s3key"], p["s3secret"] = l.key, l.secret
	return "s3({" + urlParam + ":String}, {s3key:String}, {s3secret:String}, '" + format + "')"
}

// truncate is the setting that lets a write replace an earlier attempt.
func (l location) truncate() string {
	if l.s3 {
		return "s3_truncate_on_insert"
	}
	return "engine_file_truncate_on_insert"
}

// layout is a destination's partition template, compiled.
type layout struct {
	pieces []string // literal text, or a placeholder such as "{org}"
}

func (t Target) layout() layout {
	tmpl := t.Partition
	if t.Layout == "security-lake" {
		sl := t.SecurityLake
		tmpl = "ext/" + sl.Source + "/region=" + sl.Region + "/accountId=" + sl.AccountID + "/eventDay={day}/"
	}
	var l layout
	for tmpl != "" {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			l.pieces = append(l.pieces, tmpl)
			break
		}
		if i > 0 {
			l.pieces = append(l.pieces, tmpl[:i])
		}
		j := strings.IndexByte(tmpl, '}')
		l.pieces = append(l.pieces, tmpl[i:j+1])
		tmpl = tmpl[j+1:]
	}
	return l
}

// expr is the SQL of the partition of a row whose org is the column orgCol
// and whose time (DateTime64) is timeExpr; literals become parameters
// pl0, pl1, ... of p.
func (l layout) expr(orgCol, timeExpr string, p clickhouse.Parameters) string {
	parts := make([]string, 0, len(l.pieces))
	for i, piece := range l.pieces {
		switch piece {
		case "{org}":
			parts = append(parts, "toString("+orgCol+")")
		case "{date}":
			parts = append(parts, "formatDateTime("+timeExpr+", '%Y-%m-%d', 'UTC')")
		case "{day}":
			parts = append(parts, "formatDateTime("+timeExpr+", '%Y%m%d', 'UTC')")
		case "{hour}":
			parts = append(parts, "formatDateTime("+timeExpr+", '%H', 'UTC')")
		default:
			name := fmt.Sprintf("pl%d", i)
			p[name] = piece
			parts = append(parts, "{"+name+":String}")
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "concat(" + strings.Join(parts, ", ") + ")"
}

// exportColumns are the /v1/export columns.
func exportColumns() []readsql.ExportColumn { return readsql.ExportColumns }

// exportSelect is the /v1/export column list (readsql.ExportColumns).
func exportSelect() string { return readsql.ExportSelect(false) }

// output describes a format's columns: the SELECT list, and the output
// columns holding the org and the event time (for the partition and the
// read-back).
type output struct {
	columns  string
	orgCol   string
	timeExpr string
}

func outputOf(t Target, p clickhouse.Parameters) output {
	if t.Format == "ocsf" {
		cloud := t.Layout == "security-lake"
		if cloud {
			p["ocsf_region"], p["ocsf_account"] = t.SecurityLake.Region, t.SecurityLake.AccountID
		}
		return output{columns: ocsfSelect(cloud), orgCol: "metadata.tenant_uid", timeExpr: "fromUnixTimestamp64Milli(time, 'UTC')"}
	}
	return output{columns: exportSelect(), orgCol: "orgId", timeExpr: "timestamp"}
}

// writeSettings are the settings of a file write.
func writeSettings(l location) clickhouse.Settings {
	st := clickhouse.Settings{}
	for k, v := range exporter.Formats["parquet"].Settings() {
		st[k] = v
	}
	st[l.truncate()] = 1
	// Files are closed by our step size, not by ClickHouse.
	st["max_partitions_per_insert_block"] = 0
	st["max_execution_time"] = 0
	return st
}

// selection is the events of a step or a backfill day (readsql's; its
// values are added to the caller's parameters).
type selection struct {
	sel readsql.Selection
}

func withParams(sel readsql.Selection, p clickhouse.Parameters) selection {
	for k, v := range sel.Params {
		p[k] = v
	}
	return selection{sel: sel}
}

// stepSelection selects the events of node after..upto received since
// created, of org ("" for every org).
func stepSelection(org, node string, after, upto uint64, created time.Time, p clickhouse.Parameters) selection {
	return withParams(readsql.LakeStep(org, node, after, upto, created), p)
}

// backfillSelection selects the events of org ("" for every org) with a
// timestamp in [from, to) received before created: those the continuous
// delivery never sees.
func backfillSelection(org string, from, to, created time.Time, p clickhouse.Parameters) selection {
	return withParams(readsql.LakeBackfill(org, from, to, created), p)
}

// writeSQL writes the events of sel as one file per partition, named name
// inside each, under l.
func writeSQL(l location, lay layout, out output, sel selection, name string, p clickhouse.Parameters) string {
	p["wurl"] = l.base + "{_partition_id}" + name
	return "INSERT INTO FUNCTION " + l.function("wurl", "Parquet", p) +
		" PARTITION BY " + lay.expr(out.orgCol, out.timeExpr, p) + " " + sel.sel.Select(out.columns).SQL
}

// partitionsSQL counts the events of sel by partition.
func partitionsSQL(lay layout, sel selection, p clickhouse.Parameters) string {
	return sel.sel.Partitions(lay.expr("org_id", "timestamp", p)).SQL
}
