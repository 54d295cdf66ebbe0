package schema

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event is one audit event: who (Actor) did what (Event) to which Resource,
// when, and from where. Its JSON form is the wire format of POST /v1/events.
type Event struct {
	// ID is a lowercase UUID, the idempotency key. Optional on input: the
	// ingest path fills it with NewEventID when absent.
	ID string `json:"id,omitempty"`
	// Timestamp is when the action happened, in UTC. Optional on input:
	// DecodeEvent leaves it zero when absent and the ingest path sets the
	// receive time; output always has it.
	Timestamp time.Time `json:"timestamp"`
	// Event says what happened.
	Event EventInfo `json:"event"`
	// Actor says who did it.
	Actor Actor `json:"actor"`
	// OrgID is the organization (tenant) the event belongs to.
	OrgID string `json:"orgId,omitempty"`
	// ProjectID and ProjectName identify the project within the org.
	ProjectID   string `json:"projectId,omitempty"`
	ProjectName string `json:"projectName,omitempty"`
	// Resource is what was acted on, if anything.
	Resource *Resource `json:"resource,omitempty"`
	// IPAddress is the client address in normal form (IPv4-mapped IPv6
	// addresses unmapped).
	IPAddress string `json:"ipAddress,omitempty"`
	// UserAgent is the client's User-Agent string.
	UserAgent string `json:"userAgent,omitempty"`
	// UserAgentType classifies the client: web, cli, k8-operator, terraform,
	// other, or an SDK name.
	UserAgentType string `json:"userAgentType,omitempty"`
	// TraceID correlates the action with the execution logs it caused.
	TraceID string `json:"traceId,omitempty"`
}

// EventInfo says what happened.
type EventInfo struct {
	// Type names the action, e.g. "create-secret"; see EventTypePattern.
	Type string `json:"type"`
	// Metadata is any JSON object, kept as given; nil when absent.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// Actor says who acted.
type Actor struct {
	// Type is one of ActorTypes.
	Type string `json:"type"`
	// Metadata is a JSON object kept as given; nil when absent. Its known
	// keys are userId, serviceId, identityId, keyId, email, username, name
	// (strings) and permission (an object); other keys are allowed.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// Resource is what an action was done to.
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// ActorIdentity is what the store indexes from actor.metadata.
type ActorIdentity struct {
	// ID is the first non-empty of userId, serviceId and identityId; for an
	// "apiKey" actor without any of those, keyId.
	ID       string
	Email    string
	Username string
	Name     string
}

// The known keys of actor.metadata, in the order of actorMetaPaths.
const (
	amUserID = iota
	amServiceID
	amIdentityID
	amKeyID
	amEmail
	amUsername
	amName
	amPermission
	amCount
)

var (
	actorMetaNames = []string{"userId", "serviceId", "identityId", "keyId", "email", "username", "name", "permission"}
	actorMetaPaths = []string{"actor.metadata.userId", "actor.metadata.serviceId", "actor.metadata.identityId",
		"actor.metadata.keyId", "actor.metadata.email", "actor.metadata.username", "actor.metadata.name",
		"actor.metadata.permission"}
)

// Identity extracts the indexed identity from a.Metadata. It is lenient
// (DecodeEvent has validated the metadata): anything malformed or of the
// wrong type reads as empty.
func (a Actor) Identity() ActorIdentity {
	var vals [amCount][]byte
	it, ok := newObjectIter(a.Metadata)
	if !ok {
		return ActorIdentity{}
	}
	for name, v, ok := it.next(); ok; name, v, ok = it.next() {
		for i, n := range actorMetaNames {
			if string(name) == n && vals[i] == nil {
				vals[i] = v
				break
			}
		}
	}
	str := func(i int) string {
		s, _ := unquote(vals[i])
		return s
	}
	id := ActorIdentity{Email: str(amEmail), Username: str(amUsername), Name: str(amName)}
	for _, i := range []int{amUserID, amServiceID, amIdentityID} {
		if id.ID = str(i); id.ID != "" {
			return id
		}
	}
	if a.Type == "apiKey" {
		id.ID = str(amKeyID)
	}
	return id
}

// NewEventID returns a new event id: a UUID version 7 (time-ordered) in
// lowercase. It panics only if the system's random source fails.
func NewEventID() string {
	return uuid.Must(uuid.NewV7()).String()
}
