package sluice_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// A change-feed function keeps a materialized view: per customer, the
// total of their orders, written through the UpsertTo output binding. It
// runs on SQLite, and on PostgreSQL when SLUICE_TEST_POSTGRES is set.
func TestFeedFunctionMaintainsAView(t *testing.T) {
	t.Parallel()
	stores := map[string]string{"sqlite": ""}
	if dsn := os.Getenv("SLUICE_TEST_POSTGRES"); dsn != "" {
		stores["postgres"] = dsn
	}
	for name, dsn := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testFeedView(t, dsn)
		})
	}
}

func testFeedView(t *testing.T, dsn string) {
	ctx := context.Background()
	// Unique names: PostgreSQL runs share the database.
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	orders, totals := "orders"+suffix, "totals"+suffix
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), DocStore: dsn, Logger: quiet()})
	app.Container(sluice.ContainerConfig{Name: orders, PartitionKeyPath: "/customer"})
	app.Container(sluice.ContainerConfig{Name: totals, PartitionKeyPath: "/id"})

	type order struct {
		ID       string `json:"id"`
		Customer string `json:"customer"`
		Amount   int    `json:"amount"`
	}
	// The view holds, per order, its amount; per customer, the sum.
	var failures atomic.Int64
	app.FeedFunction("totals", sluice.FeedTrigger{Container: orders, StartFrom: sluice.FeedFromBeginning, MaxItemsPerInvocation: 5},
		sluice.UpsertTo(app, totals, func(ctx context.Context, changes []sluice.Document) ([]any, error) {
			sums := map[string]map[string]any{} // this batch's views, by customer
			var out []any
			var bad []sluice.Document
			for _, c := range changes {
				var o order
				if err := json.Unmarshal(c.Body, &o); err != nil || o.Amount < 0 {
					bad = append(bad, c)
					continue
				}
				sum, ok := sums[o.Customer]
				if !ok {
					sum = map[string]any{"id": o.Customer, "orders": map[string]any{}}
					cur, err := app.Docs().Read(ctx, totals, o.Customer, o.Customer)
					if err == nil {
						require.NoError(t, json.Unmarshal(cur.Body, &sum))
					} else if !errors.Is(err, sluice.ErrDocumentNotFound) {
						failures.Add(1)
						return nil, err
					}
					sums[o.Customer] = sum
					out = append(out, sum)
				}
				sum["orders"].(map[string]any)[o.ID] = o.Amount
			}
			if len(bad) > 0 {
				return out, sluice.DeadLetterChanges(errors.New("negative amount"), bad...)
			}
			return out, nil
		}))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)

	docs := app.Docs()
	want := map[string]map[string]float64{}
	for i := range 60 {
		o := order{ID: fmt.Sprintf("o%d", i), Customer: fmt.Sprintf("c%d", i%6), Amount: i}
		if i == 13 {
			o.Amount = -1
		}
		_, err := docs.Upsert(ctx, orders, o)
		require.NoError(t, err)
		if o.Amount >= 0 {
			if want[o.Customer] == nil {
				want[o.Customer] = map[string]float64{}
			}
			want[o.Customer][o.ID] = float64(o.Amount)
		}
	}
	// One customer's view is made with one change per call of the
	// function, in order: the last written amount wins.
	_, err := docs.Upsert(ctx, orders, order{ID: "o0", Customer: "c0", Amount: 100})
	require.NoError(t, err)
	want["c0"]["o0"] = 100

	deadline := time.Now().Add(20 * time.Second)
	for {
		got := map[string]map[string]float64{}
		for c := range want {
			d, err := docs.Read(ctx, totals, c, c)
			if err != nil {
				continue
			}
			var v struct {
				Orders map[string]float64 `json:"orders"`
			}
			require.NoError(t, json.Unmarshal(d.Body, &v))
			got[c] = v.Orders
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the view is\n%v\nwant\n%v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	letters, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: "totals"}, 10)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Equal(t, "o13", letters[0].Source.DocumentID)
	require.Equal(t, orders, letters[0].Source.Container)
	require.Equal(t, "negative amount", letters[0].Reason)
	require.Zero(t, failures.Load())

	// Corrected, the order is redriven: its change comes through the feed
	// again and reaches the view.
	_, err = docs.Upsert(ctx, orders, order{ID: "o13", Customer: "c1", Amount: 13})
	require.NoError(t, err)
	n, err := app.Redrive(ctx, sluice.DeadLetterFilter{Function: "totals"})
	require.NoError(t, err, "a change's dead letter can be redriven through the SDK")
	require.Equal(t, 1, n)
}

// A failure to write the output fails the invocation: without a retry
// policy, the change is dead-lettered, and the bad output is not written.
func TestUpsertToFailureFailsTheInvocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Container(sluice.ContainerConfig{Name: "in", PartitionKeyPath: "/k"})
	app.Container(sluice.ContainerConfig{Name: "out", PartitionKeyPath: "/owner"})
	app.FeedFunction("copy", sluice.FeedTrigger{Container: "in", StartFrom: sluice.FeedFromBeginning, MaxItemsPerInvocation: 1},
		sluice.UpsertTo(app, "out", func(_ context.Context, changes []sluice.Document) ([]any, error) {
			out := make([]any, len(changes))
			for i, c := range changes {
				doc := map[string]any{"id": c.ID, "owner": c.PartitionKey}
				if c.ID == "b" {
					delete(doc, "owner") // cannot be stored in "out"
				}
				out[i] = doc
			}
			return out, nil
		}))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	for _, d := range []string{`{"id":"a","k":"x"}`, `{"id":"b","k":"y"}`, `{"id":"c","k":"z"}`} {
		_, err := app.Docs().Upsert(ctx, "in", d)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		_, err := app.Docs().Read(ctx, "out", "z", "c")
		return err == nil
	}, 30*time.Second, 10*time.Millisecond)
	_, err := app.Docs().Read(ctx, "out", "x", "a")
	require.NoError(t, err)
	page, err := app.Docs().Query(ctx, "out", sluice.QueryRequest{Text: "SELECT * FROM c"})
	require.NoError(t, err)
	require.Len(t, page.Documents, 2, "b's output was not written")
	letters, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: "copy"}, 10)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Equal(t, "b", letters[0].Source.DocumentID)
	require.Contains(t, letters[0].Reason, "output to container out")
	require.Contains(t, letters[0].Reason, "partition key")
}

// A document store URL that is not PostgreSQL's is refused at start, with
// its password hidden.
func TestDocStoreURLMustBePostgreSQL(t *testing.T) {
	t.Parallel()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), DocStore: "mysql://root:secret@db/x", Logger: quiet()})
	err := app.Start(context.Background())
	require.ErrorContains(t, err, "give a PostgreSQL URL")
	require.NotContains(t, err.Error(), "secret")
}
