package benchutil

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// IndexUse is what EXPLAIN indexes = 1 says a statement reads: parts kept
// by the partition key of all active parts, granules kept by the primary
// key, and per skip index the granules it kept of those it considered
// (each "kept/considered").
type IndexUse struct {
	Partitions string
	PrimaryKey string
	Skip       []SkipUse
}

// SkipUse is one skip index's step of the plan.
type SkipUse struct {
	Name, Granules string
}

// SkipString lists the skip steps as "name kept/considered, ...".
func (u IndexUse) SkipString() string {
	s := make([]string, len(u.Skip))
	for i, k := range u.Skip {
		s[i] = k.Name + " " + k.Granules
	}
	return strings.Join(s, ", ")
}

// ExplainIndexes runs EXPLAIN indexes = 1 on sql with its parameters and
// settings and summarizes the index steps of the plan.
func ExplainIndexes(ctx context.Context, conn driver.Conn, sql string, params clickhouse.Parameters, settings map[string]string) (IndexUse, error) {
	set := clickhouse.Settings{}
	for k, v := range settings {
		set[k] = v
	}
	qctx := clickhouse.Context(ctx, clickhouse.WithParameters(params), clickhouse.WithSettings(set))
	rows, err := conn.Query(qctx, "EXPLAIN indexes = 1 "+sql)
	if err != nil {
		return IndexUse{}, fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	var u IndexUse
	var all string
	step, name := "", ""
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return IndexUse{}, err
		}
		l := strings.TrimSpace(strings.TrimLeft(line, "│├└─ "))
		switch {
		case l == "Min-Max" || l == "Partition" || l == "PrimaryKey" || l == "Skip":
			step, name = l, ""
		case strings.HasPrefix(l, "Parts: ") && step == "Min-Max":
			if _, total, ok := strings.Cut(strings.TrimPrefix(l, "Parts: "), "/"); ok {
				all = total
			}
		case strings.HasPrefix(l, "Name: "):
			name = strings.TrimPrefix(l, "Name: ")
		case strings.HasPrefix(l, "Parts: ") && step == "Partition":
			kept, _, _ := strings.Cut(strings.TrimPrefix(l, "Parts: "), "/")
			u.Partitions = kept + "/" + all
		case strings.HasPrefix(l, "Granules: ") && step == "PrimaryKey":
			u.PrimaryKey = strings.TrimPrefix(l, "Granules: ")
		case strings.HasPrefix(l, "Granules: ") && step == "Skip":
			u.Skip = append(u.Skip, SkipUse{Name: name, Granules: strings.TrimPrefix(l, "Granules: ")})
		}
	}
	return u, rows.Err()
}
