package sluice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/filesink"
	"github.com/sluicehq/sluice/internal/pipeline/httpsink"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

// rowKey is a row's key as one string: its key columns' values, in column
// order, joined by "|".
func rowKey(key pipeline.Row) string {
	cols := make([]string, 0, len(key))
	for c := range key {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprint(key[c])
	}
	return strings.Join(parts, "|")
}

// hubSink publishes each change as an event, keyed by table and key so a
// row's changes keep their order. Each change has a message id (pipeline,
// destination, change set, index), so a change set applied again within
// the hub's duplicate window is not stored twice.
type hubSink struct {
	app *App
	hub string
	id  string // pipeline:destination
}

var _ pipeline.Sink = (*hubSink)(nil)

func (s *hubSink) Apply(ctx context.Context, cs pipeline.ChangeSet, changes []pipeline.Change) ([]pipeline.Rejected, error) {
	const chunk = 500
	for start := 0; start < len(changes); start += chunk {
		part := changes[start:min(start+chunk, len(changes))]
		events := make([]hub.Event, len(part))
		for i, c := range part {
			body, err := json.Marshal(c)
			if err != nil {
				return nil, err
			}
			// A row's changes share a partition by the key they leave it
			// under (a move goes on with the new key's changes).
			events[i] = hub.Event{Body: body, PartitionKey: c.Table + "/" + rowKey(c.NewKey()),
				MessageID:  fmt.Sprintf("%s:%d:%d", s.id, cs.Seq, start+i),
				Properties: map[string]string{"pipeline": cs.Pipeline, "table": c.Table, "op": string(c.Op), "content-type": "application/json"}}
		}
		if _, err := s.app.hubSvc.Publish(ctx, s.hub, events); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// docID is the id of a row's document: its key's "id" column when it has
// one (as rows of a container's feed and most tables do), else its key.
func docID(key pipeline.Row) string {
	if v, ok := key["id"]; ok {
		return fmt.Sprint(v)
	}
	return rowKey(key)
}

// containerSink keeps each row as a document whose id is the row's key
// (docID), and deletes it with the row.
type containerSink struct {
	app       *App
	container string
}

var _ pipeline.Sink = (*containerSink)(nil)

func (s *containerSink) Apply(ctx context.Context, cs pipeline.ChangeSet, changes []pipeline.Change) ([]pipeline.Rejected, error) {
	// Consecutive upserts go in one bulk write, keeping only the last
	// change of each key among them; a delete ends the run.
	var run [][]byte
	at := map[string]int{} // id → its place in run
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		_, err := s.app.docs.BulkUpsert(ctx, s.container, run)
		run = run[:0]
		clear(at)
		return err
	}
	del := func(id string) error {
		if err := flush(); err != nil {
			return err
		}
		if err := s.app.docs.Delete(ctx, s.container, id, id, ""); err != nil && !errors.Is(err, docstore.ErrNotFound) {
			return err
		}
		return nil
	}
	for _, c := range changes {
		id := docID(c.Key)
		if c.Op == pipeline.Delete {
			if err := del(id); err != nil {
				return nil, err
			}
			continue
		}
		if moved := docID(c.NewKey()); moved != id {
			// An update moved the row to a new key: its old document goes.
			if err := del(id); err != nil {
				return nil, err
			}
			id = moved
		}
		doc := make(map[string]any, len(c.After)+2)
		for k, v := range c.After {
			doc[k] = v
		}
		doc["id"] = id
		doc["_table"] = c.Table
		data, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		if i, ok := at[id]; ok {
			run[i] = data
			continue
		}
		at[id] = len(run)
		run = append(run, data)
	}
	return nil, flush()
}

// httpConfig is the HTTP sink's configuration of a destination.
func (d PipelineDestination) httpConfig(pipelineName string, log *slog.Logger) httpsink.Config {
	return httpsink.Config{URL: d.HTTP.URL, Headers: d.HTTP.Headers, BatchSize: d.HTTP.BatchSize, Timeout: d.HTTP.Timeout,
		Pipeline: pipelineName, Destination: d.Name, Logger: log}
}

// filesConfig is the files sink's configuration of a destination, writing
// to store.
func (d PipelineDestination) filesConfig(store filesink.Store) filesink.Config {
	if store == nil {
		store = blobFiles{} // only checked, never written
	}
	return filesink.Config{Store: store, Format: d.Files.Format, Prefix: d.Files.Prefix, Gzip: d.Files.Gzip}
}

// blobFiles stores a files destination's files in a blob container.
type blobFiles struct {
	app       *App
	container string
}

func (b blobFiles) Put(ctx context.Context, name string, data []byte, contentType string) error {
	_, err := b.app.blobs.Put(ctx, b.container, name, bytes.NewReader(data), blob.Meta{ContentType: contentType})
	return err
}

// newTransform compiles a destination's transforms.
func newTransform(tables map[string]TableTransform) (*transform.Transform, error) {
	cfg := transform.Config{Tables: make(map[string]transform.TableConfig, len(tables))}
	for name, t := range tables {
		tc := transform.TableConfig{Filter: t.Filter, Include: t.Include, Exclude: t.Exclude, Rename: t.Rename}
		if len(t.Compute) > 0 {
			tc.Compute = make(map[string]transform.Computed, len(t.Compute))
			for col, c := range t.Compute {
				tc.Compute[col] = transform.Computed{Expr: c.Expr, Type: c.Type}
			}
		}
		cfg.Tables[name] = tc
	}
	return transform.New(cfg)
}
