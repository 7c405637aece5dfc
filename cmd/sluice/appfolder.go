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
	fa, err := f.load(cfg)
	if err != nil {
		return nil, err
	}
	r, err := handler.Prepare(app, fa, handler.AppOptions{Mode: mode, Create: f.create, Partitions: f.partitions, Logger: cfg.Logger, SecretEnv: cfg.SecretEnv})
	if err != nil {
		return nil, appErrors(f.dir, err)
	}
	cfg.Logger.Info("app folder loaded", "app", fa.Root, "functions", len(fa.Functions), "handler", fa.Host.Handler.Executable, "payload", mode)
	return r, nil
}

// load reads the app folder, with the SLUICE_API app setting.
func (f *appFlags) load(cfg sluice.Config) (*funcapp.App, error) {
	api := ownURL(cfg.HTTPAddr, cfg.TLSCert != "")
	fa, err := funcapp.Load(f.dir, funcapp.Options{Env: appEnv(os.Environ(), api), CheckSchedule: func(expr string) error {
		_, err := schedule.Parse(expr, nil)
		return err
	}})
	if err != nil {
		return nil, appErrors(f.dir, err)
	}
	for _, w := range fa.Warnings {
		cfg.Logger.Warn(w)
	}
	if fa.Settings[apiSetting] == "" {
		cfg.Logger.Warn("the handler gets no " + apiSetting + " app setting, the URL of this instance's HTTP API: its port is not known before the start; give --http a port, like --http 127.0.0.1:7070")
	}
	return fa, nil
}

// apiSetting is the app setting that tells a handler process where the
// HTTP API of the instance that runs it is, such as http://127.0.0.1:7070:
// the handler reads it from its environment to query documents or publish
// through the API. Set by sluice dev and serve to their own address (on
// loopback when --http is a wildcard address), over local.settings.json;
// an environment variable of that name wins, as for any app setting.
const apiSetting = "SLUICE_API"

// appEnv is the environment an app folder is loaded with: environ, and
// SLUICE_API=api unless environ sets it (or api is "").
func appEnv(environ []string, api string) map[string]string {
	env := make(map[string]string, len(environ)+1)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	if _, ok := env[apiSetting]; !ok && api != "" {
		env[apiSetting] = api
	}
	return env
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
func (f *appFlags) runWithApp(ctx context.Context, app *sluice.App, r *handler.Runner) (err error) {
	if r != nil {
		if err := r.Start(ctx); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, r.Stop(context.Background())) }()
	}
	err = app.Run(ctx)
	if r != nil && !f.create && (errors.Is(err, sluice.ErrHubNotFound) || errors.Is(err, queue.ErrNotFound) || errors.Is(err, docstore.ErrNotFound)) {
		return fmt.Errorf("%w\n(the app names a hub, queue or container that does not exist: run with --create to create what its bindings name, or create it with sluice hub/queue/docs)", err)
	}
	return err
}
