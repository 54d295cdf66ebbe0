package httpx

import (
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Deadlines returns the middleware that bounds how long a request's body
// may take to arrive (read, from the start of the handler) and its answer
// to be written (write). The read deadline is set only on requests with a
// body and lifted once the body has been read: the server keeps reading in
// the background after that, to notice a client that goes away, and an
// expiring deadline there would cancel the request. Handlers that stream
// for long (exports) extend the write deadline as they make progress, and
// handlers with large bodies (ingest) set their own read deadline.
func Deadlines(read, write time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		rc := http.NewResponseController(c.Writer)
		// Errors mean an unsupported writer (test recorders); nothing to bound.
		if write > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(write))
		}
		if read > 0 && c.Request.Body != nil && c.Request.Body != http.NoBody {
			_ = rc.SetReadDeadline(time.Now().Add(read))
			c.Request.Body = &deadlineBody{ReadCloser: c.Request.Body, rc: rc}
		}
		c.Next()
	}
}

// deadlineBody lifts the read deadline at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.lifted {
		b.lifted = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
