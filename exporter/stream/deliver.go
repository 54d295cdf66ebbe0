package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// destError is a failure on the destination's side of a request (an
// answer, or a credential it would not issue).
type destError struct {
	status     int
	retryable  bool
	retryAfter time.Duration
	msg        string
}

func (e *destError) Error() string { return e.msg }

// outcome is what one delivery attempt came to.
type outcome struct {
	ok         bool
	status     int           // the destination's HTTP status, 0 when none
	retryable  bool          // a timeout, a dropped connection, 408, 429 or 5xx
	retryAfter time.Duration // the destination's Retry-After, capped
	err        string        // why it failed, credentials scrubbed
	answer     string        // the destination's status, e.g. "202 Accepted" (never its body)
	elapsed    time.Duration
}

// maxAnswerRead bounds what is read (and dropped) of a destination's answer.
const maxAnswerRead = 64 << 10

// statusLine is an HTTP status as a short line: "404 Not Found".
func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// retryableStatus reports whether an HTTP status is worth retrying: 408
// Request Timeout, 429 Too Many Requests and every 5xx.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// send makes one delivery attempt of body through p, within timeout. After
// a 401 that p says fresh credentials may cure (Azure), it tries once more.
func send(ctx context.Context, e *env, p provider, body []byte, secrets []string, maxRetryAfter time.Duration) outcome {
	start := e.now()
	var out outcome
	for try := 0; try < 2; try++ {
		out = sendOnce(ctx, e, p, body, secrets, maxRetryAfter)
		if out.status != http.StatusUnauthorized || !p.unauthorized() {
			break
		}
	}
	out.elapsed = e.now().Sub(start)
	return out
}

func sendOnce(ctx context.Context, e *env, p provider, body []byte, secrets []string, maxRetryAfter time.Duration) outcome {
	rctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	req, err := p.request(rctx, body)
	if err != nil {
		return failure(ctx, err, secrets, maxRetryAfter)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return failure(ctx, err, secrets, maxRetryAfter)
	}
	defer resp.Body.Close()
	// The answer's body is read (so the connection can be reused) and
	// dropped: echoing it would let a stream's owner read whatever a
	// destination answers, an internal service's included.
	_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerRead))
	out := outcome{status: resp.StatusCode, answer: statusLine(resp.StatusCode)}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		// The status says accepted: the batch is delivered even if the
		// rest of the answer was lost (rerr).
		_ = rerr
		out.ok = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		out.err = fmt.Sprintf("destination answered %s; streams do not follow redirects: configure the final URL", out.answer)
	default:
		out.retryable = retryableStatus(resp.StatusCode)
		out.retryAfter = retryAfter(resp.Header.Get("Retry-After"), e.now(), maxRetryAfter)
		out.err = "destination answered " + out.answer
	}
	return out
}

// failure describes an attempt that got no answer, or was refused before
// the request (policy, credentials).
func failure(ctx context.Context, err error, secrets []string, maxRetryAfter time.Duration) outcome {
	var de *destError
	var re *refusedError
	switch {
	case errors.As(err, &de):
		return outcome{status: de.status, retryable: de.retryable, retryAfter: min(de.retryAfter, maxRetryAfter),
			err: scrub(de.msg, secrets)}
	case errors.As(err, &re):
		return outcome{err: re.Error()}
	case ctx.Err() != nil:
		return outcome{retryable: true, err: "delivery aborted: the server is stopping"}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL, which may carry a credential
	}
	msg := "cannot reach the destination: " + err.Error()
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		msg = "the destination did not answer in time: " + err.Error()
	}
	return outcome{retryable: true, err: scrub(msg, secrets)}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date), capped
// at limit; 0 when absent or invalid.
func retryAfter(h string, now time.Time, limit time.Duration) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(limit/time.Second) {
			return limit
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), limit)
}

// scrub replaces every credential in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "****")
		}
	}
	return s
}

// printable returns the start of b as one line of printable text.
func printable(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r == utf8.RuneError && size <= 1:
			sb.WriteByte('?')
		case r == '\n' || r == '\r' || r == '\t':
			sb.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
		default:
			sb.WriteRune(r)
		}
	}
	return strings.TrimSpace(sb.String())
}
