// Package query serves an org's audit events to product UIs, security
// teams and analysts: filtered lists with page and cursor paging, single
// events, resource and trace timelines, the event-type catalog and
// aggregates. Handlers parse the URL into schema's Filter with
// internal/readsql, the Reader plans the reads and has readsql compile them
// into SQL text with server-side parameters, and the store runs them on
// ClickHouse. The org always comes from the caller's credential.
package query

import (
	"errors"
	"time"

	"github.com/auditstore/auditstore/internal/readsql"
)

// Config configures the query endpoints.
type Config struct {
	// CursorKey signs the paging cursors (HMAC-SHA256); at least 32 bytes.
	// Give every instance behind one address the same key, and keep it
	// across restarts, for cursors to stay valid. Empty: New generates a
	// random key, so that cursors are refused after a restart or by another
	// instance (clients then start over from the first page).
	CursorKey []byte
	// QueryTimeout bounds each ClickHouse query; a query running longer is
	// answered 503 query_timeout. Default 30s.
	QueryTimeout time.Duration
	// MaxOffset bounds page mode: (page-1)*limit may not exceed it, deeper
	// pages are reached with the cursor. Default 100,000.
	MaxOffset int
	// MaxGroups bounds the rows of an aggregate; more is a 400 asking for
	// top, a coarser interval or narrower filters. Default 10,000.
	MaxGroups int
	// MaxEventTypes bounds the event-type catalog. Default 10,000.
	MaxEventTypes int
	// MaxValueBytes bounds each filter value. Default 16 KiB, the longest
	// string event metadata may hold.
	MaxValueBytes int
	// MaxValues bounds the values of one filter parameter. Default 100.
	MaxValues int
	// MaxPageBytes bounds the bytes of the events of one page (their text
	// fields, about their size in the answer): a page whose events pass it
	// ends at the event that passes it, with "truncated": true and a cursor
	// for the rest. Default 8 MiB.
	MaxPageBytes int
	// HourCounts bounds the exact per-hour event counts the reader keeps
	// (org, hour; about 100 bytes each) to answer the totals of ranges
	// narrowed by time alone without reading their events again while
	// the hour has had no write; 0 keeps none. Default 500,000 (a year of
	// hours for 57 orgs); a full cache drops a random tenth.
	HourCounts int
	// HourSettle is how old an hour's latest write must be (by
	// ClickHouse's clock) before its count is kept: the mark of an insert
	// may become visible just before its events. Default 2 minutes.
	HourSettle time.Duration
	// FilterHourCounts bounds likewise the counts kept of filtered ranges
	// (any condition besides time, a viewer's scope included; org, filter
	// and hour, about 130 bytes each), so that a filtered view shown again
	// (its next page, a refresh, its histogram) adds known hours; 0 keeps
	// none. Default 200,000. Kept apart from HourCounts: many filters never
	// evict the counts of whole orgs.
	FilterHourCounts int
	// TypeHourCounts bounds likewise the counts kept per hour and event
	// type for the event-type catalog (GET /v1/event-types), of whole orgs
	// and filtered ranges alike; an hour costs one plus its types (about
	// 100 bytes each). 0 keeps none: each catalog reads its range's events.
	// Default 500,000 (30 days of 30 types for 22 orgs).
	TypeHourCounts int
	// DayGroups keeps, in ClickHouse (schema.DayGroupsTable), the event
	// counts per group of whole UTC days (single days, and weeks of days a
	// week old or more) for the aggregates that count events per group
	// over a range narrowed by time alone (a top-10 of actors over 90
	// days), and answers them again from the blocks not written since,
	// reading only the partial days at the range's ends and the days
	// written lately. The first such aggregate of an org is read from the
	// events, and its blocks are counted and written in the background (one
	// count at a time on a server). Rows leave after 30 days or at their events'
	// expiry. Off: every such aggregate groups its range's events. Default
	// on.
	DayGroups bool
}

// DefaultConfig returns the defaults; CursorKey remains to be set.
func DefaultConfig() Config {
	return Config{
		QueryTimeout:     30 * time.Second,
		MaxOffset:        100_000,
		MaxGroups:        10_000,
		MaxEventTypes:    10_000,
		MaxValueBytes:    16 << 10,
		MaxValues:        100,
		MaxPageBytes:     8 << 20,
		HourCounts:       500_000,
		HourSettle:       2 * time.Minute,
		FilterHourCounts: 200_000,
		TypeHourCounts:   500_000,
		DayGroups:        true,
	}
}

// MinCursorKeyBytes is the shortest accepted CursorKey.
const MinCursorKeyBytes = 32

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case len(c.CursorKey) > 0 && len(c.CursorKey) < MinCursorKeyBytes:
		return errors.New("query: the cursor key must be at least 32 bytes")
	case c.QueryTimeout < time.Second:
		return errors.New("query: the query timeout must be at least 1s")
	case c.MaxOffset < 0:
		return errors.New("query: max offset must not be negative")
	case c.MaxGroups <= 0 || c.MaxEventTypes <= 0:
		return errors.New("query: max groups and max event types must be positive")
	case c.MaxValueBytes <= 0 || c.MaxValues <= 0 || c.MaxPageBytes <= 0:
		return errors.New("query: max value bytes, max values and max page bytes must be positive")
	case c.HourCounts < 0 || c.FilterHourCounts < 0 || c.TypeHourCounts < 0 || c.HourSettle < 0:
		return errors.New("query: hour counts and hour settle must not be negative")
	}
	return nil
}

// limits are the bounds of a request's parameters.
func (c Config) limits() readsql.Limits {
	return readsql.Limits{MaxValueBytes: c.MaxValueBytes, MaxValues: c.MaxValues, MaxOffset: c.MaxOffset}
}
