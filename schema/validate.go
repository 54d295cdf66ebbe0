package schema

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits bounds what DecodeEvent accepts. Sizes are in bytes of UTF-8 (for
// metadata: as encoded in the request, escapes included). Start from
// DefaultLimits and call Validate after changing a field.
type Limits struct {
	// MaxPast is how far before "now" a given timestamp may be.
	MaxPast time.Duration
	// MaxFuture is how far after "now" a given timestamp may be (clock skew).
	MaxFuture time.Duration
	// MaxIDBytes bounds identifiers: orgId, projectId, traceId, resource.id
	// and the actor.metadata ids (userId, serviceId, identityId, keyId).
	MaxIDBytes int
	// MaxStringBytes bounds free-text fields: projectName, userAgent,
	// resource.name, actor.metadata.username and actor.metadata.name.
	MaxStringBytes int
	// MaxMetadataBytes bounds the raw size of event.metadata and of
	// actor.metadata, each.
	MaxMetadataBytes int
	// MaxDepth bounds the nesting of a metadata object; the metadata object
	// itself is depth 1.
	MaxDepth int
	// MaxKeys bounds the total number of object keys in one metadata value,
	// at all depths.
	MaxKeys int
	// MaxMetadataString bounds each string value in metadata. Keys are
	// further bounded by MaxMetadataKeyBytes.
	MaxMetadataString int
}

// DefaultLimits returns the limits used unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxPast:           30 * 24 * time.Hour,
		MaxFuture:         5 * time.Minute,
		MaxIDBytes:        256,
		MaxStringBytes:    1024,
		MaxMetadataBytes:  64 << 10,
		MaxDepth:          16,
		MaxKeys:           1000,
		MaxMetadataString: 16 << 10,
	}
}

// Validate reports every non-positive limit.
func (l Limits) Validate() error {
	var errs []error
	check := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("schema: limits: %s must be positive, got %d", name, v))
		}
	}
	check("MaxPast", int64(l.MaxPast))
	check("MaxFuture", int64(l.MaxFuture))
	check("MaxIDBytes", int64(l.MaxIDBytes))
	check("MaxStringBytes", int64(l.MaxStringBytes))
	check("MaxMetadataBytes", int64(l.MaxMetadataBytes))
	check("MaxDepth", int64(l.MaxDepth))
	check("MaxKeys", int64(l.MaxKeys))
	check("MaxMetadataString", int64(l.MaxMetadataString))
	return errors.Join(errs...)
}

// Fixed limits, not configurable.
const (
	// MaxTypeBytes bounds event.type and resource.type.
	MaxTypeBytes = 128
	// MaxEmailBytes bounds actor.metadata.email: a 64-byte local part, '@'
	// and a 255-byte domain, the commonly used maximum.
	MaxEmailBytes = 320
	// MaxMetadataKeyBytes bounds each key in metadata.
	MaxMetadataKeyBytes = 256
	// maxErrorsPerEvent caps the FieldErrors DecodeEvent returns for one
	// event, so that an event with thousands of unknown keys stays cheap.
	maxErrorsPerEvent = 20
)

// EventTypePattern is the rule for event.type (at most MaxTypeBytes): a
// letter, then letters and digits, optionally followed by more words of
// letters and digits, each preceded by exactly one separator among '.', '_',
// ':' and '-'. It accepts the naming styles of the products we replace:
// kebab-case "create-secret", UPPER_SNAKE "USER_LOGIN", dotted
// "api_key.create" and "api_key.iam_rule.create", plain verbs "execute",
// mixed "audit-log.query". It rejects the empty string, spaces, a leading
// digit or separator, a trailing separator, doubled separators ("a..b"),
// quotes and any other punctuation.
var EventTypePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(?:[._:-][A-Za-z0-9]+)*$`)

// ResourceTypePattern is the rule for resource.type: the same as
// EventTypePattern (e.g. "secret", "api_key", "scim-token").
var ResourceTypePattern = EventTypePattern

// UserAgentTypePattern is the rule for userAgentType: 1 to 64 letters,
// digits, '.', '_' or '-', starting with a letter or digit; e.g. "web",
// "cli", "k8-operator", "terraform", "other", or an SDK name such as
// "node-sdk" or "go_sdk".
var UserAgentTypePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidEventType reports whether s is an acceptable event.type.
func ValidEventType(s string) bool {
	return len(s) <= MaxTypeBytes && isTypeName(s)
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isTypeName is EventTypePattern.MatchString, without the regexp engine
// (tests check that both agree).
func isTypeName(s string) bool {
	if s == "" || !('a' <= s[0] && s[0] <= 'z' || 'A' <= s[0] && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case isAlnum(c):
		case c == '.' || c == '_' || c == ':' || c == '-':
			if i+1 == len(s) || !isAlnum(s[i+1]) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// isUserAgentType is UserAgentTypePattern.MatchString, without the regexp
// engine (tests check that both agree).
func isUserAgentType(s string) bool {
	if s == "" || len(s) > 64 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// ActorTypes lists the accepted values of actor.type (case-sensitive).
var ActorTypes = []string{"user", "service", "identity", "platform", "scimClient", "unknownUser", "apiKey"}

// actorType returns the ActorTypes entry equal to s, so that decoded events
// share one copy of each actor type.
func actorType(s string) (string, bool) {
	for _, t := range ActorTypes {
		if s == t {
			return t, true
		}
	}
	return "", false
}

// checker collects the FieldErrors of one event.
type checker struct {
	index int
	errs  []FieldError
}

func (c *checker) add(field, code, format string, args ...any) {
	if len(c.errs) >= maxErrorsPerEvent {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	c.errs = append(c.errs, FieldError{Index: c.index, Field: field, Code: code, Message: msg})
}

func (c *checker) scanErr(field string, err *scanError) {
	if err.code == "json" {
		c.add(field, err.code, "malformed JSON: %s", err.msg)
		return
	}
	c.add(field, err.code, "%s", err.msg)
}

// str decodes the raw value v of a string field. present is false for an
// absent field or null; ok is false (and an error recorded) for another type.
func (c *checker) str(field string, v []byte) (s string, present, ok bool) {
	if v == nil || isNull(v) {
		return "", false, true
	}
	if v[0] != '"' {
		c.wrongType(field, v, "a string")
		return "", true, false
	}
	s, err := unquote(v)
	if err != nil {
		c.scanErr(field, err)
		return "", true, false
	}
	return s, true, true
}

func (c *checker) wrongType(field string, v []byte, want string) {
	got := valueType(v)
	if got == "" {
		c.add(field, "json", "malformed JSON value")
		return
	}
	c.add(field, "type", "must be %s, got %s", want, got)
}

// hasControl reports whether s (valid UTF-8) holds a C0 or C1 control
// character or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || (c == 0xc2 && i+1 < len(s) && s[i+1] < 0xa0) {
			return true
		}
	}
	return false
}

// checkID applies the identifier rule: at most max bytes, no control
// characters.
func (c *checker) checkID(field, s string, max int) bool {
	if len(s) > max {
		c.add(field, "too_long", "must be at most %d bytes, got %d", max, len(s))
		return false
	}
	if hasControl(s) {
		c.add(field, "pattern", "must not contain control characters")
		return false
	}
	return true
}

// checkText applies the free-text rule: at most max bytes.
func (c *checker) checkText(field, s string, max int) bool {
	if len(s) > max {
		c.add(field, "too_long", "must be at most %d bytes, got %d", max, len(s))
		return false
	}
	return true
}

// checkTypeName applies EventTypePattern to a required type field.
func (c *checker) checkTypeName(field, s string) bool {
	switch {
	case s == "":
		c.add(field, "required", "is required")
	case len(s) > MaxTypeBytes:
		c.add(field, "too_long", "must be at most %d bytes, got %d", MaxTypeBytes, len(s))
	case !isTypeName(s):
		c.add(field, "pattern", "must match %s (e.g. create-secret, USER_LOGIN, api_key.create)", EventTypePattern)
	default:
		return true
	}
	return false
}

// parseID validates an event id: a UUID of any version in the canonical
// 36-character hyphenated form, any case. It returns the lowercase form.
func (c *checker) parseID(s string) (string, bool) {
	if len(s) != 36 {
		c.add("id", "uuid", "must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
		return "", false
	}
	if _, err := uuid.Parse(s); err != nil {
		c.add("id", "uuid", "must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
		return "", false
	}
	if strings.ContainsAny(s, "ABCDEF") {
		return strings.ToLower(s), true
	}
	return s, true
}

// parseTimestamp validates an RFC 3339 timestamp within the window around
// now allowed by lim and returns it in UTC. Beyond time.Parse it rejects a
// decimal comma and offsets of 24 hours or more; 'T' and 'Z' must be
// uppercase; digits past nanoseconds are dropped.
func (c *checker) parseTimestamp(s string, lim Limits, now time.Time) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	if _, off := t.Zone(); err != nil || off <= -24*3600 || off >= 24*3600 || strings.IndexByte(s, ',') >= 0 {
		c.add("timestamp", "timestamp_format", "must be an RFC 3339 timestamp, e.g. 2024-05-01T12:30:00.123Z")
		return time.Time{}, false
	}
	if t.Before(now.Add(-lim.MaxPast)) {
		c.add("timestamp", "timestamp_too_old", "must not be more than %s before the time of receipt", lim.MaxPast)
		return time.Time{}, false
	}
	if t.After(now.Add(lim.MaxFuture)) {
		c.add("timestamp", "timestamp_in_future", "must not be more than %s after the time of receipt", lim.MaxFuture)
		return time.Time{}, false
	}
	return t.UTC(), true
}

// parseIP validates an IPv4 or IPv6 address without zone and returns its
// normal form (IPv4-mapped IPv6 addresses are unmapped to IPv4).
func (c *checker) parseIP(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		c.add("ipAddress", "ip_address", "must be an IPv4 or IPv6 address without zone")
		return "", false
	}
	var buf [64]byte
	if b := a.Unmap().AppendTo(buf[:0]); string(b) != s {
		return string(b), true
	}
	return s, true
}

// checkEmail applies the email rule: at most MaxEmailBytes, exactly one '@'
// with non-empty local part and domain, no spaces or control characters.
func (c *checker) checkEmail(field, s string) bool {
	at := strings.IndexByte(s, '@')
	switch {
	case len(s) > MaxEmailBytes:
		c.add(field, "too_long", "must be at most %d bytes, got %d", MaxEmailBytes, len(s))
	case at <= 0 || at == len(s)-1 || strings.IndexByte(s[at+1:], '@') >= 0:
		c.add(field, "email", "must be an email address with one '@' between a non-empty local part and domain")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		c.add(field, "email", "must not contain spaces or control characters")
	default:
		return true
	}
	return false
}

// checkMetadata checks a metadata value (event.metadata or actor.metadata)
// against lim without building it in memory: it must be a JSON object, at
// most lim.MaxMetadataBytes long, nested at most lim.MaxDepth deep, with at
// most lim.MaxKeys keys in all, each key at most MaxMetadataKeyBytes and
// each string at most lim.MaxMetadataString. It reports at most one problem.
// The walk is iterative and stops at the first problem, so that deep or huge
// input is rejected cheaply.
func (c *checker) checkMetadata(field string, v []byte, lim Limits) bool {
	if v[0] != '{' {
		c.wrongType(field, v, "an object")
		return false
	}
	if len(v) > lim.MaxMetadataBytes {
		c.add(field, "too_large", "must be at most %d bytes, got %d", lim.MaxMetadataBytes, len(v))
		return false
	}
	maxKey := min(MaxMetadataKeyBytes, lim.MaxMetadataString)
	depth, keys := 0, 0
	for i := 0; i < len(v); {
		switch v[i] {
		case '{', '[':
			if depth++; depth > lim.MaxDepth {
				c.add(field, "too_deep", "must be nested at most %d levels deep", lim.MaxDepth)
				return false
			}
		case '}', ']':
			depth--
		case '"':
			end, _, err := scanString(v, i)
			if err != nil {
				c.scanErr(field, err)
				return false
			}
			n := end - i - 2
			if j := skipSpace(v, end); j < len(v) && v[j] == ':' {
				if keys++; keys > lim.MaxKeys {
					c.add(field, "too_many_keys", "must have at most %d keys in all", lim.MaxKeys)
					return false
				}
				if n > maxKey {
					c.add(field, "too_long", "keys must be at most %d bytes, got %d", maxKey, n)
					return false
				}
			} else if n > lim.MaxMetadataString {
				c.add(field, "too_long", "strings must be at most %d bytes, got %d", lim.MaxMetadataString, n)
				return false
			}
			i = end
			continue
		}
		i++
	}
	if !validJSON(v) {
		c.add(field, "json", "malformed JSON object")
		return false
	}
	return true
}

// Truncate shortens s to at most n bytes, at a rune boundary, marking the
// cut with "…": for quoting user text in messages.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
