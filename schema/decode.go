package schema

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"
)

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
		if isUserAgentType(s) {
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
			c.add(join(path, Truncate(string(name), 64)), "unknown_field", "is not a known field")
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
		path := Truncate(string(name), 64)
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
