package client

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Filter selects events; fields combine with AND, the values of one field
// with OR. The zero Filter selects everything the org's retention holds.
type Filter struct {
	EventTypes         []string
	ActorTypes         []string
	ActorIDs           []string // userId, serviceId or identityId
	ActorEmails        []string // exact
	ActorEmailPrefix   string   // case-insensitive
	ActorEmailContains string   // case-insensitive
	IPAddresses        []string // addresses or CIDR ranges
	UserAgentTypes     []string
	ProjectIDs         []string
	ResourceTypes      []string
	ResourceIDs        []string
	TraceIDs           []string
	From, To           time.Time // From inclusive, To exclusive; zero: unbounded
	// Metadata matches event metadata: key (nested keys with dots) → value.
	Metadata map[string]string
	// Params are further query parameters, sent as they are.
	Params url.Values
}

// Values returns f as query parameters.
func (f Filter) Values() url.Values {
	q := url.Values{}
	add := func(name string, vs []string) {
		for _, v := range vs {
			q.Add(name, v)
		}
	}
	add("eventType", f.EventTypes)
	add("actorType", f.ActorTypes)
	add("actorId", f.ActorIDs)
	add("actorEmail", f.ActorEmails)
	add("ipAddress", f.IPAddresses)
	add("userAgentType", f.UserAgentTypes)
	add("projectId", f.ProjectIDs)
	add("resourceType", f.ResourceTypes)
	add("resourceId", f.ResourceIDs)
	add("traceId", f.TraceIDs)
	if f.ActorEmailPrefix != "" {
		q.Set("actorEmailPrefix", f.ActorEmailPrefix)
	}
	if f.ActorEmailContains != "" {
		q.Set("actorEmailContains", f.ActorEmailContains)
	}
	if !f.From.IsZero() {
		q.Set("from", f.From.UTC().Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.UTC().Format(time.RFC3339Nano))
	}
	for k, v := range f.Metadata {
		q.Set("metadata."+k, v)
	}
	for k, vs := range f.Params {
		add(k, vs)
	}
	return q
}

// ListOptions selects one page of events.
type ListOptions struct {
	Filter
	// Resource or TraceID, when set, read that resource's or trace's
	// timeline (GET /v1/resources/{type}/{id}/events, /v1/traces/{id}/events).
	Resource *Resource
	TraceID  string
	Sort     string // timestamp (default), eventType or actor
	Order    string // desc (default) or asc
	Limit    int    // events per page; 0: the server's default (50)
	Page     int    // page number (page mode); 0: the first
	Cursor   string // nextCursor of the previous page (cursor mode)
}

func (o ListOptions) pathAndQuery() (string, url.Values) {
	q := o.Filter.Values()
	set := func(name, v string) {
		if v != "" {
			q.Set(name, v)
		}
	}
	set("sort", o.Sort)
	set("order", o.Order)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Page > 0 {
		q.Set("page", strconv.Itoa(o.Page))
	}
	set("cursor", o.Cursor)
	switch {
	case o.Resource != nil:
		return "/v1/resources/" + url.PathEscape(o.Resource.Type) + "/" + url.PathEscape(o.Resource.ID) + "/events", q
	case o.TraceID != "":
		return "/v1/traces/" + url.PathEscape(o.TraceID) + "/events", q
	}
	return "/v1/events", q
}

// Page is one page of events. In cursor mode Total, Page and Pages are
// nil; NextCursor is empty on the last page.
type Page struct {
	Events     []StoredEvent `json:"events"`
	Total      *int64        `json:"total"`
	Page       *int          `json:"page"`
	Pages      *int64        `json:"pages"`
	NextCursor string        `json:"nextCursor"`
}

// Events returns one page of events.
func (c *Client) Events(ctx context.Context, o ListOptions) (*Page, error) {
	path, q := o.pathAndQuery()
	var p Page
	if err := c.getJSON(ctx, path, q, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// All iterates over every event o selects, following the cursors page by
// page (o.Page is ignored; o.Cursor, when set, is where it starts). The
// iteration stops at the first error, which it yields.
func (c *Client) All(ctx context.Context, o ListOptions) iter.Seq2[StoredEvent, error] {
	return func(yield func(StoredEvent, error) bool) {
		o.Page = 0
		for {
			p, err := c.Events(ctx, o)
			if err != nil {
				yield(StoredEvent{}, err)
				return
			}
			for _, e := range p.Events {
				if !yield(e, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			o.Cursor = p.NextCursor
		}
	}
}

// Event returns one event by id; an *APIError with Status 404 when it is
// absent, expired or another org's.
func (c *Client) Event(ctx context.Context, id string) (*StoredEvent, error) {
	var e StoredEvent
	if err := c.getJSON(ctx, "/v1/events/"+url.PathEscape(id), nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// EventType is one entry of the event-type catalog.
type EventType struct {
	EventType string    `json:"eventType"`
	Count     int64     `json:"count"`
	LastSeen  time.Time `json:"lastSeen"`
}

// EventTypes returns the event types seen under f, with counts; truncated
// reports that the server cut the list.
func (c *Client) EventTypes(ctx context.Context, f Filter) (types []EventType, truncated bool, err error) {
	var out struct {
		EventTypes []EventType `json:"eventTypes"`
		Truncated  bool        `json:"truncated"`
	}
	if err := c.getJSON(ctx, "/v1/event-types", f.Values(), &out); err != nil {
		return nil, false, err
	}
	return out.EventTypes, out.Truncated, nil
}

// AggregateOptions asks for grouped counts.
type AggregateOptions struct {
	Filter
	GroupBy  []string // up to three of eventType, actorType, actorId, actorEmail, userAgentType, projectId, resourceType, ipAddress
	Interval string   // minute, hour, day, week or month: time buckets
	Metrics  []string // count, actors, resources, ips
	Top      int      // the top N groups, the rest summed as "other"
}

// Aggregates returns one flat row per group (and time bucket): the group
// fields, "time" with an interval, and the metrics.
func (c *Client) Aggregates(ctx context.Context, o AggregateOptions) ([]map[string]any, error) {
	q := o.Filter.Values()
	if len(o.GroupBy) > 0 {
		q.Set("groupBy", strings.Join(o.GroupBy, ","))
	}
	if o.Interval != "" {
		q.Set("interval", o.Interval)
	}
	if len(o.Metrics) > 0 {
		q.Set("metrics", strings.Join(o.Metrics, ","))
	}
	if o.Top > 0 {
		q.Set("top", strconv.Itoa(o.Top))
	}
	var out struct {
		Groups []map[string]any `json:"groups"`
	}
	if err := c.getJSON(ctx, "/v1/aggregates", q, &out); err != nil {
		return nil, err
	}
	return out.Groups, nil
}

// Export formats.
const (
	FormatParquet = "parquet"
	FormatArrow   = "arrow"
	FormatCSV     = "csv"
	FormatNDJSON  = "ndjson"
)

// Export streams every event f selects, oldest first, in format. The
// caller reads the answer to its end and closes it; an export that fails
// midway ends with a read error, never with a short file that looks whole.
func (c *Client) Export(ctx context.Context, format string, f Filter) (io.ReadCloser, error) {
	q := f.Values()
	q.Set("format", format)
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/export", query: q}, http.StatusOK)
	if err != nil {
		return nil, err
	}
	if resp.Header.Get("Content-Disposition") == "" {
		resp.Body.Close()
		return nil, fmt.Errorf("the server's export answer is not a download")
	}
	return resp.Body, nil
}
