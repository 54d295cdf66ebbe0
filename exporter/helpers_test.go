package exporter

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func paramsCtx(p map[string]string) context.Context {
	return clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters(p)))
}
