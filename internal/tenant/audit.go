package tenant

import (
	"time"

	"github.com/auditstore/auditstore/schema"
)

// Attribution is who changed something, and from where.
type Attribution struct {
	schema.Attribution
	now func() time.Time
}

func (a Attribution) event(typ string, res *schema.Resource, md map[string]any) schema.Event {
	now := time.Now
	if a.now != nil {
		now = a.now
	}
	return a.Attribution.Event(typ, res, md, now())
}
