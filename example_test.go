package sluice_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/sluicehq/sluice"
)

// A function triggered by a hub receives each partition's events in order.
func Example() {
	dir, _ := os.MkdirTemp("", "sluice-example-")
	defer os.RemoveAll(dir)

	var mu sync.Mutex
	var seen []string
	done := make(chan struct{})
	app := sluice.New(sluice.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Hub(sluice.HubConfig{Name: "orders", Partitions: 2})
	app.Function("audit", sluice.HubTrigger{Hub: "orders"}, func(ctx context.Context, events []sluice.Event) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			seen = append(seen, string(e.Body))
		}
		if len(seen) == 3 {
			close(done)
		}
		return nil
	})
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(ctx)

	// The same partition key keeps the customer's orders in order.
	_, err := app.Publish(ctx, "orders",
		sluice.Event{Body: []byte("order-1"), PartitionKey: "customer-7"},
		sluice.Event{Body: []byte("order-2"), PartitionKey: "customer-7"},
		sluice.Event{Body: []byte("order-3"), PartitionKey: "customer-7"})
	if err != nil {
		fmt.Println(err)
		return
	}
	<-done
	fmt.Println(strings.Join(seen, " "))
	// Output: order-1 order-2 order-3
}
