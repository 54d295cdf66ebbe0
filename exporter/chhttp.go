package exporter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// chHTTP runs queries on ClickHouse's HTTP interface and streams their
// output: the binary formats come out of ClickHouse ready to send.
type chHTTP struct {
	base     string // http://host:port/
	database string
	user     string
	password string
	client   *http.Client
}

func newCHHTTP(addr, database, user, password string) *chHTTP {
	if user == "" {
		user = "default"
	}
	return &chHTTP{
		base: "http://" + addr + "/", database: database, user: user, password: password,
		// No overall timeout: an export lasts as long as it needs; the
		// request context (the client's connection) bounds it.
		client: &http.Client{Transport: &http.Transport{
			ResponseHeaderTimeout: 5 * time.Minute,
			MaxIdleConnsPerHost:   8,
			DisableCompression:    true,
		}},
	}
}

func newQueryID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "auditstore-export-" + hex.EncodeToString(b[:])
}

// errClickHouse is a query ClickHouse refused; its text is for the log only.
type errClickHouse struct {
	status int
	body   string
}

func (e *errClickHouse) Error() string {
	return fmt.Sprintf("clickhouse answered %d: %s", e.status, e.body)
}

// stream starts query (SQL text whose values are all {name:Type}
// placeholders bound from params) and returns its output. Closing the body,
// or cancelling ctx, closes the connection, and ClickHouse cancels the query
// (cancel_http_readonly_queries_on_client_close).
func (c *chHTTP) stream(ctx context.Context, query, queryID string, params, settings map[string]string) (io.ReadCloser, error) {
	q := url.Values{}
	q.Set("database", c.database)
	q.Set("query_id", queryID)
	q.Set("cancel_http_readonly_queries_on_client_close", "1")
	q.Set("prefer_column_name_to_alias", "1")
	q.Set("readonly", "2") // reads only, settings allowed
	for k, v := range settings {
		q.Set(k, v)
	}
	for k, v := range params {
		q.Set("param_"+k, v)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"?"+q.Encode(), strings.NewReader(query))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-ClickHouse-User", c.user)
	if c.password != "" {
		req.Header.Set("X-ClickHouse-Key", c.password)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("clickhouse http: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &errClickHouse{status: resp.StatusCode, body: strings.TrimSpace(string(b))}
	}
	return resp.Body, nil
}

// running reports whether a query is still running (tests, cancellation).
func (c *chHTTP) running(ctx context.Context, queryID string) (bool, error) {
	body, err := c.stream(ctx, "SELECT count() FROM system.processes WHERE query_id = {q:String} FORMAT TSV",
		newQueryID(), map[string]string{"q": queryID}, nil)
	if err != nil {
		return false, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(string(b)) {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, errors.New("unexpected answer from system.processes")
}
