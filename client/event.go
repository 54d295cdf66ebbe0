package client

import (
	"encoding/json"
	"time"
)

// Event is an audit event in the API's wire format. ID and Timestamp may
// be left empty: a Producer fills them in before the first attempt, so that
// every retry carries the same ones.
type Event struct {
	ID            string    `json:"id,omitempty"`
	Timestamp     time.Time `json:"timestamp,omitzero"`
	Action        Action    `json:"event"`
	Actor         Actor     `json:"actor"`
	OrgID         string    `json:"orgId,omitempty"`
	ProjectID     string    `json:"projectId,omitempty"`
	ProjectName   string    `json:"projectName,omitempty"`
	Resource      *Resource `json:"resource,omitempty"`
	IPAddress     string    `json:"ipAddress,omitempty"`
	UserAgent     string    `json:"userAgent,omitempty"`
	UserAgentType string    `json:"userAgentType,omitempty"`
	TraceID       string    `json:"traceId,omitempty"`
}

// Action is what happened: a type (e.g. "create-secret", "USER_LOGIN")
// and any JSON object of details.
type Action struct {
	Type     string         `json:"type"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Actor is who acted: a type (user, service, identity, platform,
// scimClient, unknownUser, apiKey) and identity fields such as userId,
// email, username, serviceId, identityId, name.
type Actor struct {
	Type     string         `json:"type"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Resource is what was acted on.
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// StoredEvent is an event as the server returns it: the wire format plus
// the times the store added. Raw holds the event's JSON as received.
type StoredEvent struct {
	Event
	ReceivedAt time.Time       `json:"receivedAt"`
	CreatedAt  time.Time       `json:"createdAt"`
	ExpiresAt  time.Time       `json:"expiresAt"`
	Raw        json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the event and keeps its raw JSON.
func (e *StoredEvent) UnmarshalJSON(b []byte) error {
	type plain StoredEvent
	if err := json.Unmarshal(b, (*plain)(e)); err != nil {
		return err
	}
	e.Raw = append(json.RawMessage(nil), b...)
	return nil
}
