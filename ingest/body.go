package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/auditstore/auditstore/schema"
)

// Body forms.
const (
	formJSON   = iota // one object or an array of objects
	formNDJSON        // one object per line
)

func bodyForm(contentType string) (int, error) {
	if contentType == "" {
		return formJSON, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, unsupportedType(contentType)
	}
	switch mt {
	case "application/json":
		return formJSON, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return formNDJSON, nil
	}
	return 0, unsupportedType(mt)
}

func unsupportedType(ct string) error {
	return &schema.Error{Kind: schema.KindUnsupported, Code: "unsupported_media_type",
		Message: fmt.Sprintf("Content-Type %q is not supported: send application/json (an event or an array of events) or application/x-ndjson (one event per line)", ct)}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var zstdPool sync.Pool // *zstd.Decoder

// maxZstdWindow bounds the memory a zstd frame may ask for.
const maxZstdWindow = 8 << 20

// readBody reads the request body, decompressed, into a pooled buffer, and
// never reads more than max+1 bytes of it: a body (or a decompression bomb)
// beyond max costs at most max bytes of work. Release the buffer with
// bufPool.Put after use.
func readBody(r *http.Request, max int64) (*bytes.Buffer, error) {
	raw := io.LimitReader(r.Body, max+1)
	var src io.Reader
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		src = raw
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(raw)
		if err != nil {
			return nil, badEncoding("gzip", err)
		}
		defer gz.Close()
		src = gz
	case "zstd":
		dec, _ := zstdPool.Get().(*zstd.Decoder)
		if dec == nil {
			var err error
			dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(uint64(max)+1))
			if err != nil {
				return nil, fmt.Errorf("zstd decoder: %w", err)
			}
		}
		if err := dec.Reset(raw); err != nil {
			zstdPool.Put(dec)
			return nil, badEncoding("zstd", err)
		}
		defer func() { _ = dec.Reset(nil); zstdPool.Put(dec) }()
		src = dec
	default:
		return nil, &schema.Error{Kind: schema.KindUnsupported, Code: "unsupported_encoding",
			Message: fmt.Sprintf("Content-Encoding %q is not supported: use gzip, zstd or none", enc)}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(src, max+1))
	if err != nil {
		bufPool.Put(buf)
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, tooLarge(max)
		}
		if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, tooLarge(max)
		}
		return nil, badEncoding("body", err)
	}
	if n > max {
		bufPool.Put(buf)
		return nil, tooLarge(max)
	}
	return buf, nil
}

func tooLarge(max int64) error {
	return schema.TooLarge("body_too_large", fmt.Sprintf("the request body exceeds %d bytes (after decompression); split it into smaller requests", max))
}

func badEncoding(what string, err error) error {
	return schema.Invalid("invalid_body", fmt.Sprintf("cannot read the %s-encoded body: %v", what, cleanErr(err)))
}

// cleanErr keeps decoder messages short and free of internals.
func cleanErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// splitBody returns the raw events of a body and, for NDJSON, the line of
// each (1-based).
func splitBody(body []byte, form int) (events [][]byte, lines []int, err error) {
	if form == formNDJSON {
		line := 0
		for len(body) > 0 {
			line++
			i := bytes.IndexByte(body, '\n')
			var l []byte
			if i < 0 {
				l, body = body, nil
			} else {
				l, body = body[:i], body[i+1:]
			}
			if len(bytes.TrimSpace(l)) == 0 {
				continue
			}
			events = append(events, l)
			lines = append(lines, line)
		}
		return events, lines, nil
	}
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return nil, nil, schema.Invalid("invalid_body", "the body is empty: send an event object, an array of events, or NDJSON")
	case trimmed[0] == '[':
		events, err := schema.SplitJSONArray(trimmed)
		if err != nil {
			return nil, nil, schema.Invalid("invalid_body", "the body is not a valid JSON array of events: "+err.Error())
		}
		return events, nil, nil
	case trimmed[0] == '{':
		return [][]byte{trimmed}, nil, nil
	default:
		return nil, nil, schema.Invalid("invalid_body", "the body must be a JSON object (one event) or array (events), or NDJSON with Content-Type application/x-ndjson")
	}
}
