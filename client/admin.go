package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Org is an organization (tenant) and its plan.
type Org struct {
	ID        string    `json:"id"`
	Plan      string    `json:"plan"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Key is an API key; Secret is set only in the answer that created it.
type Key struct {
	ID        string     `json:"id"`
	OrgID     string     `json:"orgId"`
	Name      string     `json:"name"`
	Role      string     `json:"role"` // ingest, read or admin
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	Secret    string     `json:"key,omitempty"`
}

// CreateOrg creates an org (operator token).
func (c *Client) CreateOrg(ctx context.Context, id, plan string) (*Org, error) {
	var o Org
	err := c.callJSON(ctx, http.MethodPost, "/v1/orgs", nil, map[string]string{"id": id, "plan": plan}, &o, http.StatusCreated)
	return &o, err
}

// Org returns an org.
func (c *Client) Org(ctx context.Context, id string) (*Org, error) {
	var o Org
	err := c.getJSON(ctx, "/v1/orgs/"+url.PathEscape(id), nil, &o)
	return &o, err
}

// SetPlan changes an org's plan (operator token).
func (c *Client) SetPlan(ctx context.Context, id, plan string) (*Org, error) {
	var o Org
	err := c.callJSON(ctx, http.MethodPatch, "/v1/orgs/"+url.PathEscape(id), nil, map[string]string{"plan": plan}, &o, http.StatusOK)
	return &o, err
}

// CreateKey creates an API key of org; its Secret is returned only here.
func (c *Client) CreateKey(ctx context.Context, org, role, name string) (*Key, error) {
	var k Key
	err := c.callJSON(ctx, http.MethodPost, "/v1/orgs/"+url.PathEscape(org)+"/keys", nil,
		map[string]string{"role": role, "name": name}, &k, http.StatusCreated)
	return &k, err
}

// Keys lists org's keys, without secrets.
func (c *Client) Keys(ctx context.Context, org string) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	err := c.getJSON(ctx, "/v1/orgs/"+url.PathEscape(org)+"/keys", nil, &out)
	return out.Keys, err
}

// RevokeKey revokes one of org's keys.
func (c *Client) RevokeKey(ctx context.Context, org, keyID string) error {
	return c.callJSON(ctx, http.MethodDelete, "/v1/orgs/"+url.PathEscape(org)+"/keys/"+url.PathEscape(keyID),
		nil, nil, nil, http.StatusOK, http.StatusNoContent)
}

// Stream is an audit log stream to a log tool. Config is the provider's
// configuration, credentials masked in answers.
type Stream struct {
	ID        string          `json:"id,omitempty"`
	OrgID     string          `json:"orgId,omitempty"`
	Name      string          `json:"name"`
	Provider  string          `json:"provider"` // datadog, splunk, cribl, azure, custom
	Config    json.RawMessage `json:"config"`
	Filter    StreamFilter    `json:"filter"`
	Paused    bool            `json:"paused"`
	CreatedAt time.Time       `json:"createdAt,omitzero"`
	UpdatedAt time.Time       `json:"updatedAt,omitzero"`
	Status    *StreamStatus   `json:"status,omitempty"`
}

// StreamFilter limits a stream to some event and actor types.
type StreamFilter struct {
	EventTypes []string `json:"eventTypes,omitempty"`
	ActorTypes []string `json:"actorTypes,omitempty"`
}

// StreamStatus is how a stream's delivery goes.
type StreamStatus struct {
	State          string     `json:"state"` // active, retrying, failing, paused
	LastEventAt    *time.Time `json:"lastEventAt"`
	LastDeliveryAt *time.Time `json:"lastDeliveryAt"`
	LagEvents      uint64     `json:"lagEvents"`
	LagSeconds     float64    `json:"lagSeconds"`
	Delivered      uint64     `json:"delivered"`
	Failed         uint64     `json:"failed"`
	LastError      string     `json:"lastError,omitempty"`
	LastErrorAt    *time.Time `json:"lastErrorAt,omitempty"`
}

// StreamUpdate changes the fields that are not nil.
type StreamUpdate struct {
	Name   *string         `json:"name,omitempty"`
	Config json.RawMessage `json:"config,omitempty"`
	Filter *StreamFilter   `json:"filter,omitempty"`
	Paused *bool           `json:"paused,omitempty"`
}

// StreamTest is the result of sending one sample event.
type StreamTest struct {
	OK         bool   `json:"ok"`
	Status     int    `json:"status,omitempty"`
	Answer     string `json:"answer,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
}

// CreateStream creates a stream (admin key).
func (c *Client) CreateStream(ctx context.Context, s Stream) (*Stream, error) {
	in := struct {
		Name     string          `json:"name"`
		Provider string          `json:"provider"`
		Config   json.RawMessage `json:"config"`
		Filter   StreamFilter    `json:"filter"`
		Paused   bool            `json:"paused"`
	}{s.Name, s.Provider, s.Config, s.Filter, s.Paused}
	var out Stream
	err := c.callJSON(ctx, http.MethodPost, "/v1/streams", nil, in, &out, http.StatusCreated)
	return &out, err
}

// Streams lists the org's streams.
func (c *Client) Streams(ctx context.Context) ([]Stream, error) {
	var out struct {
		Streams []Stream `json:"streams"`
	}
	err := c.getJSON(ctx, "/v1/streams", nil, &out)
	return out.Streams, err
}

// Stream returns one stream with its status.
func (c *Client) Stream(ctx context.Context, id string) (*Stream, error) {
	var out Stream
	err := c.getJSON(ctx, "/v1/streams/"+url.PathEscape(id), nil, &out)
	return &out, err
}

// UpdateStream changes a stream.
func (c *Client) UpdateStream(ctx context.Context, id string, u StreamUpdate) (*Stream, error) {
	var out Stream
	err := c.callJSON(ctx, http.MethodPatch, "/v1/streams/"+url.PathEscape(id), nil, u, &out, http.StatusOK)
	return &out, err
}

// DeleteStream deletes a stream.
func (c *Client) DeleteStream(ctx context.Context, id string) error {
	return c.callJSON(ctx, http.MethodDelete, "/v1/streams/"+url.PathEscape(id), nil, nil, nil, http.StatusNoContent)
}

// TestStream sends one sample event to the stream's destination.
func (c *Client) TestStream(ctx context.Context, id string) (*StreamTest, error) {
	var out StreamTest
	err := c.callJSON(ctx, http.MethodPost, "/v1/streams/"+url.PathEscape(id)+"/test", nil, nil, &out, http.StatusOK)
	return &out, err
}
