package bench

import (
	"context"
	"fmt"
)

// startTelemetryTarget starts case c's pipeline in dir.
func startTelemetryTarget(ctx context.Context, o TelemetryOptions, c, dir string, lat *latencies) (*telemetryTarget, error) {
	switch c {
	case "engines":
		p, err := startEnginesPipeline(ctx, dir, o.Sync, o.Partitions, o.MaxBatchSize, lat)
		if err != nil {
			return nil, err
		}
		return &telemetryTarget{url: p.url(), contentType: "application/json", processed: p.processed, failure: p.failure, close: p.close}, nil
	}
	return nil, fmt.Errorf("case %s: not built yet", c)
}
