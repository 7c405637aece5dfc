package sluice

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// APIRoutes lists the HTTP API's routes, for the authorization tests.
func (a *App) APIRoutes() []gateway.Route { return a.gw.Routes() }

// WithPipelineSource sets a pipeline's source to a read strategy of the
// tests.
func WithPipelineSource(cfg PipelineConfig, src pipeline.Source) PipelineConfig {
	cfg.source = src
	return cfg
}

// SinkDestination is a destination that applies change sets with a sink
// of the tests.
func SinkDestination(name string, sink pipeline.Sink) PipelineDestination {
	return PipelineDestination{Name: name, sink: sink, RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
		Breaker: BreakerPolicy{ConsecutiveFailures: 1000, CoolDown: time.Second}}
}

// PruneStaged deletes a pipeline's staged change sets that left its change
// log, as the instance reading its source does every 10 minutes.
func (a *App) PruneStaged(ctx context.Context, name string) (int, error) {
	p, err := a.pipelineByName(name)
	if err != nil {
		return 0, err
	}
	return p.pruneStaged(ctx)
}
