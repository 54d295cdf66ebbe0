package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Attribution is who performed an operation on the store itself, and from
// where: the store records its own audit trail (key changes, queries,
// exports) as events of the org concerned, as the products it replaces do.
type Attribution struct {
	Principal Principal
	IPAddress string
	UserAgent string
}

// The self-audit event types of reads: every read of an org's events or
// configuration, by a key of the org or by the operator, is recorded as an
// event of the org before the answer is sent (a read that cannot be
// recorded is refused).
const (
	EventQuery      = "audit-log.query"  // events listed, one read, aggregates, event types
	EventExport     = "audit-log.export" // a bulk export
	EventOrgRead    = "org.read"         // GET /v1/orgs/{id}
	EventKeyList    = "api-key.list"     // GET /v1/orgs/{id}/keys
	EventStreamList = "stream.list"      // GET /v1/streams
	EventStreamRead = "stream.read"      // GET /v1/streams/{id}
)

// ErrAuditUnavailable refuses a read that could not be recorded.
var ErrAuditUnavailable = Unavailable("audit_unavailable",
	"the read could not be recorded in the audit log, so it was not done; retry later")

// ChangeUndone is the 503 of a change of type typ undone because its audit
// record could not be written (cause). The cause's message is shown only
// when it is a client-safe unavailability (e.g. wal_full); other causes
// belong in the log.
func ChangeUndone(typ string, cause error) *Error {
	msg := fmt.Sprintf("nothing was changed: the audit record of this change (%s) could not be written; retry later", typ)
	var se *Error
	if errors.As(cause, &se) && se.Kind == KindUnavailable {
		msg += " (" + se.Message + ")"
	}
	return Unavailable("audit_unavailable", msg)
}

// maxSelfAuditUserAgent bounds the user agent copied into a self-audit event.
const maxSelfAuditUserAgent = 512

// Event builds the audit event of an operation of type typ on res, with
// metadata md (nil for none), timestamped now. An API key appears as actor
// type "apiKey" with its key id; the operator as actor type "platform".
func (a Attribution) Event(typ string, res *Resource, md map[string]any, now time.Time) Event {
	e := Event{
		ID:            NewEventID(),
		Timestamp:     now.UTC(),
		Event:         EventInfo{Type: typ},
		Resource:      res,
		UserAgentType: "api",
	}
	if md != nil {
		e.Event.Metadata, _ = json.Marshal(md) // maps of plain values always marshal
	}
	p := a.Principal
	switch {
	case p.Operator:
		e.Actor = Actor{Type: "platform", Metadata: json.RawMessage(`{"name":"operator"}`)}
	case p.Viewer != nil:
		// An embedded viewer is one of the org's own users.
		e.Actor.Type = "user"
		e.Actor.Metadata, _ = json.Marshal(map[string]string{"userId": p.Viewer.UserID, "viewerSession": p.Viewer.SessionID})
		e.OrgID = p.OrgID
	default:
		e.Actor.Type = "apiKey"
		e.Actor.Metadata, _ = json.Marshal(map[string]string{"keyId": p.KeyID, "role": string(p.Role)})
		e.OrgID = p.OrgID
	}
	if addr, err := netip.ParseAddr(a.IPAddress); err == nil {
		e.IPAddress = addr.Unmap().WithZone("").String()
	}
	e.UserAgent = a.UserAgent
	if len(e.UserAgent) > maxSelfAuditUserAgent {
		e.UserAgent = e.UserAgent[:maxSelfAuditUserAgent]
	}
	return e
}
