// Package httpx holds the HTTP conventions every handler shares: the JSON
// error shape and the one middleware that maps typed errors onto it.
package httpx

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/schema"
)

// ErrorBody is the JSON shape of every error response:
// {"error": {"code", "message", "details"}}.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo is the content of ErrorBody.
type ErrorInfo struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Details []schema.FieldError `json:"details,omitempty"`
}

// Errors returns the middleware that turns the last error a handler attached
// (c.Error) into the response: a *schema.Error gives its status and body;
// anything else is logged with the request and answered 500 "internal error",
// so driver and system errors never reach clients.
func Errors(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 {
			return
		}
		err := c.Errors.Last().Err
		var se *schema.Error
		if errors.As(err, &se) {
			if !c.Writer.Written() {
				if se.RetryAfter > 0 {
					c.Header("Retry-After", strconv.Itoa(int(math.Ceil(se.RetryAfter.Seconds()))))
				}
				c.JSON(Status(se.Kind), ErrorBody{ErrorInfo{Code: se.Code, Message: se.Message, Details: se.Details}})
			}
			return
		}
		log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "error", err)
		if !c.Writer.Written() {
			c.JSON(http.StatusInternalServerError, ErrorBody{ErrorInfo{Code: "internal", Message: "internal error"}})
		}
	}
}

// NotFound answers unknown routes in the same error shape.
func NotFound(c *gin.Context) {
	c.JSON(http.StatusNotFound, ErrorBody{ErrorInfo{Code: "not_found", Message: "no such endpoint: " + c.Request.Method + " " + c.Request.URL.Path}})
}

// MethodNotAllowed answers a known path with the wrong method.
func MethodNotAllowed(c *gin.Context) {
	c.JSON(http.StatusMethodNotAllowed, ErrorBody{ErrorInfo{Code: "method_not_allowed", Message: "method " + c.Request.Method + " not allowed on " + c.Request.URL.Path}})
}

// Status returns the HTTP status code of an error of kind k, or 500 for an
// unknown Kind.
func Status(k schema.Kind) int {
	switch k {
	case schema.KindInvalid:
		return http.StatusBadRequest
	case schema.KindUnauthenticated:
		return http.StatusUnauthorized
	case schema.KindForbidden:
		return http.StatusForbidden
	case schema.KindNotFound:
		return http.StatusNotFound
	case schema.KindConflict:
		return http.StatusConflict
	case schema.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case schema.KindUnavailable:
		return http.StatusServiceUnavailable
	case schema.KindUnsupported:
		return http.StatusUnsupportedMediaType
	case schema.KindTooManyRequests:
		return http.StatusTooManyRequests
	case schema.KindTimeout:
		return http.StatusRequestTimeout
	default:
		return http.StatusInternalServerError
	}
}
