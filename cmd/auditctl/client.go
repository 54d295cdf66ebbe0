package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client calls the auditstore API with one key.
type client struct {
	base string
	key  string
	http *http.Client
}

// apiError is an error answer of the API, in its JSON shape.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Field   string `json:"field"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"details"`
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server answered %d %s: %s", e.Status, e.Code, e.Message)
	for _, d := range e.Details {
		fmt.Fprintf(&b, "\n  %s: %s (%s)", d.Field, d.Message, d.Code)
	}
	return b.String()
}

// get sends GET path?q and returns the response when it is 200; any other
// answer becomes an *apiError (or a plain error for a non-API answer).
func (c *client) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	return c.do(ctx, http.MethodGet, path, q)
}

// do sends method path?q (no body) and returns the response when it is a
// 2xx; any other answer becomes an *apiError (or a plain error).
func (c *client) do(ctx context.Context, method, path string, q url.Values) (*http.Response, error) {
	u := strings.TrimRight(c.base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("bad server URL %q: %w", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("User-Agent", "auditctl")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var wrapped struct {
		Error apiError `json:"error"`
	}
	if json.Unmarshal(body, &wrapped) == nil && wrapped.Error.Code != "" {
		wrapped.Error.Status = resp.StatusCode
		return nil, &wrapped.Error
	}
	return nil, fmt.Errorf("server answered %s: %.200s", resp.Status, body)
}

// getJSON decodes a 200 answer into v.
func (c *client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.get(ctx, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("unreadable answer from the server: %w", err)
	}
	return nil
}

// event is what the CLI shows of an event (the wire format, loosely).
type event struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Event     struct {
		Type     string          `json:"type"`
		Metadata json.RawMessage `json:"metadata"`
	} `json:"event"`
	Actor struct {
		Type     string          `json:"type"`
		Metadata json.RawMessage `json:"metadata"`
	} `json:"actor"`
	Resource *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"resource"`
	IPAddress string `json:"ipAddress"`
	raw       json.RawMessage
}

func (e *event) UnmarshalJSON(b []byte) error {
	type plain event
	if err := json.Unmarshal(b, (*plain)(e)); err != nil {
		return err
	}
	e.raw = append(json.RawMessage(nil), b...)
	return nil
}

// actor names who acted, from the identity fields products use.
func (e *event) actor() string {
	var m map[string]any
	_ = json.Unmarshal(e.Actor.Metadata, &m)
	for _, k := range []string{"email", "username", "userId", "serviceId", "identityId", "keyId", "name"} {
		if s, ok := m[k].(string); ok && s != "" {
			return e.Actor.Type + ":" + s
		}
	}
	return e.Actor.Type
}

type page struct {
	Events     []event `json:"events"`
	Total      int     `json:"total"`
	Page       int     `json:"page"`
	Pages      int     `json:"pages"`
	NextCursor string  `json:"nextCursor"`
}
