package sluice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// containerSource reads a container's change feed: each document write is
// an update of the row keyed by the document's partition key and id, each
// delete a delete. Its position is "lsn:<n>".
type containerSource struct {
	app       *App
	container string
	batch     int
}

var _ pipeline.Source = (*containerSource)(nil)

func (s *containerSource) table() pipeline.Table {
	return pipeline.Table{Name: s.container, Columns: []pipeline.Column{
		{Name: "partition_key", Type: "text", Key: true}, {Name: "id", Type: "text", Key: true}}}
}

func (s *containerSource) Run(ctx context.Context, after string, emit pipeline.Emit) error {
	lsn := int64(0)
	if after != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(after, "lsn:"), 10, 64)
		if err != nil || !strings.HasPrefix(after, "lsn:") {
			return fmt.Errorf("%w: position %q is not a container feed's (lsn:<n>)", pipeline.ErrCorrupt, after)
		}
		lsn = n
	}
	tables := map[string]pipeline.Table{s.container: s.table()}
	poll := time.NewTimer(time.Second)
	defer poll.Stop()
	for {
		changed := s.app.docs.Changed(s.container)
		docs, err := s.app.docs.Feed(ctx, s.container, docstore.FeedStart{AfterLSN: lsn}, s.batch)
		if err != nil {
			return fmt.Errorf("read the change feed of container %s: %w", s.container, err)
		}
		if len(docs) == 0 {
			poll.Reset(time.Second)
			select {
			case <-changed:
			case <-poll.C:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		changes := make([]pipeline.Change, len(docs))
		for i, d := range docs {
			c := pipeline.Change{Op: pipeline.Update, Table: s.container, Key: pipeline.Row{"partition_key": d.PartitionKey, "id": d.ID},
				Position: "lsn:" + strconv.FormatInt(d.LSN, 10), CommitTime: d.TS}
			if d.Deleted {
				c.Op = pipeline.Delete
			} else if c.After, err = documentRow(d.Body); err != nil {
				return fmt.Errorf("container %s, document %q: %w", s.container, d.ID, err)
			}
			changes[i] = c
		}
		last := docs[len(docs)-1].LSN
		if err := emit(ctx, pipeline.Batch{Changes: changes, Tables: tables, Position: "lsn:" + strconv.FormatInt(last, 10)}); err != nil {
			return err
		}
		lsn = last
	}
}

// documentRow is a document's fields without its system fields.
func documentRow(body []byte) (pipeline.Row, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var row pipeline.Row
	if err := dec.Decode(&row); err != nil {
		return nil, err
	}
	for _, f := range []string{"_etag", "_ts", "_lsn", "_rid", "_self", "_attachments"} {
		delete(row, f)
	}
	return row, nil
}
