package handler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/funcapp"
	"github.com/sluicehq/sluice/internal/service"
)

// AppOptions say how to run an app folder.
type AppOptions struct {
	// Mode is the payload encoding. Default Compat.
	Mode Mode
	// Create declares the hubs, queues and containers the bindings name,
	// so that missing ones are created (hubs with Partitions partitions;
	// containers need a partitionKey on some cosmosDB output of theirs).
	Create     bool
	Partitions int
	// StartTimeout bounds the handler process's start. Default 30 s.
	StartTimeout time.Duration
	Logger       *slog.Logger
	// SecretEnv names environment variables the handler process never
	// gets, beside Sluice's own secrets.
	SecretEnv []string
}

// Runner runs an app folder's functions on a Sluice app, through its
// handler process.
type Runner struct {
	app  *sluice.App
	fa   *funcapp.App
	opts AppOptions
	log  *slog.Logger
	life service.Lifecycle
	proc *Process
}

// How Azure resource names map onto Sluice: an Event Hub is the hub of the
// same name and its consumer group the group; a Storage queue is the queue
// of the same name; a Cosmos DB container is the container of the same
// name (the database name is not used: Sluice has one document store). The
// names must be valid Sluice names (letters, digits, '-' and '_').

// Prepare checks that Sluice can run every function of fa and declares
// them on app (with their hubs, queues and containers when opts.Create).
// Nothing is declared when any function cannot run: the error names each
// problem by file and field. Call Start before app.Start.
func Prepare(app *sluice.App, fa *funcapp.App, opts AppOptions) (*Runner, error) {
	r := &Runner{app: app, fa: fa, opts: opts, log: cmp.Or(opts.Logger, slog.Default())}
	var errs []error
	var declare []func()
	for _, f := range fa.Functions {
		if f.Disabled {
			r.log.Info("function disabled; not started", "function", f.Name)
			continue
		}
		d, err := r.function(f)
		if err != nil {
			errs = append(errs, err...)
			continue
		}
		declare = append(declare, d)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, d := range declare {
		d()
	}
	return r, nil
}

// Start starts the handler process and waits until it answers. Calling it
// again does nothing; after Stop it fails.
func (r *Runner) Start(ctx context.Context) error {
	return r.life.Start(func() error {
		h := r.fa.Host.Handler
		p, err := Start(ctx, ProcessConfig{
			Executable: h.Executable, Args: h.Arguments, Dir: h.WorkingDir, AppRoot: r.fa.Root, Env: r.fa.Environ(),
			StartTimeout: r.opts.StartTimeout, InvokeTimeout: r.fa.Host.FunctionTimeout, Logger: r.log, SecretEnv: r.opts.SecretEnv,
		})
		if err != nil {
			return err
		}
		r.proc = p
		return nil
	})
}

// Stop stops the handler process (see Process.Stop). Stop the app first.
// Safe before Start and twice.
func (r *Runner) Stop(ctx context.Context) error {
	return r.life.Stop(ctx, nil, func(ctx context.Context) error {
		if r.proc == nil {
			return nil
		}
		return r.proc.Stop(ctx)
	})
}

// Process is the running handler process (nil before Start).
func (r *Runner) Process() *Process { return r.proc }

func bindingErr(f funcapp.Function, b funcapp.Binding, field, format string, args ...any) error {
	i := 0
	for j := range f.Bindings {
		if f.Bindings[j].Name == b.Name && f.Bindings[j].Type == b.Type {
			i = j
		}
	}
	return &funcapp.Error{File: f.Name + "/" + funcapp.FunctionFile, Field: fmt.Sprintf("bindings[%d].%s", i, field), Msg: fmt.Sprintf(format, args...)}
}

// function checks f and returns what declares it.
func (r *Runner) function(f funcapp.Function) (func(), []error) {
	var errs []error
	t := *f.Trigger
	for _, b := range f.Bindings {
		switch {
		case b.IsTrigger():
		case b.Direction == funcapp.DirectionIn:
			errs = append(errs, checkInput(f, b)...)
		case b.Direction != funcapp.DirectionOut:
			errs = append(errs, bindingErr(f, b, "direction", "%s %s bindings are not supported by Sluice yet; use an in and an out binding", b.Type, b.Direction))
		case b.Type == funcapp.TypeBlob:
			errs = append(errs, r.checkBlobOutput(f, b)...)
		case b.Type == funcapp.TypeEventHub:
			errs = append(errs, checkName(f, b, "eventHubName", b.EventHubName, sluice.ValidateHubName)...)
		case b.Type == funcapp.TypeQueue:
			errs = append(errs, checkName(f, b, "queueName", b.QueueName, sluice.ValidateQueueName)...)
		case b.Type == funcapp.TypeCosmosDB:
			errs = append(errs, checkName(f, b, "containerName", b.ContainerName, sluice.ValidateContainerName)...)
		case b.Type == funcapp.TypeHTTP && t.Type != funcapp.TypeHTTPTrigger:
			errs = append(errs, bindingErr(f, b, "type", "an http output needs an httpTrigger"))
		}
	}
	var retry []sluice.FunctionOption
	if p := f.EffectiveRetry(r.fa.Host); p != nil {
		retry = append(retry, sluice.WithRetry(policy(*p)))
	}
	var declare func()
	switch t.Type {
	case funcapp.TypeEventHubTrigger:
		errs = append(errs, checkName(f, t, "eventHubName", t.EventHubName, sluice.ValidateHubName)...)
		errs = append(errs, checkName(f, t, "consumerGroup", t.ConsumerGroup, sluice.ValidateConsumerGroup)...)
		declare = func() { r.declareHub(f, t, retry) }
	case funcapp.TypeQueueTrigger:
		errs = append(errs, checkName(f, t, "queueName", t.QueueName, sluice.ValidateQueueName)...)
		declare = func() { r.declareQueue(f, t) }
	case funcapp.TypeCosmosDBTrigger:
		errs = append(errs, checkName(f, t, "containerName", t.ContainerName, sluice.ValidateContainerName)...)
		declare = func() { r.declareFeed(f, t, retry) }
	case funcapp.TypeTimerTrigger:
		declare = func() { r.declareTimer(f, t, retry) }
	case funcapp.TypeHTTPTrigger:
		declare = func() { r.declareHTTP(f, t) }
	case funcapp.TypeBlobTrigger:
		if _, err := sluice.BlobPathParams(t.Path); err != nil {
			errs = append(errs, bindingErr(f, t, "path", "%v", err))
		}
		if q := r.fa.Host.Queues; len(retry) == 0 {
			// As in Azure, a blob is tried maxDequeueCount times, each
			// retry after the visibility timeout.
			retry = append(retry, sluice.WithRetry(sluice.FixedDelay(q.MaxDequeueCount-1, q.VisibilityTimeout)))
		}
		declare = func() { r.declareBlob(f, t, retry) }
	default:
		errs = append(errs, bindingErr(f, t, "type", "%s triggers are not supported by Sluice yet", t.Type))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return func() {
		if r.opts.Create {
			r.declareOutputs(f)
		}
		declare()
	}, nil
}

func checkName(f funcapp.Function, b funcapp.Binding, field, name string, valid func(string) error) []error {
	if strings.ContainsAny(name, "{}") {
		return []error{bindingErr(f, b, field, "%q: binding expressions in resource names are not supported by Sluice yet", name)}
	}
	if err := valid(name); err != nil {
		return []error{bindingErr(f, b, field, "%v", err)}
	}
	return nil
}

// limits are the options of f that come from host.json besides its retry
// policy: its circuit breaker (sluice.breakers, for hub, queue and
// change-feed functions) and its invocation timeout.
//
// functionTimeout bounds each invocation in the host too, not only the
// handler's answer (which Process bounds with the same timeout): reading
// inputs and writing outputs count, and an invocation that reaches it fails
// as a timeout (WithTimeout: the timeouts metric, a longer breaker probe).
// A hub function of cardinality one is the exception: one host
// invocation runs a batch of events, each of which is an invocation of its
// own in Azure, bounded on its own (see eventTimeout); bounding the batch by
// one functionTimeout would fail batches Azure runs.
func (r *Runner) limits(f funcapp.Function) []sluice.FunctionOption {
	var opts []sluice.FunctionOption
	if p := f.EffectiveBreaker(r.fa.Host); p.Enabled() {
		opts = append(opts, sluice.WithBreaker(sluice.BreakerPolicy(p)))
	}
	perEvent := f.Trigger.Type == funcapp.TypeEventHubTrigger && f.Trigger.Cardinality != funcapp.CardinalityMany
	if d := r.fa.Host.FunctionTimeout; d > 0 && !perEvent {
		opts = append(opts, sluice.WithTimeout(d))
	}
	return opts
}

// errEventTimeout ends the context of an event's invocation that reached
// functionTimeout.
var errEventTimeout = errors.New("host.json functionTimeout reached")

// eventTimeout calls one event's invocation of a hub function of
// cardinality one with functionTimeout as its bound.
func (r *Runner) eventTimeout(ctx context.Context, f funcapp.Function, call func(ctx context.Context) error) error {
	d := r.fa.Host.FunctionTimeout
	if d <= 0 {
		return call(ctx)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d, errEventTimeout)
	defer cancel()
	err := call(ctx)
	if err != nil && errors.Is(context.Cause(ctx), errEventTimeout) {
		return fmt.Errorf("function %s timed out after %s (functionTimeout in host.json): %w", f.Name, d, err)
	}
	return err
}

func policy(p funcapp.Retry) sluice.RetryPolicy {
	if p.Strategy == funcapp.RetryFixedDelay {
		return sluice.FixedDelay(p.MaxRetryCount, p.DelayInterval)
	}
	// Sluice's backoff needs a positive first wait; Azure allows 0.
	return sluice.ExponentialBackoff(p.MaxRetryCount, max(p.MinimumInterval, time.Millisecond), max(p.MaximumInterval, time.Millisecond))
}

func (r *Runner) declareOutputs(f funcapp.Function) {
	for _, b := range f.Outputs {
		switch b.Type {
		case funcapp.TypeEventHub:
			r.app.Hub(sluice.HubConfig{Name: b.EventHubName, Partitions: r.opts.Partitions})
		case funcapp.TypeQueue:
			r.app.Queue(sluice.QueueConfig{Name: b.QueueName})
		case funcapp.TypeCosmosDB:
			if b.PartitionKey != "" {
				r.app.Container(sluice.ContainerConfig{Name: b.ContainerName, PartitionKeyPath: b.PartitionKey})
			}
		case funcapp.TypeBlob:
			container, _, _ := strings.Cut(b.Path, "/")
			r.app.BlobContainer(container)
		}
	}
}

// invocation is what every request of f starts from.
func (r *Runner) invocation(ctx context.Context, f funcapp.Function) Invocation {
	inv := Invocation{Function: f.Name, Mode: r.opts.Mode, Binary: sendsBytes(f.Trigger.DataType), Now: time.Now()}
	if a, ok := sluice.AttemptOf(ctx); ok && f.EffectiveRetry(r.fa.Host) != nil {
		inv.Retry = &Retry{Count: a.Number - 1, Max: a.MaxRetries, Last: a.Last}
	}
	return inv
}

// call invokes f with req, logs the handler's lines and writes the
// outputs. Any failure fails the invocation.
func (r *Runner) call(ctx context.Context, f funcapp.Function, req Request) (Response, error) {
	if err := r.readInputs(ctx, f, req); err != nil {
		return Response{}, err
	}
	resp, err := r.proc.Invoke(ctx, f.Name, req)
	for _, line := range resp.Logs {
		r.log.Info(line, "function", f.Name, "source", "handler")
	}
	if err != nil {
		return resp, err
	}
	return resp, r.writeOutputs(ctx, f, resp)
}

// writeOutputs writes the values the handler gave the output bindings.
func (r *Runner) writeOutputs(ctx context.Context, f funcapp.Function, resp Response) error {
	for _, b := range f.Outputs {
		v, ok := resp.Output(b.Name)
		if !ok || b.Type == funcapp.TypeHTTP {
			continue
		}
		if err := r.writeOutput(ctx, b, v, bindingDataOf(ctx)); err != nil {
			return fmt.Errorf("function %s: output %s (%s): %w", f.Name, b.Name, b.Type, err)
		}
	}
	return nil
}

func (r *Runner) writeOutput(ctx context.Context, b funcapp.Binding, v json.RawMessage, d bindingData) error {
	// A handler gives the bytes of a "binary" or a "stream" output as
	// base64, as the host takes them.
	binary := sendsBytes(b.DataType)
	switch b.Type {
	case funcapp.TypeBlob:
		data, ct, err := BlobContent(v, binary)
		if err != nil {
			return err
		}
		path, err := d.resolve(b.Path)
		if err != nil {
			return err
		}
		container, name, _ := strings.Cut(path, "/")
		_, err = r.app.Blobs().Put(ctx, container, name, data, ct)
		return err
	case funcapp.TypeEventHub:
		bodies, err := Messages(v, binary)
		if err != nil || len(bodies) == 0 {
			return err
		}
		events := make([]sluice.Event, len(bodies))
		for i, body := range bodies {
			events[i] = sluice.Event{Body: body}
		}
		_, err = r.app.Publish(ctx, b.EventHubName, events...)
		return err
	case funcapp.TypeQueue:
		bodies, err := Messages(v, binary)
		if err != nil || len(bodies) == 0 {
			return err
		}
		msgs := make([]sluice.OutgoingMessage, len(bodies))
		for i, body := range bodies {
			msgs[i] = sluice.OutgoingMessage{Body: body}
		}
		_, err = r.app.Send(ctx, b.QueueName, msgs...)
		return err
	case funcapp.TypeCosmosDB:
		docs, err := Documents(v)
		if err != nil || len(docs) == 0 {
			return err
		}
		in := make([]any, len(docs))
		for i, d := range docs {
			in[i] = d
		}
		_, err = r.app.Docs().BulkUpsert(ctx, b.ContainerName, in...)
		return err
	}
	return fmt.Errorf("%s outputs are not supported", b.Type)
}

func (r *Runner) declareHub(f funcapp.Function, t funcapp.Binding, retry []sluice.FunctionOption) {
	eh := r.fa.Host.EventHubs
	if r.opts.Create {
		r.app.Hub(sluice.HubConfig{Name: t.EventHubName, Partitions: r.opts.Partitions})
	}
	start := sluice.FromStart
	switch eh.InitialOffset.Type {
	case funcapp.OffsetFromEnd:
		start = sluice.FromEnd
	case funcapp.OffsetFromEnqueuedTime:
		start = sluice.FromTime(eh.InitialOffset.EnqueuedTimeUTC)
	}
	trigger := sluice.HubTrigger{Hub: t.EventHubName, ConsumerGroup: t.ConsumerGroup, MaxBatchSize: eh.MaxEventBatchSize,
		MinBatchSize: eh.MinEventBatchSize, MaxWait: eh.MaxWaitTime, StartFrom: start, TargetPerInstance: eh.TargetUnprocessedEventThreshold}
	r.app.Function(f.Name, trigger, func(ctx context.Context, events []sluice.Event) error {
		src := HubSource{Hub: t.EventHubName, Group: t.ConsumerGroup, Partition: events[0].Partition}
		if t.Cardinality == funcapp.CardinalityMany {
			_, err := r.call(ctx, f, HubBatch(r.invocation(ctx, f), t.Name, src, events))
			return err
		}
		for _, e := range events {
			err := r.eventTimeout(ctx, f, func(ctx context.Context) error {
				_, err := r.call(ctx, f, HubEvent(r.invocation(ctx, f), t.Name, src, e))
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	}, append(retry, r.limits(f)...)...)
}

func (r *Runner) declareQueue(f funcapp.Function, t funcapp.Binding) {
	q := r.fa.Host.Queues
	if r.opts.Create {
		r.app.Queue(sluice.QueueConfig{Name: t.QueueName})
	}
	var opts []sluice.FunctionOption
	if q.VisibilityTimeout > 0 {
		// A failed message comes back after the visibility timeout.
		opts = append(opts, sluice.WithRetry(sluice.FixedDelay(q.MaxDequeueCount-1, q.VisibilityTimeout)))
	}
	trigger := sluice.QueueTrigger{Queue: t.QueueName, BatchSize: q.BatchSize, MaxDequeueCount: q.MaxDequeueCount}
	r.app.QueueFunction(f.Name, trigger, func(ctx context.Context, m *sluice.Message) error {
		src := QueueSource{Queue: t.QueueName, Lock: 30 * time.Second}
		_, err := r.call(withBindingData(ctx, queueData(t.QueueName, m)), f, QueueMessage(r.invocation(ctx, f), t.Name, src, m))
		return err
	}, append(opts, r.limits(f)...)...)
}

func (r *Runner) declareFeed(f funcapp.Function, t funcapp.Binding, retry []sluice.FunctionOption) {
	start := sluice.FeedFromNow
	switch {
	case t.StartFromBeginning:
		start = sluice.FeedFromBeginning
	case !t.StartFromTime.IsZero():
		start = sluice.FeedFromTime(t.StartFromTime)
	}
	prefix := cmp.Or(r.fa.Host.CosmosDB.LeasePrefix+t.LeaseContainerPrefix, f.Name)
	trigger := sluice.FeedTrigger{Container: t.ContainerName, LeasePrefix: leasePrefix(prefix), MaxItemsPerInvocation: t.MaxItemsPerInvocation,
		StartFrom: start, PollInterval: t.FeedPollDelay}
	r.app.FeedFunction(f.Name, trigger, func(ctx context.Context, changes []sluice.Document) error {
		req, ok := Changes(r.invocation(ctx, f), t.Name, changes)
		if !ok {
			return nil // only deletes, which Azure's feed does not show
		}
		_, err := r.call(ctx, f, req)
		return err
	}, append(retry, r.limits(f)...)...)
}

// checkBlobOutput checks a blob output's path: a container, and only
// expressions Sluice can fill.
func (r *Runner) checkBlobOutput(f funcapp.Function, b funcapp.Binding) []error {
	container, name, _ := strings.Cut(b.Path, "/")
	if strings.ContainsAny(container, "{}") || name == "" {
		return []error{bindingErr(f, b, "path", "%q: give a container and a blob name, like out/{name}", b.Path)}
	}
	if _, err := sluice.BlobPathParams(container); err != nil {
		return []error{bindingErr(f, b, "path", "%v", err)}
	}
	var known []string
	switch f.Trigger.Type {
	case funcapp.TypeHTTPTrigger, funcapp.TypeQueueTrigger:
		return nil // their data (a JSON body's properties) is known only when they run
	case funcapp.TypeBlobTrigger:
		if params, err := sluice.BlobPathParams(f.Trigger.Path); err == nil {
			known = params
		}
	}
	if err := checkPath(b.Path, known); err != nil {
		return []error{bindingErr(f, b, "path", "%q: %v", b.Path, err)}
	}
	return nil
}

// MaxBlobTriggerBytes bounds a blob given to a custom handler's blob
// trigger: its content travels inside the invocation's request (as base64
// or text), as with Azure's byte[] and string bindings.
const MaxBlobTriggerBytes = 100 << 20

func (r *Runner) declareBlob(f funcapp.Function, t funcapp.Binding, retry []sluice.FunctionOption) {
	if r.opts.Create {
		container, _, _ := strings.Cut(t.Path, "/")
		r.app.BlobContainer(container)
	}
	r.app.BlobFunction(f.Name, sluice.BlobTrigger{Path: t.Path}, func(ctx context.Context, b sluice.Blob) error {
		// The content travels inside the invocation's request: read it
		// whole, within the bound a request may carry.
		if b.Info.Size > MaxBlobTriggerBytes {
			return sluice.DeadLetter(fmt.Errorf("blob %s is %d bytes; a custom handler's blob trigger takes at most %d (the content travels inside the request): read large blobs from a Go function, or through the HTTP API", b.Info.Name, b.Info.Size, MaxBlobTriggerBytes))
		}
		data, err := b.ReadAll(ctx)
		if err != nil {
			return err
		}
		uri := BlobURL(r.app.URL(), b.Info.Container, b.Info.Name)
		_, err = r.call(withBindingData(ctx, blobData(b)), f, BlobRequest(r.invocation(ctx, f), t.Name, t.DataType, uri, b, data))
		return err
	}, append(retry, r.limits(f)...)...)
}

// leasePrefix keeps the characters a lease prefix may hold.
func leasePrefix(p string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, p)
}

func (r *Runner) declareTimer(f funcapp.Function, t funcapp.Binding, retry []sluice.FunctionOption) {
	trigger := sluice.TimerTrigger{Schedule: t.Schedule, RunOnStartup: t.RunOnStartup, UseMonitor: t.UseMonitor}
	r.app.TimerFunction(f.Name, trigger, func(ctx context.Context, info sluice.TimerInfo) error {
		monitored := !info.Next.IsZero()
		_, err := r.call(ctx, f, Timer(r.invocation(ctx, f), t.Name, info, monitored))
		return err
	}, append(retry, r.limits(f)...)...)
}

func (r *Runner) declareHTTP(f funcapp.Function, t funcapp.Binding) {
	trigger := sluice.HTTPTrigger{Route: t.Route, Methods: t.Methods, AuthLevel: t.AuthLevel}
	if r.fa.Host.Handler.ForwardHTTP && f.IsHTTPOnly() {
		r.app.HTTPFunction(f.Name, trigger, r.forward())
		return
	}
	// A bad route fails app.Start, which names it.
	params, _ := sluice.RouteParams(cmp.Or(t.Route, f.Name))
	r.app.HTTPFunction(f.Name, trigger, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, "read the request body: "+err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		in := HTTPRequest{URL: requestURL(req), Method: req.Method, Query: req.URL.Query(), Headers: requestHeaders(req),
			Params: map[string]string{}, Body: body, Binary: binaryContent(req.Header.Get("Content-Type"))}
		for _, p := range params {
			if v := req.PathValue(p); v != "" {
				in.Params[p] = v
			} else {
				in.Unset = append(in.Unset, p)
			}
		}
		resp, err := r.call(withBindingData(req.Context(), httpData(in)), f, HTTP(r.invocation(req.Context(), f), t.Name, in))
		if err != nil {
			r.log.Warn("HTTP function failed", "function", f.Name, "err", err)
			http.Error(w, "the function failed", http.StatusInternalServerError)
			return
		}
		r.writeHTTP(w, f, resp)
	}))
}

// writeHTTP answers with the function's http output.
//
// Without one (no http output binding, or none given by the handler) the
// answer is 200 with no body, as in Azure: the host's
// FunctionInvocationMiddleware (src/WebJobs.Script.WebHost/Middleware/
// FunctionInvocationMiddleware.cs, GetResultAsync) answers OkResult when
// the invocation set no response. (When the handler's Outputs lack an http
// output the function has, the host answers 200 with the body {}, its
// empty response object serialized; Sluice sends no body then too.)
func (r *Runner) writeHTTP(w http.ResponseWriter, f funcapp.Function, resp Response) {
	for _, b := range f.Outputs {
		if b.Type != funcapp.TypeHTTP {
			continue
		}
		v, ok := resp.Output(b.Name)
		if !ok {
			break
		}
		res, err := ParseHTTPResult(v)
		if err != nil {
			r.log.Warn("HTTP function gave a bad http output", "function", f.Name, "err", err)
			http.Error(w, "the function's response is not valid: "+err.Error(), http.StatusInternalServerError)
			return
		}
		for k, vs := range res.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(res.Status)
		_, _ = w.Write(res.Body)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func requestURL(req *http.Request) string {
	u := *req.URL
	u.Scheme, u.Host = "http", req.Host
	if req.TLS != nil {
		u.Scheme = "https"
	}
	return u.String()
}

// requestHeaders are a request's headers as the host sees them: Host and
// Content-Length among them, which net/http keeps apart.
func requestHeaders(req *http.Request) map[string][]string {
	h := make(map[string][]string, len(req.Header)+2)
	for k, v := range req.Header {
		h[k] = v
	}
	if req.Host != "" {
		h["Host"] = []string{req.Host}
	}
	if req.ContentLength > 0 {
		h["Content-Length"] = []string{strconv.FormatInt(req.ContentLength, 10)}
	}
	return h
}

// binaryContent reports whether a body of content type ct goes as base64,
// as the host sends octet-stream and multipart bodies.
func binaryContent(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.HasPrefix(ct, "application/octet-stream") || strings.HasPrefix(ct, "multipart/")
}

// forward proxies requests as they are to the handler process, at the same
// path, and its answer back as it is.
func (r *Runner) forward() http.Handler {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			base, err := r.proc.baseURL(pr.In.Context())
			if err != nil {
				base = "http://127.0.0.1:0"
			}
			u, _ := url.Parse(base)
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set("X-Azure-Functions-InvocationId", newGUID())
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			r.log.Warn("forward to the handler failed", "path", req.URL.Path, "err", err)
			http.Error(w, "the handler is not answering", http.StatusBadGateway)
		},
	}
	return proxy
}
