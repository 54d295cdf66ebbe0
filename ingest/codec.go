package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

// A write-ahead log record holds the rows of one accepted request, in a
// compact binary form: a version byte, the row count (uvarint), then each
// row's fields in schema.InsertColumns order — strings as uvarint length +
// bytes, times as varint Unix milliseconds, the id as 16 bytes.
const codecVersion = 1

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendVarint(b, t.UnixMilli())
}

// encodeRows appends the record form of rows to b.
func encodeRows(b []byte, rows []schema.Row) []byte {
	b = append(b, codecVersion)
	b = binary.AppendUvarint(b, uint64(len(rows)))
	for i := range rows {
		r := &rows[i]
		b = appendString(b, r.OrgID)
		b = appendTime(b, r.Timestamp)
		b = append(b, r.ID[:]...)
		for _, s := range [...]string{r.EventType, r.EventMetadata, r.ActorType, r.ActorID, r.ActorEmail,
			r.ActorUsername, r.ActorName, r.ActorMetadata, r.ProjectID, r.ProjectName, r.ResourceType,
			r.ResourceID, r.ResourceName, r.IPAddress, r.UserAgent, r.UserAgentType, r.TraceID} {
			b = appendString(b, s)
		}
		b = appendTime(b, r.ReceivedAt)
		b = appendTime(b, r.ExpiresAt)
	}
	return b
}

var errCorruptRecord = errors.New("corrupt wal record")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorruptRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorruptRecord
		return time.Time{}
	}
	d.b = d.b[n:]
	return time.UnixMilli(v).UTC()
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errCorruptRecord
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// decodeRows appends the rows of a record to rows.
func decodeRows(rec []byte, rows []schema.Row) ([]schema.Row, error) {
	if len(rec) == 0 || rec[0] != codecVersion {
		return rows, fmt.Errorf("%w: unknown version", errCorruptRecord)
	}
	d := decoder{b: rec[1:]}
	n := d.uvarint()
	if n > uint64(len(rec)) { // every row takes more than a byte
		return rows, errCorruptRecord
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var r schema.Row
		r.OrgID = d.string()
		r.Timestamp = d.time()
		if len(d.b) < 16 {
			d.err = errCorruptRecord
			break
		}
		r.ID = uuid.UUID(d.b[:16])
		d.b = d.b[16:]
		for _, p := range [...]*string{&r.EventType, &r.EventMetadata, &r.ActorType, &r.ActorID, &r.ActorEmail,
			&r.ActorUsername, &r.ActorName, &r.ActorMetadata, &r.ProjectID, &r.ProjectName, &r.ResourceType,
			&r.ResourceID, &r.ResourceName, &r.IPAddress, &r.UserAgent, &r.UserAgentType, &r.TraceID} {
			*p = d.string()
		}
		r.ReceivedAt = d.time()
		r.ExpiresAt = d.time()
		rows = append(rows, r)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorruptRecord
	}
	return rows, d.err
}
