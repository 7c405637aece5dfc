// Package sluice is the Go SDK of Sluice, a self-hosted platform for
// event-driven serverless data pipelines.
//
// A program that uses this package is a complete platform instance: it
// declares hubs and functions on an [App], then [App.Run] starts the engine
// (NATS JetStream, embedded under a data directory or external by URL), the
// HTTP API, and the function host, and runs until its context ends.
//
//	app := sluice.New(sluice.Config{DataDir: "./data", HTTPAddr: "127.0.0.1:7070"})
//	app.Hub(sluice.HubConfig{Name: "telemetry", Partitions: 4})
//	app.Function("decode", sluice.HubTrigger{Hub: "telemetry", MaxBatchSize: 100},
//		func(ctx context.Context, events []sluice.Event) error {
//			for _, e := range events {
//				if !valid(e.Body) {
//					return sluice.DeadLetter(errors.New("corrupt frame"), e)
//				}
//			}
//			return nil
//		},
//		sluice.WithRetry(sluice.ExponentialBackoff(5, time.Second, time.Minute)))
//	err := app.Run(ctx)
//
// Functions are at-least-once: a partition's checkpoint moves only after the
// function finished with a batch, so a crash means the batch is delivered
// again, never lost. Events of one partition are delivered in order, one
// batch at a time. Several instances pointed at the same NATS server share
// the partitions of every hub through leases.
//
// A function reports what to do with failures through its return value: nil
// (done), [DeadLetter] (keep these events as dead letters, the rest are
// done), or any other error (retry the batch per its [RetryPolicy], then
// dead-letter it).
package sluice
