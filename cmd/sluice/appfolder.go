package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/funcapp"
	"github.com/sluicehq/sluice/internal/handler"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/schedule"
)

// appFlags are the flags that run an Azure Functions app folder.
type appFlags struct {
	dir, payload string
	create       bool
	partitions   int
}

func addAppFlags(fs *flag.FlagSet, createByDefault bool) *appFlags {
	f := &appFlags{}
	fs.StringVar(&f.dir, "app", os.Getenv("SLUICE_APP"), "run the Azure Functions app folder here (host.json, <function>/function.json, a custom handler) (env SLUICE_APP)")
	fs.StringVar(&f.payload, "payload", envOr("SLUICE_PAYLOAD", "compat"), "payloads for the app's handler: compat (as the Azure host sends them) or clean (natural JSON)")
	fs.BoolVar(&f.create, "create", createByDefault, "create the hubs, queues and containers the app's bindings name when they are missing")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of hubs created for the app")
	return f
}

// prepare loads the app folder and declares its functions on app; the
// runner's handler process is started by start. nil when no --app.
func (f *appFlags) prepare(app *sluice.App, cfg sluice.Config) (*handler.Runner, error) {
	if f.dir == "" {
		return nil, nil
	}
	mode, err := handler.ParseMode(f.payload)
	if err != nil {
		return nil, usagef("--payload: %v", err)
	}
	fa, err := funcapp.Load(f.dir, funcapp.Options{CheckSchedule: func(expr string) error {
		_, err := schedule.Parse(expr, nil)
		return err
	}})
	if err != nil {
		return nil, appErrors(f.dir, err)
	}
	for _, w := range fa.Warnings {
		cfg.Logger.Warn(w)
	}
	r, err := handler.Prepare(app, fa, handler.AppOptions{Mode: mode, Create: f.create, Partitions: f.partitions, Logger: cfg.Logger})
	if err != nil {
		return nil, appErrors(f.dir, err)
	}
	cfg.Logger.Info("app folder loaded", "app", fa.Root, "functions", len(fa.Functions), "handler", fa.Host.Handler.Executable, "payload", mode)
	return r, nil
}

// appErrors lists every problem of an app folder, one per line.
func appErrors(dir string, err error) error {
	errs := funcapp.Errors(err)
	if len(errs) <= 1 {
		return fmt.Errorf("app %s: %w", dir, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "app %s has %d problems:", dir, len(errs))
	for _, e := range errs {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return fmt.Errorf("%s", b.String())
}

// runWithApp starts the handler process, then the app, and runs until ctx
// ends.
func (f *appFlags) runWithApp(ctx context.Context, app *sluice.App, r *handler.Runner) error {
	if r != nil {
		if err := r.Start(ctx); err != nil {
			return err
		}
		defer r.Stop()
	}
	err := app.Run(ctx)
	if r != nil && !f.create && (errors.Is(err, sluice.ErrHubNotFound) || errors.Is(err, queue.ErrNotFound) || errors.Is(err, docstore.ErrNotFound)) {
		return fmt.Errorf("%w\n(the app names a hub, queue or container that does not exist: run with --create to create what its bindings name, or create it with sluice hub/queue/docs)", err)
	}
	return err
}
