package sluice

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/cursorsource"
	"github.com/sluicehq/sluice/internal/pipeline/filesink"
	"github.com/sluicehq/sluice/internal/pipeline/httpsink"
	"github.com/sluicehq/sluice/internal/pipeline/httpsource"
	"github.com/sluicehq/sluice/internal/pipeline/pgsource"
	"github.com/sluicehq/sluice/internal/pipeline/sqlsink"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

// PipelineConfig declares a data pipeline: one source whose changes are
// staged as change sets, and destinations that apply them, each at its own
// pace (see App.Pipeline).
type PipelineConfig struct {
	// Postgres reads a PostgreSQL database's changes by logical
	// replication (its source).
	Postgres *PostgresSource
	// SQL reads any PostgreSQL or MariaDB/MySQL tables by cursor (its
	// source): the rows whose cursor column grew since the last read.
	SQL *SQLSource
	// HTTP polls an HTTP/JSON API that answers with a delta link, as
	// Microsoft Graph's delta queries do (a SharePoint list, say): a full
	// read first, then only what changed (its source).
	HTTP *HTTPSource
	// Container reads a container's change feed (its source): each
	// document written is an update of the row keyed by partition_key and
	// id (its fields, without system fields, the row's columns), each
	// delete a delete; the position is the feed's LSN.
	Container string
	// Destinations apply the change sets, each a consumer group of the
	// change log with its own position, retries and breaker. At least one.
	Destinations []PipelineDestination
	// Retention is how long the change log keeps change sets, so how far
	// back a destination can be replayed. Default 7 days.
	Retention time.Duration
	// BatchSize bounds the changes of one change set (a source's
	// transaction is never split). Default 1000.
	BatchSize int

	// source is the read strategy (set by the source fields, or by tests).
	source pipeline.Source
}

// PostgresSource is a pipeline's PostgreSQL source: a publication and a
// replication slot named sluice_<pipeline> (created when missing), an
// initial snapshot of the tables consistent with the slot, then their
// changes as they commit, transactions kept whole. The slot's position is
// confirmed only once a change set is staged, so nothing is lost in a
// crash. The server needs wal_level = logical and the user REPLICATION;
// every table a primary key (or REPLICA IDENTITY FULL); errors say how to
// fix each.
type PostgresSource struct {
	// URL is the database: postgres://user:password@host:5432/db.
	URL string
	// Tables to capture: "schema.table", or "table" in public.
	Tables []string
}

// HTTPSource reads an HTTP/JSON API with a delta token: a GET of URL
// answers a page of items and either a next link (more pages now) or, on
// the last page, a delta link, which a later GET (every PollInterval)
// follows to get only the items changed since, and items removed (marked
// by RemovedField). The first read, and a new one when the API answers 410
// Gone (its delta token expired), hands items over as reads; then as
// updates and deletes. Links must stay on URL's host.
type HTTPSource struct {
	// URL is the first read's URL: http:// or https://, without a user or
	// password (put credentials in Headers).
	URL string
	// Table names the changes' table ("sharepoint.orders").
	Table string
	// Key are the item fields that make its key. Default ["id"].
	Key []string
	// Headers go with every request (Authorization): secrets, never
	// logged.
	Headers map[string]string
	// ItemsField, NextLinkField, DeltaLinkField and RemovedField name the
	// answer's fields. Defaults "value", "@odata.nextLink",
	// "@odata.deltaLink" and "@removed".
	ItemsField, NextLinkField, DeltaLinkField, RemovedField string
	// PollInterval is the wait between delta reads once caught up.
	// Default 30s.
	PollInterval time.Duration
	// Timeout bounds each request. Default 30s.
	Timeout time.Duration
}

// SQLSource reads tables by cursor (the "incremental" read strategy of
// ELT tools), for databases without logical replication: every poll takes
// the rows whose (cursor, primary key) is past the last one read, so rows
// sharing a cursor value are neither skipped nor repeated. Each row comes
// as a read (applied as an upsert); a soft-delete column turns a row into
// a delete; a full-refresh table is read whole every poll, and rows gone
// since the previous pass come as deletes. Timestamp cursors are read only
// Lag behind the database's clock, so a transaction that set its cursor
// early and committed late (within Lag) is not missed.
type SQLSource struct {
	// URL is the database: postgres://… or mysql://user:password@host:3306/db.
	URL    string
	Tables []SQLSourceTable
	// PollInterval is the wait between reads once caught up. Default 1s.
	PollInterval time.Duration
	// Lag: timestamp cursors are read this far behind the database's
	// clock. Default 5s.
	Lag time.Duration
}

// SQLSourceTable is a table a SQLSource reads.
type SQLSourceTable struct {
	// Name is "schema.table", or "table" (in public; in the URL's database
	// for MariaDB).
	Name string
	// Cursor grows on every insert and update: an updated_at timestamp or
	// a row version. Required unless FullRefresh.
	Cursor string
	// SoftDelete, when set, is a column that marks deleted rows (true, or
	// not NULL).
	SoftDelete string
	// FullRefresh reads the whole table every poll.
	FullRefresh bool
	// DeleteCheck, for a table read by cursor, finds its hard deletes:
	// every DeleteCheck the table's primary keys are read (keys only) and
	// compared with the previous pass's and those read since; the keys
	// gone come as deletes. The first pass after a start only records the
	// keys, so rows deleted while the pipeline was down are not seen. 0
	// (the default): hard deletes are not seen (use SoftDelete).
	DeleteCheck time.Duration
}

// SQLDestination writes a pipeline's rows into PostgreSQL or MariaDB/MySQL
// tables: each change set in one transaction that also records its number
// in the table sluice_pipeline_positions, so a change set is never applied
// twice, even across crashes and instances (exactly once into SQL).
type SQLDestination struct {
	// URL is the database: postgres://… or mysql://user:password@host:3306/db.
	URL string
	// Tables maps source tables ("public.orders") to destination tables;
	// a table not named is written to one of its name without the schema.
	Tables map[string]string
	// CreateTables creates missing tables from the source's description.
	CreateTables bool
}

// HTTPDestination POSTs a pipeline's change sets to an HTTP endpoint, in
// order, in batches of changes (JSON: pipeline, destination, change_set,
// part, parts, position, changes), each with the header
// Idempotency-Key: <pipeline>/<destination>/<change set>/<part>, the same
// when a change set is sent again after a failure or a replay, so the
// receiver can drop what it has. A 2xx answer is delivered; 408, 409, 425,
// 429, 5xx, 401, 403, 404 and network errors are retried (the whole change
// set, by the destination's retry policy); any other 4xx refuses that
// batch's rows for good: they are dead-lettered with the answer.
type HTTPDestination struct {
	// URL is the endpoint: http:// or https://.
	URL string
	// Headers go with every request (Authorization, an API key): secrets,
	// never logged.
	Headers map[string]string
	// BatchSize is the most changes one POST carries. Default 500.
	BatchSize int
	// Timeout bounds each request. Default 30s.
	Timeout time.Duration
}

// FilesDestination writes each change set as files in a blob container,
// for a lake: one file per table per change set, named
// <prefix><table>/<change set, 20 digits>.<ndjson|csv>[.gz]. Writing a
// change set again (a retry, a replay) writes the same names with the
// same bytes.
type FilesDestination struct {
	// Container is the blob container; created when missing.
	Container string
	// Format is "ndjson" (default: one JSON object per change) or "csv"
	// (a header _op,_position,_commit_time then the table's columns).
	Format string
	// Prefix starts every file's name ("orders/"). Default none.
	Prefix string
	// Gzip compresses the files (.gz).
	Gzip bool
}

// PipelineDestination is a write strategy: where a pipeline's changes go.
// Exactly one of SQL, HTTP, Hub, Container and Files is set.
type PipelineDestination struct {
	// Name names the destination in its pipeline (its consumer group):
	// 1 to 64 lowercase letters, digits, '-' and '_'.
	Name string
	// SQL: rows go to SQL tables, exactly once.
	SQL *SQLDestination
	// HTTP: change sets are POSTed to an endpoint, with idempotency keys.
	HTTP *HTTPDestination
	// Files: change sets become NDJSON or CSV files in a blob container.
	Files *FilesDestination
	// Hub: each change becomes an event of this hub, keyed by its table and
	// key so that a row's changes stay in order; the body is the change as
	// JSON (op, table, key, after, before, position, commit_time).
	Hub string
	// Container: each row becomes a document of this container, deleted
	// with the row. Its id is the row's "id" key column when it has one
	// (rows of a container's feed do), else its key columns' values in
	// name order joined by "|". The container's partition key path must be
	// /id.
	Container string
	// RetryBackoff is the first wait after a change set failed to apply,
	// doubling up to MaxRetryBackoff; the destination tries for ever, in
	// order, so one that was down catches up by itself. Defaults 1s and
	// 1m.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Breaker stops the destination while it keeps failing, on every
	// instance, without losing its place. Default: open after 5 failures
	// in a row, probe after 15s.
	Breaker BreakerPolicy
	// Transform reshapes the rows for this destination only, by source
	// table ("public.orders"; "*" for the tables not named): a row filter
	// and columns kept, dropped, renamed or computed (jq expressions).
	Transform map[string]TableTransform

	sink pipeline.Sink // set by tests
}

// TableTransform reshapes a table's rows for one destination. Computed
// columns are computed first, from the source row; then Include or
// Exclude; then Rename. The expressions are jq programs over the row (its
// columns as fields; for a delete, the key), with $op, $table and $key.
type TableTransform struct {
	// Filter keeps the rows for which it is true. An insert that does not
	// match is left out; an update that does not match deletes the row
	// from the destination (it left the destination's range); a delete
	// always passes. Values from SQL sources are text: compare numbers
	// with (.amount | tonumber) > 100.
	Filter string
	// Include keeps only these columns (key columns are always kept);
	// Exclude drops these (never a key column). Not both.
	Include, Exclude []string
	// Rename renames columns (key columns too): old name → new name.
	Rename map[string]string
	// Compute adds or replaces columns: name → jq expression and the
	// destination's type for it.
	Compute map[string]ComputedColumn
}

// ComputedColumn is a column a TableTransform computes.
type ComputedColumn struct {
	Expr string
	// Type is the column's type at the destination (what an SQL
	// destination creates it as). Default "text".
	Type string
}

var (
	// pipelineNameRE: a pipeline's name is part of its blob container's.
	pipelineNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,53}$`)
	// destNameRE: a destination's name is its consumer group's.
	destNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// pipelineRun is a declared pipeline.
type pipelineRun struct {
	app  *App
	name string
	cfg  PipelineConfig
	// hub and container hold the change log and the staged change sets.
	hub, container string
	dests          []*pipelineDest
	// closers close what start opened (SQL destinations' pools).
	closers []func() error

	// created through the API (pipelineRegistry), not declared.
	created bool
	// live: its functions and source lease are in place on this instance.
	live atomic.Bool

	// stageMu orders staging: the stream's batches and a backfill's.
	stageMu sync.Mutex
	// recent holds the changes of the change sets this instance staged
	// last, so that its destinations need not read them back from their
	// blobs and decode them (the change sets are immutable once staged).
	recent recentChangeSets

	mu       sync.Mutex
	startErr error              // a created pipeline's latest failure to start here
	last     pipeline.ChangeSet // the latest change set staged (Seq 0: none)
	lastErr  error              // the source's latest failure, nil once it reads again
	reading  bool               // this instance runs the source
}

type pipelineDest struct {
	p         *pipelineRun
	cfg       PipelineDestination
	sink      pipeline.Sink
	transform *transform.Transform // nil: rows go as they are
}

// PipelineHub is the name of the change-log hub of pipeline name.
func PipelineHub(name string) string { return "pipeline-" + name }

// Pipeline declares a data pipeline: its source's changes are staged as
// change sets (a compressed blob in the blob container "pipeline-<name>"
// and one event on the hub "pipeline-<name>", the pipeline's durable,
// replayable change log) before the source confirms them; each destination
// is a function "pipeline-<name>-<destination>" reading the change log in
// order, as a consumer group of its own, so destinations progress
// independently, retry for ever, and can be replayed from a point in time
// (App.ReplayPipeline). One instance at a time reads the source; every
// instance shares the destinations' change sets.
func (a *App) Pipeline(name string, cfg PipelineConfig) {
	p, err := a.newPipelineRun(name, cfg)
	if err != nil {
		a.errs = append(a.errs, err)
		return
	}
	a.Hub(p.hubConfig())
	a.BlobContainer(p.container)
	for _, d := range p.dests {
		a.Function(p.functionName(d.cfg.Name), d.trigger(), d.handle, d.options()...)
	}
	a.pipelines = append(a.pipelines, p)
}

// newPipelineRun checks a pipeline's declaration and makes its source,
// destinations and transforms, without touching anything outside.
func (a *App) newPipelineRun(name string, cfg PipelineConfig) (*pipelineRun, error) {
	p := &pipelineRun{app: a, name: name, cfg: cfg, hub: PipelineHub(name), container: PipelineHub(name)}
	if err := p.setSource(); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	p.cfg.Retention = cmp.Or(cfg.Retention, 7*24*time.Hour)
	p.cfg.BatchSize = cmp.Or(cfg.BatchSize, 1000)
	for _, dc := range cfg.Destinations {
		d := &pipelineDest{p: p, cfg: dc, sink: dc.sink}
		if len(dc.Transform) > 0 {
			tr, err := newTransform(dc.Transform)
			if err != nil {
				return nil, fmt.Errorf("sluice: pipeline %q, destination %q: %w", name, dc.Name, err)
			}
			d.transform = tr
		}
		d.cfg.RetryBackoff = cmp.Or(dc.RetryBackoff, time.Second)
		d.cfg.MaxRetryBackoff = cmp.Or(dc.MaxRetryBackoff, time.Minute)
		if !dc.Breaker.Enabled() {
			d.cfg.Breaker = BreakerPolicy{ConsecutiveFailures: 5, CoolDown: 15 * time.Second}
		}
		p.dests = append(p.dests, d)
	}
	return p, nil
}

// hubConfig is the pipeline's change-log hub.
func (p *pipelineRun) hubConfig() HubConfig {
	return HubConfig{Name: p.hub, Partitions: 1, Retention: p.cfg.Retention}
}

// trigger reads the change log as the destination's consumer group.
func (d *pipelineDest) trigger() HubTrigger {
	return HubTrigger{Hub: d.p.hub, ConsumerGroup: d.cfg.Name, MaxBatchSize: 16}
}

// options retry a destination for ever, behind its breaker.
func (d *pipelineDest) options() []FunctionOption {
	return []FunctionOption{WithRetry(ExponentialBackoff(RetryForever, d.cfg.RetryBackoff, d.cfg.MaxRetryBackoff)), WithBreaker(d.cfg.Breaker)}
}

func (p *pipelineRun) functionName(dest string) string { return "pipeline-" + p.name + "-" + dest }

func (p *pipelineRun) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("sluice: pipeline %q: %s", p.name, fmt.Sprintf(format, args...))
	}
	if !pipelineNameRE.MatchString(p.name) {
		return fmt.Errorf("sluice: pipeline name %q: use 1 to 54 lowercase letters, digits and '-', starting with a letter or digit (it names the blob container pipeline-<name>)", p.name)
	}
	if p.cfg.source == nil {
		return bad("give its source: Postgres, SQL, HTTP or Container")
	}
	if len(p.cfg.Destinations) == 0 {
		return bad("give at least one destination")
	}
	if p.cfg.Retention < 0 || p.cfg.BatchSize < 0 {
		return bad("Retention and BatchSize must not be negative")
	}
	seen := map[string]bool{}
	for i, d := range p.cfg.Destinations {
		if !destNameRE.MatchString(d.Name) {
			return bad("destination %d: name %q: use 1 to 64 lowercase letters, digits, '-' and '_', starting with a letter or digit", i, d.Name)
		}
		if seen[d.Name] {
			return bad("destination %q is named twice", d.Name)
		}
		seen[d.Name] = true
		kinds := 0
		for _, set := range []bool{d.SQL != nil, d.HTTP != nil, d.Hub != "", d.Container != "", d.Files != nil, d.sink != nil} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			return bad("destination %q: give exactly one of SQL, HTTP, Hub, Container and Files", d.Name)
		}
		if d.SQL != nil && d.SQL.URL == "" {
			return bad("destination %q: give the SQL database's URL", d.Name)
		}
		if d.HTTP != nil {
			if _, err := httpsink.New(d.httpConfig(p.name, p.app.log)); err != nil {
				return bad("destination %q: %v", d.Name, err)
			}
		}
		if d.Files != nil {
			if err := blob.ValidateContainerName(d.Files.Container); err != nil {
				return bad("destination %q: files: %v", d.Name, err)
			}
			if _, err := filesink.New(d.filesConfig(nil)); err != nil {
				return bad("destination %q: %v", d.Name, err)
			}
		}
		if d.Hub == p.hub {
			return bad("destination %q: the hub %s is the pipeline's own change log", d.Name, d.Hub)
		}
	}
	return nil
}

// setSource makes the read strategy the config names, unless a test set one.
func (p *pipelineRun) setSource() error {
	if p.cfg.source != nil {
		return nil
	}
	sources := 0
	for _, set := range []bool{p.cfg.Postgres != nil, p.cfg.SQL != nil, p.cfg.HTTP != nil, p.cfg.Container != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources > 1:
		return fmt.Errorf("sluice: pipeline %q: give one source: Postgres, SQL, HTTP or Container", p.name)
	case p.cfg.HTTP != nil:
		h := p.cfg.HTTP
		src, err := httpsource.New(httpsource.Config{URL: h.URL, Table: h.Table, Key: h.Key, Headers: h.Headers,
			ItemsField: h.ItemsField, NextLinkField: h.NextLinkField, DeltaLinkField: h.DeltaLinkField, RemovedField: h.RemovedField,
			PollInterval: h.PollInterval, Timeout: h.Timeout, Logger: p.app.log.With("pipeline", p.name)})
		if err != nil {
			return fmt.Errorf("sluice: pipeline %q: %w", p.name, err)
		}
		p.cfg.source = src
	case p.cfg.SQL != nil:
		tables := make([]cursorsource.TableConfig, len(p.cfg.SQL.Tables))
		for i, t := range p.cfg.SQL.Tables {
			tables[i] = cursorsource.TableConfig{Name: t.Name, Cursor: t.Cursor, SoftDelete: t.SoftDelete, FullRefresh: t.FullRefresh, DeleteCheck: t.DeleteCheck}
		}
		src, err := cursorsource.New(cursorsource.Config{URL: p.cfg.SQL.URL, Tables: tables, PollInterval: p.cfg.SQL.PollInterval,
			BatchSize: cmp.Or(p.cfg.BatchSize, 1000), Lag: p.cfg.SQL.Lag, Logger: p.app.log.With("pipeline", p.name)})
		if err != nil {
			return fmt.Errorf("sluice: pipeline %q: %w", p.name, err)
		}
		p.cfg.source = src
	case p.cfg.Postgres != nil:
		src, err := pgsource.New(pgsource.Config{DSN: p.cfg.Postgres.URL, Pipeline: p.name, Tables: p.cfg.Postgres.Tables,
			BatchSize: cmp.Or(p.cfg.BatchSize, 1000), Logger: p.app.log.With("pipeline", p.name)})
		if err != nil {
			return fmt.Errorf("sluice: pipeline %q: %w", p.name, err)
		}
		p.cfg.source = src
	case p.cfg.Container != "":
		p.cfg.source = &containerSource{app: p.app, container: p.cfg.Container, batch: cmp.Or(p.cfg.BatchSize, 1000)}
	}
	return nil
}

// stop closes what start opened.
func (p *pipelineRun) stop() error {
	var errs []error
	for _, c := range p.closers {
		errs = append(errs, c())
	}
	p.closers = nil
	return errors.Join(errs...)
}

// start opens the destinations' sinks and joins the source's lease: one
// instance at a time reads the source.
func (p *pipelineRun) start(ctx context.Context) error {
	if err := p.checkSource(ctx); err != nil {
		return err
	}
	if err := p.openSinks(ctx); err != nil {
		return err
	}
	p.live.Store(true)
	return p.app.leases.Join(p.leaseSet(), 1, func(ctx context.Context, _ int) { p.read(ctx) })
}

// checkSource checks that a container source's container exists.
func (p *pipelineRun) checkSource(ctx context.Context) error {
	if src, ok := p.cfg.source.(*containerSource); ok {
		if _, err := p.app.docs.GetContainer(ctx, src.container); err != nil {
			return fmt.Errorf("sluice: pipeline %s reads container %s: %w", p.name, src.container, err)
		}
	}
	return nil
}

// leaseSet is the lease of reading the source.
func (p *pipelineRun) leaseSet() string { return "pipeline:" + p.name }

// openSinks opens the destinations' sinks (SQL pools, HTTP clients) and
// checks the containers they read and write.
func (p *pipelineRun) openSinks(ctx context.Context) error {
	for _, d := range p.dests {
		if d.sink != nil {
			continue
		}
		switch {
		case d.cfg.SQL != nil:
			tables := map[string]sqlsink.TableConfig{}
			for src, dst := range d.cfg.SQL.Tables {
				tables[src] = sqlsink.TableConfig{Name: dst}
			}
			sink, err := sqlsink.New(ctx, sqlsink.Config{URL: d.cfg.SQL.URL, Pipeline: p.name, Destination: d.cfg.Name, Tables: tables, CreateTables: d.cfg.SQL.CreateTables})
			if err != nil {
				return fmt.Errorf("sluice: pipeline %s, destination %s: %w", p.name, d.cfg.Name, err)
			}
			d.sink = sink
			p.closers = append(p.closers, sink.Close)
		case d.cfg.HTTP != nil:
			sink, err := httpsink.New(d.cfg.httpConfig(p.name, p.app.log.With("pipeline", p.name, "destination", d.cfg.Name)))
			if err != nil {
				return fmt.Errorf("sluice: pipeline %s, destination %s: %w", p.name, d.cfg.Name, err)
			}
			d.sink = sink
			p.closers = append(p.closers, sink.Close)
		case d.cfg.Files != nil:
			if _, err := p.app.blobs.EnsureContainer(ctx, d.cfg.Files.Container); err != nil {
				return fmt.Errorf("sluice: pipeline %s, destination %s: blob container %s: %w", p.name, d.cfg.Name, d.cfg.Files.Container, err)
			}
			sink, err := filesink.New(d.cfg.filesConfig(blobFiles{app: p.app, container: d.cfg.Files.Container}))
			if err != nil {
				return fmt.Errorf("sluice: pipeline %s, destination %s: %w", p.name, d.cfg.Name, err)
			}
			d.sink = sink
		case d.cfg.Hub != "":
			d.sink = &hubSink{app: p.app, hub: d.cfg.Hub, id: p.name + ":" + d.cfg.Name}
		case d.cfg.Container != "":
			c, err := p.app.docs.GetContainer(ctx, d.cfg.Container)
			if err != nil {
				return fmt.Errorf("sluice: pipeline %s, destination %s: container %s: %w", p.name, d.cfg.Name, d.cfg.Container, err)
			}
			if c.PartitionKeyPath != "/id" {
				return fmt.Errorf("sluice: pipeline %s, destination %s: container %s has partition key path %s; a pipeline writes rows by key into a container whose partition key path is /id",
					p.name, d.cfg.Name, d.cfg.Container, c.PartitionKeyPath)
			}
			d.sink = &containerSink{app: p.app, container: d.cfg.Container}
		}
	}
	return nil
}

// read runs the source while this instance holds the pipeline's lease,
// starting it again after a failure.
func (p *pipelineRun) read(ctx context.Context) {
	p.mu.Lock()
	p.reading = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.reading = false
		p.mu.Unlock()
	}()
	var backfills sync.WaitGroup
	defer backfills.Wait()
	backfills.Go(func() { p.serveBackfills(ctx) })
	backfills.Go(func() { p.prune(ctx) })
	wait := time.Second
	for ctx.Err() == nil {
		err := p.readOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		p.app.log.Error("pipeline: the source stopped; starting it again", "pipeline", p.name, "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, time.Minute)
	}
}

func (p *pipelineRun) readOnce(ctx context.Context) error {
	p.stageMu.Lock()
	last, err := p.lastStaged(ctx)
	if err == nil {
		p.mu.Lock()
		p.last = last
		p.mu.Unlock()
	}
	p.stageMu.Unlock()
	if err != nil {
		return err
	}
	return p.cfg.source.Run(ctx, last.Position, p.stage)
}

// lastStaged reads the change log's newest change set (Seq 0: none yet).
func (p *pipelineRun) lastStaged(ctx context.Context) (pipeline.ChangeSet, error) {
	_, parts, err := p.app.hubSvc.Describe(ctx, p.hub)
	if err != nil {
		return pipeline.ChangeSet{}, fmt.Errorf("pipeline %s: read the change log: %w", p.name, err)
	}
	if parts[0].LastSequence < 0 || parts[0].LastSequence < parts[0].FirstSequence {
		return pipeline.ChangeSet{}, nil
	}
	ev, err := p.readEvent(ctx, parts[0].LastSequence)
	if err != nil {
		return pipeline.ChangeSet{}, err
	}
	if cs, err := decodeChangeSet(ev.Body); err == nil {
		return cs, nil
	}
	// The newest event is not a change set (something else published to
	// the change log): the newest change set before it.
	return p.lastStagedBefore(ctx, parts[0])
}

// lastStagedBefore reads the newest change set among the last 1,000
// records of the change log.
func (p *pipelineRun) lastStagedBefore(ctx context.Context, pi hub.PartitionInfo) (pipeline.ChangeSet, error) {
	firstRec, _ := hub.SplitSequence(pi.FirstSequence)
	lastRec, _ := hub.SplitSequence(pi.LastSequence)
	from := max(firstRec, lastRec-min(lastRec, 1000))
	r, err := p.app.hubSvc.OpenReader(ctx, p.hub, 0, hub.Start{Kind: hub.StartAfter, After: hub.SequenceOf(from, 0) - 1})
	if err != nil {
		return pipeline.ChangeSet{}, fmt.Errorf("pipeline %s: read the change log: %w", p.name, err)
	}
	defer r.Close()
	var found pipeline.ChangeSet
	for {
		evs, err := r.Next(ctx)
		if err != nil {
			return pipeline.ChangeSet{}, fmt.Errorf("pipeline %s: read the change log: %w", p.name, err)
		}
		for _, e := range evs {
			if cs, err := decodeChangeSet(e.Body); err == nil {
				found = cs
			}
			if e.Sequence >= pi.LastSequence {
				if found.Seq == 0 {
					return found, fmt.Errorf("%w: pipeline %s: none of the newest events of its change log (hub %s) is a change set; something else publishes to it", pipeline.ErrCorrupt, p.name, p.hub)
				}
				return found, nil
			}
		}
	}
}

// readEvent reads the change-log event at seq.
func (p *pipelineRun) readEvent(ctx context.Context, seq int64) (hub.StoredEvent, error) {
	r, err := p.app.hubSvc.OpenReader(ctx, p.hub, 0, hub.Start{Kind: hub.StartAfter, After: seq - 1})
	if err != nil {
		return hub.StoredEvent{}, fmt.Errorf("pipeline %s: read the change log: %w", p.name, err)
	}
	defer r.Close()
	for {
		evs, err := r.Next(ctx)
		if err != nil {
			return hub.StoredEvent{}, fmt.Errorf("pipeline %s: read the change log: %w", p.name, err)
		}
		for _, e := range evs {
			if e.Sequence >= seq {
				return e, nil
			}
		}
	}
}

func decodeChangeSet(body []byte) (pipeline.ChangeSet, error) {
	var cs pipeline.ChangeSet
	if err := json.Unmarshal(body, &cs); err != nil || cs.Seq <= 0 || cs.Blob == "" {
		return cs, fmt.Errorf("%w: a change-log event is not a change set (%v)", pipeline.ErrCorrupt, err)
	}
	return cs, nil
}

// stage stores a batch as the next change set: its blob, then its
// change-log event. A crash in between leaves a blob that the next change
// set of the same number overwrites.
func (p *pipelineRun) stage(ctx context.Context, b pipeline.Batch) error {
	if len(b.Changes) == 0 && b.Position == "" {
		return nil
	}
	p.stageMu.Lock()
	defer p.stageMu.Unlock()
	return p.stageLocked(ctx, b)
}

// stageLocked is stage, with stageMu held.
func (p *pipelineRun) stageLocked(ctx context.Context, b pipeline.Batch) error {
	p.mu.Lock()
	seq := p.last.Seq + 1
	p.mu.Unlock()
	data, err := pipeline.Encode(b.Changes)
	if err != nil {
		return err
	}
	cs := pipeline.ChangeSet{Pipeline: p.name, Seq: seq, Blob: pipeline.BlobName(seq), Count: len(b.Changes),
		Tables: b.Tables, Position: b.Position, Snapshot: b.Snapshot, Staged: time.Now().UTC()}
	for _, c := range b.Changes {
		if c.CommitTime.IsZero() {
			continue
		}
		if cs.First.IsZero() || c.CommitTime.Before(cs.First) {
			cs.First = c.CommitTime
		}
		if c.CommitTime.After(cs.Last) {
			cs.Last = c.CommitTime
		}
	}
	if _, err := p.app.blobs.Put(ctx, p.container, cs.Blob, bytes.NewReader(data), blob.Meta{ContentType: "application/zstd"}); err != nil {
		return fmt.Errorf("pipeline %s: stage change set %d: %w", p.name, seq, err)
	}
	body, err := json.Marshal(cs)
	if err != nil {
		return err
	}
	if _, err := p.app.hubSvc.Publish(ctx, p.hub, []hub.Event{{Body: body, MessageID: fmt.Sprintf("pipeline:%s:%d", p.name, seq)}}); err != nil {
		return fmt.Errorf("pipeline %s: stage change set %d: %w", p.name, seq, err)
	}
	p.mu.Lock()
	p.last, p.lastErr = cs, nil
	p.mu.Unlock()
	p.recent.put(cs.Seq, b.Changes)
	return nil
}

// handle applies change sets to a destination, in order. A failure fails
// the batch: the function retries it for ever (and its breaker holds the
// destination while it keeps failing), so nothing is skipped.
func (d *pipelineDest) handle(ctx context.Context, events []Event) error {
	// The batch's change sets are read and decoded ahead, two at a time,
	// while the sink applies them in order.
	type loading struct {
		cs      pipeline.ChangeSet
		changes []pipeline.Change
		err     error
		done    chan struct{}
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, 2)
	sets := make([]*loading, len(events))
	for i, e := range events {
		l := &loading{done: make(chan struct{})}
		sets[i] = l
		if l.cs, l.err = decodeChangeSet(e.Body); l.err != nil {
			close(l.done)
			continue
		}
		go func() {
			defer close(l.done)
			select {
			case sem <- struct{}{}:
			case <-lctx.Done():
				l.err = lctx.Err()
				return
			}
			defer func() { <-sem }()
			l.changes, l.err = d.p.load(lctx, l.cs)
		}()
	}
	var corrupt []Event
	var corruptErr error
	for i, e := range events {
		l := sets[i]
		<-l.done
		if l.err != nil && errors.Is(l.err, pipeline.ErrCorrupt) && l.cs.Seq == 0 {
			// Not a change set at all: the others go on, it is a dead letter.
			corrupt, corruptErr = append(corrupt, e), l.err
			continue
		}
		if l.err != nil {
			return l.err
		}
		if err := d.apply(ctx, e, l.cs, l.changes); err != nil {
			return err
		}
	}
	if len(corrupt) > 0 {
		return DeadLetter(corruptErr, corrupt...)
	}
	return nil
}

// apply applies one change set, dead-lettering the rows refused.
func (d *pipelineDest) apply(ctx context.Context, e Event, cs pipeline.ChangeSet, changes []pipeline.Change) error {
	var refused []pipeline.Rejected
	if d.transform != nil {
		var err error
		if cs, changes, refused, err = d.transform.Apply(ctx, cs, changes); err != nil {
			return fmt.Errorf("destination %s: change set %d: %w", d.cfg.Name, cs.Seq, err)
		}
	}
	rejected, err := d.sink.Apply(ctx, cs, changes)
	if err != nil {
		return fmt.Errorf("destination %s: change set %d: %w", d.cfg.Name, cs.Seq, err)
	}
	rejected = append(refused, rejected...)
	if len(rejected) > 0 {
		if err := d.p.app.letters.Put(ctx, d.rowLetters(e, cs, rejected)); err != nil {
			return fmt.Errorf("destination %s: change set %d: keep the %d rows it refused as dead letters: %w", d.cfg.Name, cs.Seq, len(rejected), err)
		}
	}
	return nil
}

// rowLetters are the dead letters of the rows a destination refused: each
// with the change as its body, and its change set, position and reason.
func (d *pipelineDest) rowLetters(e Event, cs pipeline.ChangeSet, rejected []pipeline.Rejected) []deadletter.Letter {
	now := time.Now().UTC()
	out := make([]deadletter.Letter, 0, len(rejected))
	for _, r := range rejected {
		body, _ := json.Marshal(r.Change)
		out = append(out, deadletter.Letter{Function: d.p.functionName(d.cfg.Name), Reason: r.Reason, Attempts: 1, FirstFailure: now, LastFailure: now,
			Source: deadletter.Source{Kind: "pipeline", Hub: d.p.hub, Group: d.cfg.Name, Partition: e.Partition, Sequence: e.SequenceNumber,
				EnqueuedTime: e.EnqueuedTime, Pipeline: d.p.name, ChangeSet: cs.Seq, Position: r.Change.Position, Table: r.Change.Table},
			Body: body, Properties: map[string]string{"content-type": "application/json"}})
	}
	return out
}

// load reads a change set's changes: from memory when this instance
// staged it lately, else from its blob.
func (p *pipelineRun) load(ctx context.Context, cs pipeline.ChangeSet) ([]pipeline.Change, error) {
	if changes, ok := p.recent.get(cs.Seq); ok && len(changes) == cs.Count {
		return changes, nil
	}
	r, _, err := p.app.blobs.Get(ctx, p.container, cs.Blob)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: change set %d (blob %s): %w", p.name, cs.Seq, cs.Blob, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: change set %d (blob %s): %w", p.name, cs.Seq, cs.Blob, err)
	}
	changes, err := pipeline.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: change set %d (blob %s): %w", p.name, cs.Seq, cs.Blob, err)
	}
	if len(changes) != cs.Count {
		return nil, fmt.Errorf("%w: change set %d of pipeline %s holds %d changes, its event says %d", pipeline.ErrCorrupt, cs.Seq, p.name, len(changes), cs.Count)
	}
	return changes, nil
}

// pipelineByName finds a declared pipeline.
func (a *App) pipelineByName(name string) (*pipelineRun, error) {
	a.pipeMu.RLock()
	defer a.pipeMu.RUnlock()
	i := slices.IndexFunc(a.pipelines, func(p *pipelineRun) bool { return p.name == name })
	if i < 0 {
		return nil, &pipelineNotFound{fmt.Sprintf("sluice: pipeline %q is neither declared on this instance nor created", name)}
	}
	return a.pipelines[i], nil
}

// pipelineList is the pipelines, declared then created, in order.
func (a *App) pipelineList() []*pipelineRun {
	a.pipeMu.RLock()
	defer a.pipeMu.RUnlock()
	return slices.Clone(a.pipelines)
}

// recentChangeSets keeps the changes of the last change sets staged, by
// number, for the destinations on the same instance. Sinks and transforms
// never modify the changes they are given, so the destinations share
// them.
type recentChangeSets struct {
	mu      sync.Mutex
	seqs    [recentCapacity]int64
	changes [recentCapacity][]pipeline.Change
}

// recentCapacity change sets (each up to BatchSize changes) are kept.
const recentCapacity = 32

func (r *recentChangeSets) put(seq int64, changes []pipeline.Change) {
	i := seq % recentCapacity
	r.mu.Lock()
	r.seqs[i], r.changes[i] = seq, slices.Clone(changes)
	r.mu.Unlock()
}

func (r *recentChangeSets) get(seq int64) ([]pipeline.Change, bool) {
	i := seq % recentCapacity
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seqs[i] != seq || r.changes[i] == nil {
		return nil, false
	}
	return r.changes[i], true
}
