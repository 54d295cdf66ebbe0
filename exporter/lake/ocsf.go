package lake

import (
	"strconv"
	"strings"
)

// OCSF output: each event becomes an OCSF 1.1.0 API Activity (class_uid
// 6003, category 6 Application Activity) record. The rules, for README and
// the tests (testdata/ocsf-1.1.0-api_activity.json holds the class's
// definition they validate against):
//
//	activity_id     from the event type's words (lowercased, split at
//	                - _ . : / and spaces): create, add, new, insert,
//	                register, invite, generate, upload, import → 1 Create;
//	                read, get, list, view, export, download, search, query,
//	                describe → 2 Read; update, change, modify, edit, set,
//	                rename, enable, disable, rotate, patch, replace, move,
//	                assign → 3 Update; delete, remove, destroy, revoke,
//	                purge, archive → 4 Delete; otherwise 99 Other (the first
//	                matching group in this order wins)
//	type_uid        600300 + activity_id; severity_id 1 (Informational)
//	time            timestamp, in milliseconds since the epoch
//	metadata        version "1.1.0", product {name, vendor_name:
//	                "auditstore"}, uid: the event id, tenant_uid: orgId,
//	                event_code: the event type, logged_time: receivedAt (ms),
//	                correlation_uid: traceId
//	actor.user      uid: actorId, name: the first of actor name, username,
//	                email, id, type; email_addr: actorEmail; type_id/type:
//	                user → 1 User, platform → 3 System, unknownUser →
//	                0 Unknown, others → 99 Other
//	api             operation: the event type; service.name: projectName
//	src_endpoint    ip: ipAddress; name: userAgentType, "unknown" when absent
//	http_request    user_agent: userAgent
//	resources       [{type, uid: resource id, name}] when the event has a
//	                resource id or name, else []
//	cloud           (security-lake layout only) provider "AWS", region and
//	                account.uid of the custom source
//	unmapped        the original event: every non-empty /v1/export column,
//	                by its name, as text (a Parquet MAP<string, string>)

// OCSFVersion is the OCSF version of the output.
const OCSFVersion = "1.1.0"

var activityWords = []struct {
	id    int
	name  string
	words []string
}{
	{1, "Create", []string{"create", "add", "new", "insert", "register", "invite", "generate", "upload", "import"}},
	{2, "Read", []string{"read", "get", "list", "view", "export", "download", "search", "query", "describe"}},
	{3, "Update", []string{"update", "change", "modify", "edit", "set", "rename", "enable", "disable", "rotate", "patch", "replace", "move", "assign"}},
	{4, "Delete", []string{"delete", "remove", "destroy", "revoke", "purge", "archive"}},
}

func sqlList(words []string) string {
	return "['" + strings.Join(words, "', '") + "']"
}

// activitySQL is the multiIf giving activity_id from the event type.
func activitySQL() (id, name string) {
	tokens := "splitByRegexp('[-_.:/ ]+', lower(event_type))"
	var ids, names strings.Builder
	ids.WriteString("multiIf(")
	names.WriteString("multiIf(")
	for _, a := range activityWords {
		cond := "hasAny(" + tokens + ", " + sqlList(a.words) + ")"
		ids.WriteString(cond + ", " + strconv.Itoa(a.id) + ", ")
		names.WriteString(cond + ", '" + a.name + "', ")
	}
	ids.WriteString("99)")
	names.WriteString("'Other')")
	return ids.String(), names.String()
}

// unmappedSQL is the original event: its non-empty export columns as text.
func unmappedSQL() string {
	var names, values []string
	for _, c := range exportColumns() {
		names = append(names, "'"+c.Name+"'")
		values = append(values, "ifNull(toString("+c.Expr+"), '')")
	}
	return "mapFilter((k, v) -> v != '', mapFromArrays([" + strings.Join(names, ", ") + "], [" + strings.Join(values, ", ") + "]))"
}

// ocsfSelect is the SELECT list of the OCSF output; withCloud adds the
// cloud object (values from parameters ocsf_region and ocsf_account).
func ocsfSelect(withCloud bool) string {
	act, actName := activitySQL()
	profiles := "[]"
	if withCloud {
		profiles = "['cloud']"
	}
	cols := []string{
		"toInt32(" + act + ") AS activity_id",
		actName + " AS activity_name",
		"toInt32(6) AS category_uid",
		"'Application Activity' AS category_name",
		"toInt32(6003) AS class_uid",
		"'API Activity' AS class_name",
		"toInt64(600300 + " + act + ") AS type_uid",
		"concat('API Activity: ', " + actName + ") AS type_name",
		"toInt32(1) AS severity_id",
		"'Informational' AS severity",
		"toUnixTimestamp64Milli(timestamp) AS time",
		"CAST(tuple('" + OCSFVersion + "', tuple('auditstore', 'auditstore'), toString(id), toString(org_id), toString(event_type)," +
			" toUnixTimestamp64Milli(received_at), nullIf(trace_id, ''), " + profiles + ")," +
			" 'Tuple(version String, product Tuple(name String, vendor_name String), uid String, tenant_uid String," +
			" event_code String, logged_time Int64, correlation_uid Nullable(String), profiles Array(String))') AS metadata",
		"CAST(tuple(tuple(nullIf(actor_id, ''), coalesce(nullIf(actor_name, ''), nullIf(actor_username, ''), nullIf(actor_email, '')," +
			" nullIf(actor_id, ''), toString(actor_type)), nullIf(actor_email, '')," +
			" multiIf(actor_type = 'user', 'User', actor_type = 'platform', 'System', actor_type = 'unknownUser', 'Unknown', 'Other')," +
			" toInt32(multiIf(actor_type = 'user', 1, actor_type = 'platform', 3, actor_type = 'unknownUser', 0, 99))))," +
			" 'Tuple(user Tuple(uid Nullable(String), name String, email_addr Nullable(String), type String, type_id Int32))') AS actor",
		"CAST(tuple(toString(event_type), tuple(nullIf(toString(project_name), ''))), 'Tuple(operation String, service Tuple(name Nullable(String)))') AS api",
		"CAST(tuple(nullIf(ip_address, ''), coalesce(nullIf(toString(user_agent_type), ''), 'unknown')), 'Tuple(ip Nullable(String), name String)') AS src_endpoint",
		"CAST(tuple(nullIf(toString(user_agent), '')), 'Tuple(user_agent Nullable(String))') AS http_request",
		"CAST(if(resource_id = '' AND resource_name = '', [], [tuple(nullIf(toString(resource_type), ''), nullIf(resource_id, ''), nullIf(resource_name, ''))])," +
			" 'Array(Tuple(type Nullable(String), uid Nullable(String), name Nullable(String)))') AS resources",
	}
	if withCloud {
		cols = append(cols, "CAST(tuple('AWS', {ocsf_region:String}, tuple({ocsf_account:String})),"+
			" 'Tuple(provider String, region String, account Tuple(uid String))') AS cloud")
	}
	cols = append(cols, unmappedSQL()+" AS unmapped")
	return strings.Join(cols, ", ")
}
