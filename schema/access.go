package schema

import "slices"

// The types of the store's own access records: reads of the log. They are
// kept like any event, but lists, counts and aggregates leave them out
// unless asked for (see Filter.ExcludeTypes).
const (
	TypeQuery         = "audit-log.query"          // one read through the query API
	TypeExport        = "audit-log.export"         // one export
	TypeReadSession   = "audit-log.session"        // a read session began (the console)
	TypeViewerSession = "audit-log.viewer-session" // an embedded viewer's session began
)

// AccessEventTypes lists the access record types.
var AccessEventTypes = []string{TypeQuery, TypeExport, TypeReadSession, TypeViewerSession}

// IsAccessEventType reports whether t is the type of an access record.
func IsAccessEventType(t string) bool { return slices.Contains(AccessEventTypes, t) }

// Viewer is the credential of an embedded viewer: one of an org's own
// users, let in by a short-lived token its backend asked for. Scope holds
// fixed conditions (per field, the values allowed) AND-ed with every filter
// the viewer sends, so a viewer can narrow its view but never widen it.
type Viewer struct {
	SessionID string
	UserID    string
	Scope     map[Field][]string
	Read      bool // may list, aggregate and read events
	Export    bool // may export
}

// ScopeFields are the fields a viewer's scope may fix.
var ScopeFields = []Field{FieldResourceType, FieldResourceID, FieldProjectID, FieldActorID}
