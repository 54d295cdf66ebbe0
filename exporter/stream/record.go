package stream

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/readsql"
	"github.com/auditstore/auditstore/schema"
)

// record is the streamed form of an event: flat, in the field names of
// Infisical's audit log streams, which SIEM parsers for this kind of log
// expect (id, actor, actorMetadata, ipAddress, eventType, eventMetadata,
// userAgent, userAgentType, expiresAt, createdAt, updatedAt, orgId,
// projectId, projectName), plus resource and traceId when present.
// createdAt is when the action happened (the event's timestamp); events are
// never updated, so updatedAt equals it.
type record struct {
	ID            string           `json:"id"`
	Actor         string           `json:"actor"`
	ActorMetadata json.RawMessage  `json:"actorMetadata"`
	IPAddress     string           `json:"ipAddress"`
	EventType     string           `json:"eventType"`
	EventMetadata json.RawMessage  `json:"eventMetadata"`
	UserAgent     string           `json:"userAgent,omitempty"`
	UserAgentType string           `json:"userAgentType,omitempty"`
	ExpiresAt     string           `json:"expiresAt"`
	CreatedAt     string           `json:"createdAt"`
	UpdatedAt     string           `json:"updatedAt"`
	OrgID         string           `json:"orgId"`
	ProjectID     string           `json:"projectId,omitempty"`
	ProjectName   string           `json:"projectName,omitempty"`
	Resource      *schema.Resource `json:"resource,omitempty"`
	TraceID       string           `json:"traceId,omitempty"`
	// Truncated is set when the event had to be cut to fit the
	// destination's size limits (see shrink).
	Truncated bool `json:"truncated,omitempty"`
}

// row is an event as a stream reads it from ClickHouse.
type row struct {
	seq                          uint64
	id                           uuid.UUID
	ts, received, expires        time.Time
	org, eventType, eventMeta    string
	actorType, actorID, actorMet string
	projectID, projectName       string
	resType, resID, resName      string
	ip, ua, uaType, traceID      string
}

// readColumns are the columns of EventsTable a stream reads, in the order
// of row.targets.
const readColumns = readsql.StreamColumns

func (r *row) targets() []any {
	return []any{&r.seq, &r.id, &r.ts, &r.received, &r.expires, &r.org, &r.eventType, &r.eventMeta,
		&r.actorType, &r.actorID, &r.actorMet, &r.projectID, &r.projectName, &r.resType, &r.resID, &r.resName,
		&r.ip, &r.ua, &r.uaType, &r.traceID}
}

const timeFormat = "2006-01-02T15:04:05.000Z"

func jsonTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// rawObject returns stored metadata as a JSON object; {} when absent or
// (never, after validation) not valid JSON.
func rawObject(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return json.RawMessage("{}")
	}
	return json.RawMessage(s)
}

// record builds the streamed form of r.
func (r *row) record() record {
	created := jsonTime(r.ts)
	rec := record{
		ID: r.id.String(), Actor: r.actorType, ActorMetadata: rawObject(r.actorMet),
		IPAddress: r.ip, EventType: r.eventType, EventMetadata: rawObject(r.eventMeta),
		UserAgent: r.ua, UserAgentType: r.uaType,
		ExpiresAt: jsonTime(r.expires), CreatedAt: created, UpdatedAt: created,
		OrgID: r.org, ProjectID: r.projectID, ProjectName: r.projectName, TraceID: r.traceID,
	}
	if r.resType != "" || r.resID != "" || r.resName != "" {
		rec.Resource = &schema.Resource{Type: r.resType, ID: r.resID, Name: r.resName}
	}
	return rec
}

// summary is a one-line description of the event, for destinations that
// want a message (Datadog).
func (r *row) summary() string {
	s := r.eventType + " by " + r.actorType
	if r.actorID != "" {
		s += " " + schema.Truncate(r.actorID, 128)
	}
	if r.projectName != "" {
		s += " in " + schema.Truncate(r.projectName, 128)
	}
	return s
}

// shrink returns rec cut down by level: 1 replaces both metadata objects by
// a note of their size, 2 keeps only the identifying fields. Destinations
// cap a single element's size (Datadog 1 MB per log, Azure 1 MB per call);
// an event over the cap is sent cut rather than blocking its stream.
func shrink(rec record, level int) record {
	rec.Truncated = true
	note := func(m json.RawMessage) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"truncated":true,"bytes":%d}`, len(m)))
	}
	rec.EventMetadata, rec.ActorMetadata = note(rec.EventMetadata), note(rec.ActorMetadata)
	if level >= 2 {
		rec = record{ID: rec.ID, Actor: rec.Actor, ActorMetadata: rec.ActorMetadata, EventType: rec.EventType,
			EventMetadata: rec.EventMetadata, ExpiresAt: rec.ExpiresAt, CreatedAt: rec.CreatedAt,
			UpdatedAt: rec.UpdatedAt, OrgID: rec.OrgID, IPAddress: schema.Truncate(rec.IPAddress, 64), Truncated: true}
	}
	return rec
}

// sampleRow is the event POST /v1/streams/{id}/test sends.
func sampleRow(org, streamID string, now time.Time) row {
	id := uuid.Must(uuid.NewV7())
	md, _ := json.Marshal(map[string]string{"message": "auditstore stream test event", "streamId": streamID})
	return row{id: id, ts: now, received: now, expires: now.Add(24 * time.Hour), org: org,
		eventType: "stream.test", eventMeta: string(md), actorType: "platform", actorMet: `{"name":"auditstore"}`,
		uaType: "api", resType: "stream", resID: streamID}
}
