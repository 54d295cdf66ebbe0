package query

import (
	"slices"

	"github.com/auditstore/auditstore/schema"
)

// inScope reports whether a stored row lies within a viewer's fixed scope.
func inScope(scope map[schema.Field][]string, r *schema.Row) bool {
	for field, allowed := range scope {
		var v string
		switch field {
		case schema.FieldResourceType:
			v = r.ResourceType
		case schema.FieldResourceID:
			v = r.ResourceID
		case schema.FieldProjectID:
			v = r.ProjectID
		case schema.FieldActorID:
			v = r.ActorID
		default:
			return false
		}
		if !slices.Contains(allowed, v) {
			return false
		}
	}
	return true
}
