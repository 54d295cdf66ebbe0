package httpx

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/gin-gonic/gin"
)

// Recover turns a panic in a handler into a logged 500 in the error shape.
// A panic with http.ErrAbortHandler goes on up to net/http, which then
// breaks the connection: streaming handlers use it so that a client sees a
// failed download rather than a complete-looking truncated file (gin's own
// Recovery would swallow it and end the response cleanly). A panic after
// the response has begun is turned into such an abort too.
func Recover(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(rec)
			}
			log.Error("handler panic", "method", c.Request.Method, "path", c.FullPath(), "panic", rec, "stack", string(debug.Stack()))
			if c.Writer.Written() {
				panic(http.ErrAbortHandler)
			}
			c.AbortWithStatusJSON(http.StatusInternalServerError, ErrorBody{ErrorInfo{Code: "internal", Message: "internal error"}})
		}()
		c.Next()
	}
}
