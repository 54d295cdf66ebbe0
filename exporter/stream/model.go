package stream

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/auditstore/auditstore/exporter/internal/flow"
	"github.com/auditstore/auditstore/schema"
)

// Stream is a stream as the API shows it: its configuration with every
// credential masked, and its delivery status.
type Stream struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"orgId"`
	Name      string    `json:"name"`
	Provider  string    `json:"provider"`
	Config    any       `json:"config"` // masked; null when it cannot be decrypted
	Filter    Filter    `json:"filter"`
	Paused    bool      `json:"paused"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Status    *Status   `json:"status,omitempty"`
}

// Filter narrows a stream to some events; an empty list admits all.
type Filter struct {
	// EventTypes admits only these event types (exact, case-sensitive).
	EventTypes []string `json:"eventTypes,omitempty"`
	// ActorTypes admits only events of these actor types.
	ActorTypes []string `json:"actorTypes,omitempty"`
}

// The states of a stream.
const (
	StateActive   = flow.StateActive   // delivering, or caught up
	StateRetrying = flow.StateRetrying // a retryable failure (timeout, 429, 5xx); backing off
	StateFailing  = flow.StateFailing  // refused by the destination, or its breaker is open
	StatePaused   = flow.StatePaused   // paused by PATCH {"paused": true}
)

// Status is where a stream stands.
type Status struct {
	State string `json:"state"`
	// LastEventAt is the receive time of the last event delivered.
	LastEventAt *time.Time `json:"lastEventAt"`
	// LastDeliveryAt is when the destination last acknowledged a batch.
	LastDeliveryAt *time.Time `json:"lastDeliveryAt"`
	// LagEvents counts the events not yet delivered; LagSeconds is the age
	// of the oldest of them (0 when there is none).
	LagEvents  uint64  `json:"lagEvents"`
	LagSeconds float64 `json:"lagSeconds"`
	// Delivered counts the events acknowledged by the destination;
	// Failed counts the events of failed attempts (an event retried three
	// times counts three).
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	// LastError is the last failure, credentials removed; LastErrorAt its time.
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// Limits of a stream's fields.
const (
	maxNameBytes      = 200
	maxFilterEntries  = 100
	maxHeaders        = 20
	maxHeaderBytes    = 4 << 10
	maxConfigStrBytes = 2048
)

func checkName(name string) error {
	if name == "" || len(name) > maxNameBytes || !utf8.ValidString(name) || hasControl(name) {
		return schema.Invalid("invalid_stream", fmt.Sprintf("name must be 1 to %d bytes of text without control characters", maxNameBytes),
			schema.FieldError{Index: -1, Field: "name", Code: "invalid", Message: "name is required, at most 200 bytes, no control characters"})
	}
	return nil
}

// check validates f and returns it normalized (sorted, without duplicates).
func (f Filter) check() (Filter, error) {
	bad := func(field, msg string) error {
		return schema.Invalid("invalid_stream", "invalid filter: "+msg,
			schema.FieldError{Index: -1, Field: field, Code: "invalid", Message: msg})
	}
	if len(f.EventTypes) > maxFilterEntries || len(f.ActorTypes) > maxFilterEntries {
		return f, bad("filter", fmt.Sprintf("at most %d event types and %d actor types", maxFilterEntries, maxFilterEntries))
	}
	for _, t := range f.EventTypes {
		if !schema.ValidEventType(t) {
			return f, bad("filter.eventTypes", fmt.Sprintf("%q is not a valid event type", schema.Truncate(t, 64)))
		}
	}
	for _, t := range f.ActorTypes {
		if !slices.Contains(schema.ActorTypes, t) {
			return f, bad("filter.actorTypes", fmt.Sprintf("%q is not an actor type (%v)", schema.Truncate(t, 64), schema.ActorTypes))
		}
	}
	norm := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		s = slices.Clone(s)
		slices.Sort(s)
		return slices.Compact(s)
	}
	return Filter{EventTypes: norm(f.EventTypes), ActorTypes: norm(f.ActorTypes)}, nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// mask hides a credential: long ones keep their last four characters so
// that an admin can tell keys apart.
func mask(secret string) string {
	if len(secret) >= 20 {
		return "****" + secret[len(secret)-4:]
	}
	return "********"
}

// keep returns old when v is the masked form of old (a client sending back
// what it read), else v.
func keep(v, old string) string {
	if old != "" && v == mask(old) {
		return old
	}
	return v
}
