package schema

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"

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

// The members of the top-level event object, in the order of topNames.
const (
	fID = iota
	fTimestamp
	fEvent
	fActor
	fOrgID
	fProjectID
	fProjectName
	fResource
	fIPAddress
	fUserAgent
	fUserAgentType
	fTraceID
	fCount
)

var (
	topNames      = []string{"id", "timestamp", "event", "actor", "orgId", "projectId", "projectName", "resource", "ipAddress", "userAgent", "userAgentType", "traceId"}
	typeMetaNames = []string{"type", "metadata"}
	resourceNames = []string{"type", "id", "name"}
)

// DecodeEvent decodes one event object from raw JSON and validates it. It
// returns every problem found (up to a small cap), each FieldError carrying
// index; when there is any, the Event is incomplete and must not be stored.
//
// Decoding is strict: raw must be valid UTF-8, member names must match
// exactly (case-sensitive) and appear once, unknown members are rejected
// (except inside metadata), and values must have the documented JSON types;
// null reads as absent. Valid values are normalized: id to lowercase,
// timestamp to UTC, ipAddress to its normal form. Metadata is copied as
// given. DecodeEvent does not fill in an absent id or timestamp; the caller
// does. Timestamps are checked against now and lim, which must have passed
// Limits.Validate.
func DecodeEvent(raw []byte, index int, lim Limits, now time.Time) (Event, []FieldError) {
	c := checker{index: index}
	if !utf8.Valid(raw) {
		off := invalidUTF8At(raw)
		c.add(locate(raw, off), "utf8", "must be valid UTF-8 (invalid byte at offset %d)", off)
		return Event{}, c.errs
	}
	if i := skipSpace(raw, 0); i >= len(raw) || raw[i] != '{' {
		c.add("", "json", "an event must be a JSON object")
		return Event{}, c.errs
	}
	var f [fCount][]byte
	if err := c.split("", raw, topNames, f[:], false); err != nil {
		c.errs = c.errs[:0]
		c.scanErr("", err)
		return Event{}, c.errs
	}

	var ev Event
	if s, present, ok := c.str("id", f[fID]); present && ok {
		ev.ID, _ = c.parseID(s)
	}
	if s, present, ok := c.str("timestamp", f[fTimestamp]); present && ok {
		ev.Timestamp, _ = c.parseTimestamp(s, lim, now)
	}
	ev.Event = c.decodeEventInfo(f[fEvent], lim)
	ev.Actor = c.decodeActor(f[fActor], lim)
	ev.OrgID = c.id("orgId", f[fOrgID], lim.MaxIDBytes)
	ev.ProjectID = c.id("projectId", f[fProjectID], lim.MaxIDBytes)
	ev.ProjectName = c.text("projectName", f[fProjectName], lim.MaxStringBytes)
	ev.Resource = c.decodeResource(f[fResource], lim)
	if s, present, ok := c.str("ipAddress", f[fIPAddress]); present && ok {
		ev.IPAddress, _ = c.parseIP(s)
	}
	ev.UserAgent = c.text("userAgent", f[fUserAgent], lim.MaxStringBytes)
	if s, present, ok := c.str("userAgentType", f[fUserAgentType]); present && ok {
		if UserAgentTypePattern.MatchString(s) {
			ev.UserAgentType = s
		} else {
			c.add("userAgentType", "pattern", "must match %s (e.g. web, cli, k8-operator, terraform, other, node-sdk)", UserAgentTypePattern)
		}
	}
	ev.TraceID = c.id("traceId", f[fTraceID], lim.MaxIDBytes)
	return ev, c.errs
}

// split stores in out[i] the raw value of the member of object v named
// names[i] (nil when absent), recording unknown members (unless
// allowUnknown) and repeated ones. path is the path of v, "" for the top
// level. It returns the syntax error that stopped it, if any.
func (c *checker) split(path string, v []byte, names []string, out [][]byte, allowUnknown bool) *scanError {
	it, _ := newObjectIter(v)
	for name, val, ok := it.next(); ok; name, val, ok = it.next() {
		i := 0
		for i < len(names) && string(name) != names[i] {
			i++
		}
		switch {
		case i < len(names) && out[i] == nil:
			out[i] = val
		case i < len(names):
			c.add(join(path, names[i]), "duplicate_field", "must appear at most once")
		case !allowUnknown:
			c.add(join(path, truncate(string(name), 64)), "unknown_field", "is not a known field")
		}
	}
	return it.err
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// object checks that the member field of a fixed-shape object is present
// (when required) and an object, then splits it.
func (c *checker) object(field string, v []byte, required bool, names []string, out [][]byte) bool {
	switch {
	case v == nil || isNull(v):
		if required {
			c.add(field, "required", "is required")
		}
		return false
	case v[0] != '{':
		c.wrongType(field, v, "an object")
		return false
	}
	if err := c.split(field, v, names, out, false); err != nil {
		c.scanErr(field, err)
		return false
	}
	return true
}

// id decodes an optional identifier field.
func (c *checker) id(field string, v []byte, max int) string {
	if s, present, ok := c.str(field, v); present && ok && c.checkID(field, s, max) {
		return s
	}
	return ""
}

// text decodes an optional free-text field.
func (c *checker) text(field string, v []byte, max int) string {
	if s, present, ok := c.str(field, v); present && ok && c.checkText(field, s, max) {
		return s
	}
	return ""
}

// metadata checks an optional metadata member and returns a copy of it.
func (c *checker) metadata(field string, v []byte, lim Limits) json.RawMessage {
	if v == nil || isNull(v) || !c.checkMetadata(field, v, lim) {
		return nil
	}
	return bytes.Clone(v)
}

func (c *checker) decodeEventInfo(v []byte, lim Limits) EventInfo {
	var f [2][]byte
	if !c.object("event", v, true, typeMetaNames, f[:]) {
		return EventInfo{}
	}
	var info EventInfo
	if s, _, ok := c.str("event.type", f[0]); ok && c.checkTypeName("event.type", s) {
		info.Type = s
	}
	info.Metadata = c.metadata("event.metadata", f[1], lim)
	return info
}

func (c *checker) decodeActor(v []byte, lim Limits) Actor {
	var f [2][]byte
	if !c.object("actor", v, true, typeMetaNames, f[:]) {
		return Actor{}
	}
	var a Actor
	if s, _, ok := c.str("actor.type", f[0]); ok {
		if t, known := actorType(s); known {
			a.Type = t
		} else if s == "" {
			c.add("actor.type", "required", "is required")
		} else {
			c.add("actor.type", "enum", "must be one of user, service, identity, platform, scimClient, unknownUser, apiKey")
		}
	}
	if md := c.metadata("actor.metadata", f[1], lim); md != nil && c.actorMetadata(md, lim) {
		a.Metadata = md
	}
	return a
}

// actorMetadata checks the known keys of actor.metadata, which has passed
// checkMetadata.
func (c *checker) actorMetadata(md []byte, lim Limits) bool {
	n := len(c.errs)
	var f [amCount][]byte
	if err := c.split("actor.metadata", md, actorMetaNames, f[:], true); err != nil {
		c.scanErr("actor.metadata", err)
		return false
	}
	for i := range amCount {
		path := actorMetaPaths[i]
		if i == amPermission {
			if v := f[i]; v != nil && !isNull(v) && v[0] != '{' {
				c.wrongType(path, v, "an object")
			}
			continue
		}
		s, present, ok := c.str(path, f[i])
		if !present || !ok || s == "" {
			continue
		}
		switch i {
		case amEmail:
			c.checkEmail(path, s)
		case amUsername, amName:
			c.checkText(path, s, lim.MaxStringBytes)
		default:
			c.checkID(path, s, lim.MaxIDBytes)
		}
	}
	return len(c.errs) == n
}

func (c *checker) decodeResource(v []byte, lim Limits) *Resource {
	var f [3][]byte
	if !c.object("resource", v, false, resourceNames, f[:]) {
		return nil
	}
	r := &Resource{}
	if s, _, ok := c.str("resource.type", f[0]); ok && c.checkTypeName("resource.type", s) {
		r.Type = s
	}
	r.ID = c.id("resource.id", f[1], lim.MaxIDBytes)
	r.Name = c.text("resource.name", f[2], lim.MaxStringBytes)
	return r
}

// invalidUTF8At returns the offset of the first byte of b that is not part
// of a valid UTF-8 sequence, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// locate returns the path of the member of the event object raw whose value
// holds byte offset off, looking one level into event, actor and resource;
// "" when unknown.
func locate(raw []byte, off int) string {
	return locateIn(raw, off, true)
}

func locateIn(raw []byte, off int, top bool) string {
	it, ok := newObjectIter(raw)
	if !ok {
		return ""
	}
	for name, v, ok := it.next(); ok; name, v, ok = it.next() {
		start := it.pos - len(v)
		if off < start || off >= it.pos {
			continue
		}
		if !utf8.Valid(name) {
			return ""
		}
		path := truncate(string(name), 64)
		switch path {
		case "event", "actor", "resource":
			if !top {
				break
			}
			if inner := locateIn(v, off-start, false); inner != "" {
				return path + "." + inner
			}
		}
		return path
	}
	return ""
}
