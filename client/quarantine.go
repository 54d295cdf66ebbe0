package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// QuarantineEntry is one entry of a node's quarantine: events ClickHouse
// refused for good, or a damaged write-ahead log record (Damaged).
type QuarantineEntry struct {
	ID             string    `json:"id"`
	QuarantinedAt  time.Time `json:"quarantinedAt"`
	LSN            uint64    `json:"lsn"`
	Events         int       `json:"events"`
	EventIDs       []string  `json:"eventIds"`
	Orgs           []string  `json:"orgs"`
	Reason         string    `json:"reason"`
	ClickHouseCode int32     `json:"clickhouseCode"`
	Damaged        bool      `json:"damaged"`
}

// Quarantine is what one node set aside (operator token).
type Quarantine struct {
	Node    string            `json:"node"`
	Entries []QuarantineEntry `json:"entries"`
}

// Quarantine lists the quarantine of the node the client talks to.
func (c *Client) Quarantine(ctx context.Context) (*Quarantine, error) {
	var out Quarantine
	err := c.getJSON(ctx, "/v1/quarantine", nil, &out)
	return &out, err
}

// ReplayQuarantined puts an entry's events back into the node's
// write-ahead log; it returns how many were replayed.
func (c *Client) ReplayQuarantined(ctx context.Context, id string) (int, error) {
	var out struct {
		Replayed int `json:"replayed"`
	}
	err := c.callJSON(ctx, http.MethodPost, "/v1/quarantine/"+url.PathEscape(id)+"/replay", nil, nil, &out, http.StatusAccepted)
	return out.Replayed, err
}

// DiscardQuarantined deletes an entry for good.
func (c *Client) DiscardQuarantined(ctx context.Context, id string) error {
	return c.callJSON(ctx, http.MethodDelete, "/v1/quarantine/"+url.PathEscape(id), nil, nil, nil, http.StatusNoContent)
}
