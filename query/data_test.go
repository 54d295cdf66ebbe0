package query

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

// The value pools of the test events. Small pools make filters hit; the
// values cover unicode, commas, quotes, backslashes, mixed case and empty
// fields.
var (
	poolEventTypes = []string{"create-secret", "get-secrets", "USER_LOGIN", "api_key.create", "execute", "a:b-c"}
	poolActorTypes = []string{"user", "service", "identity", "platform", "apiKey"}
	poolActorIDs   = []string{"u-1", "u-2", "u-3", "svc,1", "ümlaut-ß", "id with space", ""}
	poolEmails     = []string{"Ada@Example.com", "ada@example.com", "bob@example.org", "ÉLISE@exämple.fr",
		"carol+tag@Sub.Example.COM", "o'brien@example.ie", ""}
	poolIPs = []string{"10.0.0.1", "10.1.2.3", "10.255.0.9", "192.168.1.1", "203.0.113.7", "2001:db8::1",
		"2001:db8:1::5", "::1", "fe80::1", "0.0.0.0", ""}
	poolUATs      = []string{"web", "cli", "terraform", "node-sdk", ""}
	poolProjects  = []string{"p-1", "p-2", "p,3", "проект", ""}
	poolResTypes  = []string{"secret", "folder", "api_key"}
	poolResIDs    = []string{"s-1", "s-2", "s/3", "s'4", `s\5`, "ключ", "s-1,s-2"}
	poolTraces    = []string{"tr-1", "tr-2", "tr-3", "tr-4", "tr-5", "tr-6", "tr-7", ""}
	poolMDStrings = []string{`"prod"`, `"dev"`, `"3"`, `"true"`, `"é€ \"quoted\""`, `"line\nbreak"`, `"back\\slash"`,
		`"x\u00e9"`, `""`}
	poolMDOther = []string{`3`, `3.0`, `3e0`, `1000`, `1e3`, `-0.5`, `18446744073709551615`, `0`, `-0`, `-0.0`, `true`, `false`,
		`null`, `{"x":1}`, `[1,2]`}
	poolMDKeys = []string{"env", "count", "k-1", "under_score", "x.y"}
)

func pick[T any](rng *rand.Rand, pool []T) T { return pool[rng.IntN(len(pool))] }

// testClock is the "now" of the test data: events lie in the 20 days
// before it.
func testClock() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// tieInstants are shared by many events, to exercise the tie-breaks.
func tieInstants(now time.Time) []time.Time {
	return []time.Time{now.Add(-time.Hour), now.Add(-50 * time.Hour), now.Add(-7 * 24 * time.Hour)}
}

// mdValue is a random metadata value: a string or another JSON value.
func mdValue(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return pick(rng, poolMDStrings)
	}
	return pick(rng, poolMDOther)
}

// genMetadata builds event.metadata as JSON text: a few known keys, one
// nested path a.b.c, and padding; sometimes absent.
func genMetadata(rng *rand.Rand) string {
	if rng.IntN(10) == 0 {
		return ""
	}
	var parts []string
	for _, k := range poolMDKeys {
		if rng.IntN(2) == 0 {
			parts = append(parts, fmt.Sprintf("%q:%s", k, mdValue(rng)))
		}
	}
	switch rng.IntN(3) {
	case 0:
		parts = append(parts, fmt.Sprintf(`"a":{"b":{"c":%s}}`, mdValue(rng)))
	case 1:
		parts = append(parts, fmt.Sprintf(`"a":{"b":%s}`, mdValue(rng)))
	}
	parts = append(parts, fmt.Sprintf(`"pad":%q`, strings.Repeat("·", rng.IntN(40))))
	rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return "{" + strings.Join(parts, ",") + "}"
}

func genUUID(rng *rand.Rand) uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(rng.UintN(256))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// liveRows is genRows with every event still inside its retention a day
// from now (none expired), for tests that count what is visible.
func liveRows(rng *rand.Rand, org string, n int, now time.Time) []schema.Row {
	rows := genRows(rng, org, n, now)
	for i := range rows {
		rows[i].ExpiresAt = now.Add(24 * time.Hour)
	}
	return rows
}

// genRows returns n events of org around now; about 5% have expired.
func genRows(rng *rand.Rand, org string, n int, now time.Time) []schema.Row {
	ties := tieInstants(now)
	rows := make([]schema.Row, n)
	for i := range rows {
		ts := now.Add(-time.Duration(rng.Int64N(int64(20 * 24 * time.Hour)))).Truncate(time.Millisecond)
		if rng.IntN(5) == 0 {
			ts = pick(rng, ties)
		}
		r := schema.Row{
			OrgID:         org,
			Timestamp:     ts,
			ID:            genUUID(rng),
			EventType:     pick(rng, poolEventTypes),
			EventMetadata: genMetadata(rng),
			ActorType:     pick(rng, poolActorTypes),
			ActorID:       pick(rng, poolActorIDs),
			ActorEmail:    pick(rng, poolEmails),
			ProjectID:     pick(rng, poolProjects),
			IPAddress:     pick(rng, poolIPs),
			UserAgent:     "Mozilla/5.0 (test)",
			UserAgentType: pick(rng, poolUATs),
			TraceID:       pick(rng, poolTraces),
			ReceivedAt:    ts.Add(time.Duration(rng.IntN(5000)) * time.Millisecond),
		}
		if r.ActorID != "" {
			r.ActorMetadata = fmt.Sprintf(`{"userId":%q,"email":%q}`, r.ActorID, r.ActorEmail)
		}
		if r.ProjectID != "" {
			r.ProjectName = "name of " + r.ProjectID
		}
		if rng.IntN(5) > 0 {
			r.ResourceType, r.ResourceID, r.ResourceName = pick(rng, poolResTypes), pick(rng, poolResIDs), "a resource"
		}
		r.ExpiresAt = r.ReceivedAt.Add(90 * 24 * time.Hour)
		if rng.IntN(20) == 0 {
			r.ExpiresAt = now.Add(-time.Hour - time.Duration(rng.IntN(1000))*time.Second)
		}
		rows[i] = r
	}
	return rows
}
