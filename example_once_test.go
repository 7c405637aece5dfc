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

// A handler given a batch of events (a hub trigger's) charges each order
// once: the batch delivered again finds the charged orders done and charges
// only the order it had not seen.
func ExampleApp_OnceBatch() {
	dir, _ := os.MkdirTemp("", "sluice-oncebatch-example-")
	defer os.RemoveAll(dir)
	app := sluice.New(sluice.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(ctx)

	handle := func(orders []int) error {
		keys := make([]string, len(orders))
		for i, o := range orders {
			keys[i] = fmt.Sprintf("charge/orders/%d", o)
		}
		ran, err := app.OnceBatch(ctx, keys, time.Hour, func(ctx context.Context, todo []int) error {
			for _, i := range todo {
				fmt.Println("charging for order", orders[i])
			}
			return nil
		})
		fmt.Println(ran, err)
		return err
	}
	_ = handle([]int{41, 42})
	_ = handle([]int{41, 42, 43}) // delivered again, with one more
	// Output:
	// charging for order 41
	// charging for order 42
	// [0 1] <nil>
	// charging for order 43
	// [2] <nil>
}
