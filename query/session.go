package query

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/schema"
)

// A read session is a console's way of being recorded once rather than at
// every poll: POST /v1/read-sessions records an audit-log.session event
// (who, when, from where) and returns a signed session id; reads that carry
// it in the Audit-Session header, from the same key, are not recorded one
// by one until it expires. The answer names the key's role too. Exports are always recorded. A viewer's session
// is such a session already (its start is recorded when it is opened).
const (
	sessionHeader  = "Audit-Session"
	sessionTTL     = 12 * time.Hour
	sessionVersion = 1
)

// sessionMAC signs a session's body under the cursor key, apart from
// cursors by its domain string.
func (c cursors) sessionMAC(org, keyID string, body []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	for _, p := range []string{"auditstore read session", org, keyID} {
		var n [binary.MaxVarintLen64]byte
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		m.Write([]byte(p))
	}
	m.Write(body)
	return m.Sum(nil)[:macBytes]
}

// newSession returns a session id for org's key, valid until exp.
func (c cursors) newSession(org, keyID string, exp time.Time, nonce []byte) string {
	body := []byte{sessionVersion}
	body = binary.BigEndian.AppendUint64(body, uint64(exp.Unix()))
	body = append(body, nonce...)
	return base64.RawURLEncoding.EncodeToString(append(body, c.sessionMAC(org, keyID, body)...))
}

// validSession reports whether s is a live session of org's key.
func (c cursors) validSession(org, keyID, s string, now time.Time) bool {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < 9+macBytes || raw[0] != sessionVersion {
		return false
	}
	body, sum := raw[:len(raw)-macBytes], raw[len(raw)-macBytes:]
	if !hmac.Equal(sum, c.sessionMAC(org, keyID, body)) {
		return false
	}
	return now.Before(time.Unix(int64(binary.BigEndian.Uint64(body[1:9])), 0))
}

// inSession reports whether the request's reads are covered by a recorded
// session, so that they are not recorded one by one.
func (h *Handler) inSession(r *request) bool {
	if r.who.Viewer != nil {
		return true
	}
	s := r.c.GetHeader(sessionHeader)
	return s != "" && len(s) < 256 && h.read.cursors.validSession(r.who.OrgID, r.who.KeyID, s, h.now())
}

// startSession records a read session and returns its id.
func (h *Handler) startSession(c *gin.Context) {
	who, _ := schema.PrincipalFrom(c.Request.Context())
	if who.Viewer != nil {
		_ = c.Error(schema.Invalid("viewer_session", "a viewer's session is already recorded; it needs no read session"))
		return
	}
	now := h.now()
	exp := now.Add(sessionTTL).Truncate(time.Second)
	var nonce [12]byte
	randRead(nonce[:])
	id := h.read.cursors.newSession(who.OrgID, who.KeyID, exp, nonce[:])
	md := map[string]any{"expiresAt": exp.UTC().Format(time.RFC3339), "scope": "events:read"}
	if v := c.GetHeader("Audit-Session-Client"); v != "" && len(v) <= 64 {
		md["client"] = v
	}
	a := schema.Attribution{Principal: who, IPAddress: c.ClientIP(), UserAgent: c.Request.UserAgent()}
	if err := h.rec.Record(c.Request.Context(), who.OrgID, a.Event(schema.TypeReadSession, nil, md, now)); err != nil {
		h.log.Error("read session refused: recording it failed", "org", who.OrgID, "error", err)
		_ = c.Error(errAuditUnavailable)
		return
	}
	// The role lets a client (the console) show what the key may do without
	// probing, which would record reads of the org's configuration.
	c.JSON(http.StatusCreated, gin.H{"session": id, "expiresAt": exp.UTC(), "role": who.Role})
}
