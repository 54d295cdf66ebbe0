package main

import (
	"net/url"
	"time"
)

// shape is one question asked of both sides: auditstore through its HTTP
// API, the baseline with the SQL an Infisical-like app would issue
// (parameterized, on the indexes of the table in baseline.go). They are the
// seven shapes of the issue as bench/query asks them: pages of 50 newest
// first, filters, timelines, aggregates.
type shape struct {
	name  string // in the report
	label string // on the chart
	agg   bool
	url   func(w window, x sample) string
	sql   string
	args  func(w window, x sample) []any
}

// window is the time the shapes look back from: the end of the data.
type window struct{ now time.Time }

func (w window) days(n int) time.Time {
	return w.now.Add(-time.Duration(n) * 24 * time.Hour).Truncate(time.Second)
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func enc(kv ...string) string {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q.Encode()
}

// pageCols are the columns a page returns: the whole event, as auditstore's
// pages do.
const pageCols = `SELECT id, actor, "actorMetadata", "ipAddress", "eventType", "eventMetadata", "userAgent", ` +
	`"userAgentType", "expiresAt", "createdAt", "orgId", "projectId", "projectName", "resourceType", ` +
	`"resourceId", "resourceName", "traceId" FROM audit_logs `

var shapes = []shape{
	{
		name: "page: org, last 30 days", label: "page",
		url: func(w window, _ sample) string {
			return "/v1/events?" + enc("from", rfc(w.days(30)), "limit", "50")
		},
		sql:  pageCols + `WHERE "orgId" = $1 AND "createdAt" >= $2 ORDER BY "createdAt" DESC LIMIT 50`,
		args: func(w window, x sample) []any { return []any{x.org, w.days(30)} },
	},
	{
		name: "page: + event type and project", label: "type+project",
		url: func(w window, x sample) string {
			return "/v1/events?" + enc("from", rfc(w.days(30)), "eventType", x.eventType, "projectId", x.project)
		},
		sql: pageCols + `WHERE "orgId" = $1 AND "createdAt" >= $2 AND "eventType" = $3 AND "projectId" = $4
ORDER BY "createdAt" DESC LIMIT 50`,
		args: func(w window, x sample) []any { return []any{x.org, w.days(30), x.eventType, x.project} },
	},
	{
		name: "resource timeline", label: "resource",
		url: func(_ window, x sample) string {
			return "/v1/resources/" + url.PathEscape(x.resType) + "/" + url.PathEscape(x.resID) + "/events"
		},
		sql: pageCols + `WHERE "orgId" = $1 AND "resourceType" = $2 AND "resourceId" = $3
ORDER BY "createdAt" DESC LIMIT 50`,
		args: func(_ window, x sample) []any { return []any{x.org, x.resType, x.resID} },
	},
	{
		name: "trace", label: "trace",
		url:  func(_ window, x sample) string { return "/v1/traces/" + url.PathEscape(x.trace) + "/events" },
		sql:  pageCols + `WHERE "orgId" = $1 AND "traceId" = $2 ORDER BY "createdAt" DESC LIMIT 50`,
		args: func(_ window, x sample) []any { return []any{x.org, x.trace} },
	},
	{
		name: "metadata filter, 30 days", label: "metadata",
		url: func(w window, x sample) string {
			return "/v1/events?" + enc("from", rfc(w.days(30)), "metadata.secretPath", x.secretPath)
		},
		sql: pageCols + `WHERE "orgId" = $1 AND "createdAt" >= $2 AND "eventMetadata"->>'secretPath' = $3
ORDER BY "createdAt" DESC LIMIT 50`,
		args: func(w window, x sample) []any { return []any{x.org, w.days(30), x.secretPath} },
	},
	{
		name: "hourly histogram, 30 days", label: "histogram", agg: true,
		url: func(w window, _ sample) string {
			return "/v1/aggregates?" + enc("interval", "hour", "from", rfc(w.days(30)))
		},
		sql: `SELECT date_trunc('hour', "createdAt") AS t, count(*) FROM audit_logs
WHERE "orgId" = $1 AND "createdAt" >= $2 GROUP BY t ORDER BY t`,
		args: func(w window, x sample) []any { return []any{x.org, w.days(30)} },
	},
	{
		name: "top-10 actors, 90 days", label: "top actors", agg: true,
		url: func(w window, _ sample) string {
			return "/v1/aggregates?" + enc("groupBy", "actorId", "top", "10", "metrics", "count,resources", "from", rfc(w.days(90)))
		},
		sql: `SELECT ` + actorExpr + ` AS a,
  count(DISTINCT "resourceType" || ':' || "resourceId") AS resources, count(*) AS n
FROM audit_logs WHERE "orgId" = $1 AND "createdAt" >= $2
GROUP BY a ORDER BY n DESC LIMIT 10`,
		args: func(w window, x sample) []any { return []any{x.org, w.days(90)} },
	},
}
