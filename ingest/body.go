package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"sync"
	"time"

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

// encoding is a Content-Encoding the ingest endpoint reads.
type encoding int

const (
	encIdentity encoding = iota
	encGzip
	encZstd
)

// parseEncoding names the request's Content-Encoding, or refuses one that
// decompress does not know: the one place its names are checked.
func parseEncoding(header string) (encoding, error) {
	switch enc := strings.ToLower(strings.TrimSpace(header)); enc {
	case "", "identity":
		return encIdentity, nil
	case "gzip", "x-gzip":
		return encGzip, nil
	case "zstd":
		return encZstd, nil
	default:
		return 0, &schema.Error{Kind: schema.KindUnsupported, Code: "unsupported_encoding",
			Message: fmt.Sprintf("Content-Encoding %q is not supported: use gzip, zstd or none", enc)}
	}
}

// decompress returns the body raw holds, decompressed per the request's
// Content-Encoding (see parseEncoding), never more than max+1 bytes of it: a body (or a
// decompression bomb) beyond max costs at most max bytes of work. It
// releases raw unless it returns it (identity); release the result after use.
func decompress(raw *heldBuffer, enc encoding, max int64, b *budget, retry time.Duration) (*heldBuffer, error) {
	var src io.Reader
	switch enc {
	case encIdentity:
		return raw, nil
	case encGzip:
		gz, err := gzip.NewReader(bytes.NewReader(raw.Bytes()))
		if err != nil {
			raw.release()
			return nil, badEncoding("gzip", err)
		}
		defer gz.Close()
		src = gz
	case encZstd:
		dec, _ := zstdPool.Get().(*zstd.Decoder)
		if dec == nil {
			var err error
			dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(uint64(max)+1))
			if err != nil {
				raw.release()
				return nil, fmt.Errorf("zstd decoder: %w", err)
			}
		}
		if err := dec.Reset(bytes.NewReader(raw.Bytes())); err != nil {
			zstdPool.Put(dec)
			raw.release()
			return nil, badEncoding("zstd", err)
		}
		defer func() { _ = dec.Reset(nil); zstdPool.Put(dec) }()
		src = dec
	default:
		raw.release()
		return nil, fmt.Errorf("ingest: unknown encoding %d", enc)
	}
	defer raw.release()
	out, err := readHeld(src, max, b, retry)
	if err != nil {
		switch {
		case schema.KindOf(err) != 0:
			return nil, err
		case errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded):
			return nil, tooLarge(max)
		}
		return nil, badEncoding("body", err)
	}
	if int64(out.Len()) > max {
		out.release()
		return nil, tooLarge(max)
	}
	return out, nil
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
