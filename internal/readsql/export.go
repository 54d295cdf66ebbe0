package readsql

import (
	"fmt"
	"strings"

	"github.com/auditstore/auditstore/schema"
)

// ExportColumn is one column of the export schema: its name in every
// tabular format and the SQL that computes it from the events table.
type ExportColumn struct {
	Name, Expr string
	Text       bool // a string column (CSV neutralizes formulas in it)
}

// ExportColumns is the export schema (GET /v1/export, the data lake's
// Parquet files). Optional fields are NULL when absent (empty in CSV). It
// is documented in README and pinned by tests; change it only by adding
// columns at the end.
var ExportColumns = []ExportColumn{
	{"id", "toString(id)", false},
	{"timestamp", "timestamp", false},
	{"eventType", "event_type", true},
	{"eventMetadata", "nullIf(event_metadata, '')", true},
	{"actorType", "actor_type", true},
	{"actorId", "nullIf(actor_id, '')", true},
	{"actorEmail", "nullIf(actor_email, '')", true},
	{"actorUsername", "nullIf(actor_username, '')", true},
	{"actorName", "nullIf(actor_name, '')", true},
	{"actorMetadata", "nullIf(actor_metadata, '')", true},
	{"orgId", "org_id", true},
	{"projectId", "nullIf(project_id, '')", true},
	{"projectName", "nullIf(project_name, '')", true},
	{"resourceType", "nullIf(resource_type, '')", true},
	{"resourceId", "nullIf(resource_id, '')", true},
	{"resourceName", "nullIf(resource_name, '')", true},
	{"ipAddress", "nullIf(ip_address, '')", true},
	{"userAgent", "nullIf(user_agent, '')", true},
	{"userAgentType", "nullIf(user_agent_type, '')", true},
	{"traceId", "nullIf(trace_id, '')", true},
	{"receivedAt", "received_at", false},
	{"createdAt", "created_at", false},
	{"expiresAt", "expires_at", false},
}

// The ClickHouse output formats an export may ask for; FormatNative is
// none: StoredColumns over the native protocol (the server writes NDJSON).
const (
	FormatNative  = ""
	FormatParquet = "Parquet"
	FormatArrow   = "ArrowStream"
	FormatCSV     = "CSVWithNames"
)

// csvSafe neutralizes a spreadsheet formula in a CSV cell, as OWASP's
// CSV injection guidance says: a text cell beginning with =, +, -, @, a
// tab or a carriage return is prefixed with a single quote, which
// spreadsheets show as text and do not evaluate. Event data is hostile:
// an actor could name a resource =HYPERLINK(...). The binary formats and
// NDJSON keep values exactly.
const csvSafe = `if(match(%[1]s, '^[-=+@\\t\\r]'), concat('\'', %[1]s), %[1]s)`

// ExportSelect is the SELECT list of the export schema, text columns made
// formula-safe when csv.
func ExportSelect(csv bool) string {
	var b strings.Builder
	for i, c := range ExportColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		expr := c.Expr
		if c.Text && csv {
			expr = fmt.Sprintf(csvSafe, expr)
		}
		fmt.Fprintf(&b, "%s AS %s", expr, c.Name)
	}
	return b.String()
}

// Export compiles the export of org's events under f, oldest first (ties
// by id), exactly the events GET /v1/events lists under f: in ClickHouse
// output format chFormat (one of the Format constants; unknown ones are
// FormatNative), the export schema; FormatNative selects StoredColumns.
// It runs with ReadSettings and prefer_column_name_to_alias=1, which makes
// ORDER BY name the stored columns (the table's sort key), not the aliases.
func Export(org string, f schema.Filter, chFormat string) Statement {
	b := newBuilder()
	var sql string
	switch chFormat {
	case FormatParquet, FormatArrow, FormatCSV:
		sql = "SELECT " + ExportSelect(chFormat == FormatCSV)
	default:
		chFormat = FormatNative
		sql = selectEvents
	}
	sql += "\n" + from + "\n" + joinWhere(where(b, org, f)) + "\nORDER BY org_id, timestamp, id"
	if chFormat != FormatNative {
		sql += "\nFORMAT " + chFormat
	}
	return b.statement(sql)
}
