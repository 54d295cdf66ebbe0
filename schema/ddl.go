package schema

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// Migration is one versioned, idempotent step of the database schema, read
// from an embedded file sql/NNNN_name.sql. Statements in a file end with a
// semicolon at the end of a line; lines starting with "--" are comments,
// except "-- when: <query>", which guards the statement that follows.
type Migration struct {
	Version    int
	Name       string
	Statements []Statement
	Checksum   string // sha256 of the file, to detect a migration edited after it ran
}

// Statement is one statement of a migration. When, if not empty, is a
// query returning one row of one UInt8: the statement runs only if it is
// not 0. A step that cannot be written idempotently (EXCHANGE TABLES) is
// guarded by a query on the state it changes, so that a migration stopped
// half-way can be run again from its start.
type Statement struct {
	SQL  string
	When string
}

var migrationFile = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := sqlFiles.ReadDir("sql")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, ent := range entries {
		m := migrationFile.FindStringSubmatch(ent.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q: want NNNN_name.sql", ent.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %q and %q share version %d", other, ent.Name(), v)
		}
		seen[v] = ent.Name()
		body, err := sqlFiles.ReadFile(path.Join("sql", ent.Name()))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		stmts := splitStatements(string(body))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration %q has no statements", ent.Name())
		}
		ms = append(ms, Migration{Version: v, Name: m[2], Statements: stmts, Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

const whenPrefix = "-- when:"

func splitStatements(body string) []Statement {
	var stmts []Statement
	var cur strings.Builder
	when := ""
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if q, ok := strings.CutPrefix(trimmed, whenPrefix); ok {
			when = strings.TrimSpace(q)
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, Statement{SQL: strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"), When: when})
			cur.Reset()
			when = ""
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, Statement{SQL: s, When: when})
	}
	return stmts
}

// Table names.
const (
	EventsTable     = "events"
	MigrationsTable = "schema_migrations"
	// HoursTable marks when each (org, hour) of EventsTable last received
	// events (migration 0012): readers keep the exact counts of hours
	// not written since.
	HoursTable = "event_hours"
	// DayGroupsTable keeps readers' partial aggregates of whole days
	// (migration 0013): per org, aggregate shape and UTC day, the events of
	// each group, used again while the day has had no write since.
	DayGroupsTable = "event_day_groups"
)

// NotExpired is the predicate every read of EventsTable must include: TTL
// deletes expired rows only when parts merge, so they may still be on disk.
const NotExpired = "expires_at > now64(3)"
