package sluice_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sluicehq/sluice"
)

// A handler that may see an event twice (delivery is at-least-once) charges
// the customer once: the second delivery finds the key done and skips.
func ExampleApp_Once() {
	dir, _ := os.MkdirTemp("", "sluice-once-example-")
	defer os.RemoveAll(dir)
	app := sluice.New(sluice.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(ctx)

	charge := func(ctx context.Context) error {
		fmt.Println("charging for order 42")
		return nil
	}
	for range 2 { // the same event, delivered twice
		ran, err := app.Once(ctx, "charge/orders/0/42", time.Hour, charge)
		fmt.Println(ran, err)
	}
	// Output:
	// charging for order 42
	// true <nil>
	// false <nil>
}
