package schema

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an Error for the HTTP boundary: one middleware
// (internal/httpx) maps the Kind of an error, found with errors.As, to a
// status code; the comments name it.
type Kind int

// The kinds of client-caused errors. The zero Kind is not a valid kind; an
// error without a Kind is an internal error.
const (
	KindInvalid         Kind = iota + 1 // 400 Bad Request
	KindUnauthenticated                 // 401 Unauthorized
	KindForbidden                       // 403 Forbidden
	KindNotFound                        // 404 Not Found
	KindConflict                        // 409 Conflict
	KindTooLarge                        // 413 Content Too Large
	KindUnavailable                     // 503 Service Unavailable
	KindUnsupported                     // 415 Unsupported Media Type
	KindTooManyRequests                 // 429 Too Many Requests
	KindTimeout                         // 408 Request Timeout
)

// String returns a lowercase name for k, e.g. "invalid".
func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindUnauthenticated:
		return "unauthenticated"
	case KindForbidden:
		return "forbidden"
	case KindNotFound:
		return "not_found"
	case KindConflict:
		return "conflict"
	case KindTooLarge:
		return "too_large"
	case KindUnavailable:
		return "unavailable"
	case KindUnsupported:
		return "unsupported"
	case KindTooManyRequests:
		return "too_many_requests"
	case KindTimeout:
		return "timeout"
	default:
		return fmt.Sprintf("kind(%d)", int(k))
	}
}

// Error is the typed error every package returns for a client-caused
// problem. Its Code, Message and Details are safe to show to the client;
// anything else (driver errors, paths, stack traces) must not be put in it.
type Error struct {
	Kind    Kind
	Code    string       // machine-readable, snake_case, e.g. "invalid_events"
	Message string       // human sentence
	Details []FieldError // optional, capped by the producer
	// RetryAfter, when positive, is sent as the Retry-After header (a 429
	// or 503 the client may retry).
	RetryAfter time.Duration
}

// Error returns "code: message", followed by the first detail if any.
func (e *Error) Error() string {
	s := e.Code
	if e.Message != "" {
		if s != "" {
			s += ": "
		}
		s += e.Message
	}
	switch len(e.Details) {
	case 0:
	case 1:
		s += " (" + e.Details[0].Error() + ")"
	default:
		s += fmt.Sprintf(" (%s; and %d more)", e.Details[0].Error(), len(e.Details)-1)
	}
	return s
}

// NewError returns an Error of the given kind.
func NewError(kind Kind, code, msg string, details ...FieldError) *Error {
	return &Error{Kind: kind, Code: code, Message: msg, Details: details}
}

// Invalid returns a KindInvalid (400) Error.
func Invalid(code, msg string, details ...FieldError) *Error {
	return NewError(KindInvalid, code, msg, details...)
}

// NotFound returns a KindNotFound (404) Error.
func NotFound(code, msg string) *Error {
	return NewError(KindNotFound, code, msg)
}

// Conflict returns a KindConflict (409) Error.
func Conflict(code, msg string) *Error {
	return NewError(KindConflict, code, msg)
}

// TooLarge returns a KindTooLarge (413) Error.
func TooLarge(code, msg string) *Error {
	return NewError(KindTooLarge, code, msg)
}

// Unavailable returns a KindUnavailable (503) Error.
func Unavailable(code, msg string) *Error {
	return NewError(KindUnavailable, code, msg)
}

// TooManyRequests returns a KindTooManyRequests (429) Error; the caller
// sets Retry-After.
func TooManyRequests(code, msg string) *Error {
	return NewError(KindTooManyRequests, code, msg)
}

// KindOf returns the Kind of the first *Error in err's chain, or 0 when
// there is none (an internal error).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// FieldError names one problem of one event field.
type FieldError struct {
	// Index is the position of the event in the request (0-based), or -1
	// when not applicable.
	Index int `json:"index"`
	// Line is the 1-based line of the event in an NDJSON body, 0 otherwise.
	Line int `json:"line,omitempty"`
	// Field is the JSON path in the wire format, e.g. "actor.metadata.email"
	// or "event.metadata"; "" means the event as a whole.
	Field string `json:"field"`
	// Code is machine-readable, e.g. "required", "pattern", "enum", "uuid",
	// "ip_address", "email", "timestamp_too_old", "timestamp_in_future",
	// "timestamp_format", "too_long", "too_deep", "too_many_keys",
	// "too_large", "utf8", "unknown_field", "duplicate_field", "type", "json".
	Code string `json:"code"`
	// Message is a human sentence naming the limit or rule.
	Message string `json:"message"`
}

// Error returns e.g. `event 3: field "actor.type": enum: ...`.
func (f FieldError) Error() string {
	s := ""
	if f.Line > 0 {
		s = fmt.Sprintf("line %d: ", f.Line)
	} else if f.Index >= 0 {
		s = fmt.Sprintf("event %d: ", f.Index)
	}
	if f.Field != "" {
		s += fmt.Sprintf("field %q: ", f.Field)
	}
	return s + f.Code + ": " + f.Message
}
