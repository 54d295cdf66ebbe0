package schema

import (
	"time"

	"github.com/google/uuid"
)

// Row is an event as stored in EventsTable: the wire format flattened into
// columns, plus what the store adds (org from the credential, receive time,
// expiry from the org's plan).
type Row struct {
	OrgID         string
	Timestamp     time.Time
	ID            uuid.UUID
	EventType     string
	EventMetadata string // JSON object as given, "" when absent
	ActorType     string
	ActorID       string
	ActorEmail    string
	ActorUsername string
	ActorName     string
	ActorMetadata string // JSON object as given, "" when absent
	ProjectID     string
	ProjectName   string
	ResourceType  string
	ResourceID    string
	ResourceName  string
	IPAddress     string
	UserAgent     string
	UserAgentType string
	TraceID       string
	ReceivedAt    time.Time
	ExpiresAt     time.Time
}

// InsertColumns are the columns of EventsTable a writer fills, in the order
// of Row.Values. created_at is left to its default (the insert time).
var InsertColumns = []string{
	"org_id", "timestamp", "id", "event_type", "event_metadata",
	"actor_type", "actor_id", "actor_email", "actor_username", "actor_name", "actor_metadata",
	"project_id", "project_name", "resource_type", "resource_id", "resource_name",
	"ip_address", "user_agent", "user_agent_type", "trace_id", "received_at", "expires_at",
}

// NewRow builds the stored form of a validated event for org, received at
// received by an org on plan. An absent id or timestamp must have been filled
// in by the caller (see NewEventID); a malformed id yields the nil UUID.
func NewRow(e *Event, org string, received time.Time, plan Plan) Row {
	id, _ := uuid.Parse(e.ID)
	who := e.Actor.Identity()
	r := Row{
		OrgID:         org,
		Timestamp:     e.Timestamp.UTC(),
		ID:            id,
		EventType:     e.Event.Type,
		EventMetadata: string(e.Event.Metadata),
		ActorType:     e.Actor.Type,
		ActorID:       who.ID,
		ActorEmail:    who.Email,
		ActorUsername: who.Username,
		ActorName:     who.Name,
		ActorMetadata: string(e.Actor.Metadata),
		ProjectID:     e.ProjectID,
		ProjectName:   e.ProjectName,
		IPAddress:     e.IPAddress,
		UserAgent:     e.UserAgent,
		UserAgentType: e.UserAgentType,
		TraceID:       e.TraceID,
		ReceivedAt:    received.UTC(),
		ExpiresAt:     plan.ExpiresAt(received),
	}
	if e.Resource != nil {
		r.ResourceType, r.ResourceID, r.ResourceName = e.Resource.Type, e.Resource.ID, e.Resource.Name
	}
	return r
}

// Values returns the row's values in InsertColumns order.
func (r *Row) Values() []any {
	return []any{
		r.OrgID, r.Timestamp, r.ID, r.EventType, r.EventMetadata,
		r.ActorType, r.ActorID, r.ActorEmail, r.ActorUsername, r.ActorName, r.ActorMetadata,
		r.ProjectID, r.ProjectName, r.ResourceType, r.ResourceID, r.ResourceName,
		r.IPAddress, r.UserAgent, r.UserAgentType, r.TraceID, r.ReceivedAt, r.ExpiresAt,
	}
}

// WriteColumns are the columns a writer of EventsTable fills:
// InsertColumns, then the hashes a metadata filter reads
// (ColMetadataHashes), in the order of Row.WriteValues.
var WriteColumns = append(InsertColumns[:len(InsertColumns):len(InsertColumns)], ColMetadataHashes)

// WriteValues returns the row's values in WriteColumns order.
func (r *Row) WriteValues() []any {
	return append(r.Values(), MetadataHashes(r.EventMetadata))
}
