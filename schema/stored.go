package schema

import (
	"encoding/json"
	"time"
)

// StoredEvent is an event as the store returns it: the wire format plus
// what the store added.
type StoredEvent struct {
	Event
	// ReceivedAt is when the store accepted the event.
	ReceivedAt time.Time `json:"receivedAt"`
	// CreatedAt is when the event was written to ClickHouse.
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt is when the event leaves the store (its org's plan at
	// receipt); it never appears in reads after that.
	ExpiresAt time.Time `json:"expiresAt"`
}

// StoredColumns are the columns a reader selects to rebuild a StoredEvent:
// InsertColumns followed by created_at, in the order of Row.ScanTargets.
var StoredColumns = append(InsertColumns[:len(InsertColumns):len(InsertColumns)], "created_at")

// ScanTargets returns pointers to the fields of r, in InsertColumns order,
// followed by created: the destinations for a row of StoredColumns.
func (r *Row) ScanTargets(created *time.Time) []any {
	return []any{
		&r.OrgID, &r.Timestamp, &r.ID, &r.EventType, &r.EventMetadata,
		&r.ActorType, &r.ActorID, &r.ActorEmail, &r.ActorUsername, &r.ActorName, &r.ActorMetadata,
		&r.ProjectID, &r.ProjectName, &r.ResourceType, &r.ResourceID, &r.ResourceName,
		&r.IPAddress, &r.UserAgent, &r.UserAgentType, &r.TraceID, &r.ReceivedAt, &r.ExpiresAt,
		created,
	}
}

// Stored rebuilds the wire form of a stored row, written to ClickHouse at
// created. Metadata is returned as stored; absent metadata and an absent
// resource stay absent; times are in UTC.
func (r *Row) Stored(created time.Time) StoredEvent {
	e := StoredEvent{
		Event: Event{
			ID:            r.ID.String(),
			Timestamp:     r.Timestamp.UTC(),
			Event:         EventInfo{Type: r.EventType, Metadata: rawJSON(r.EventMetadata)},
			Actor:         Actor{Type: r.ActorType, Metadata: rawJSON(r.ActorMetadata)},
			OrgID:         r.OrgID,
			ProjectID:     r.ProjectID,
			ProjectName:   r.ProjectName,
			IPAddress:     r.IPAddress,
			UserAgent:     r.UserAgent,
			UserAgentType: r.UserAgentType,
			TraceID:       r.TraceID,
		},
		ReceivedAt: r.ReceivedAt.UTC(),
		CreatedAt:  created.UTC(),
		ExpiresAt:  r.ExpiresAt.UTC(),
	}
	if r.ResourceType != "" || r.ResourceID != "" || r.ResourceName != "" {
		e.Resource = &Resource{Type: r.ResourceType, ID: r.ResourceID, Name: r.ResourceName}
	}
	return e
}

// rawJSON returns stored metadata as raw JSON; nil when absent or not
// valid JSON (which validation never lets in), so that the response stays
// valid JSON whatever is on disk.
func rawJSON(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return nil
	}
	return json.RawMessage(s)
}
