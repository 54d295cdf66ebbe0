package schema

import (
	"context"
	"fmt"
	"regexp"
	"time"
)

// Role is what an API key may do. A key belongs to exactly one org.
type Role string

// The roles: ingest may only write events; read may query, aggregate and
// export its org's events; admin may read too, and manage its org's keys and
// streams.
const (
	RoleIngest Role = "ingest"
	RoleRead   Role = "read"
	RoleAdmin  Role = "admin"
	// RoleViewer is an embedded viewer's session, never an API key's role.
	RoleViewer Role = "viewer"
)

// Roles lists the valid roles.
var Roles = []Role{RoleIngest, RoleRead, RoleAdmin}

// ParseRole returns the role named s, or a KindInvalid error.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", Invalid("invalid_role", fmt.Sprintf("role %q is not one of ingest, read, admin", s),
		FieldError{Index: -1, Field: "role", Code: "enum", Message: "role must be ingest, read or admin"})
}

// Permission is one family of endpoints.
type Permission string

// The permissions, one per endpoint family.
const (
	PermWriteEvents Permission = "events:write"  // POST /v1/events
	PermReadEvents  Permission = "events:read"   // queries, aggregates
	PermExport      Permission = "events:export" // exports
	PermManageOrg   Permission = "org:manage"    // the org's keys and streams
	PermOperate     Permission = "orgs:operate"  // create orgs, change plans (operator only)
)

var rolePermissions = map[Role][]Permission{
	RoleIngest: {PermWriteEvents},
	RoleRead:   {PermReadEvents, PermExport},
	RoleAdmin:  {PermReadEvents, PermExport, PermManageOrg},
}

// Principal is who is calling: an org's API key, or the operator (the admin
// token), who manages orgs but belongs to none.
type Principal struct {
	OrgID    string // "" for the operator
	Role     Role   // "" for the operator
	KeyID    string // "" for the operator
	Operator bool
	// Viewer is set for an embedded viewer's session (Role is then
	// RoleViewer): its scope and capabilities.
	Viewer *Viewer
}

// Can reports whether p holds perm.
func (p Principal) Can(perm Permission) bool {
	if p.Operator {
		// The operator manages orgs and their keys (CanManage) but holds no
		// org-scoped permission: it reads no events and owns no streams.
		return perm == PermOperate
	}
	if p.Viewer != nil {
		return perm == PermReadEvents && p.Viewer.Read || perm == PermExport && p.Viewer.Export
	}
	for _, have := range rolePermissions[p.Role] {
		if have == perm {
			return true
		}
	}
	return false
}

// CanManage reports whether p may manage the keys and streams of org.
func (p Principal) CanManage(org string) bool {
	return p.Operator || (p.Can(PermManageOrg) && p.OrgID == org)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the authentication middleware put in
// ctx; ok is false when there is none.
func PrincipalFrom(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// OrgIDPattern is what an org id must match: 1-64 characters, letters,
// digits, '-', '_' and '.', starting with a letter or digit (UUIDs fit).
var OrgIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Org is a tenant.
type Org struct {
	ID   string `json:"id"`
	Plan string `json:"plan"`
	// TraceURL is the org's link-out template from a trace id to its
	// execution-log tool ("" : the server's default applies).
	TraceURL  string    `json:"traceUrl"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// APIKey describes a key without its secret.
type APIKey struct {
	ID        string     `json:"id"`
	OrgID     string     `json:"orgId"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// MaxKeyNameBytes bounds an API key's name.
const MaxKeyNameBytes = 200
