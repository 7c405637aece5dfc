package examples_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// TestCDCPipeline runs examples/cdc-pipeline as its README does: the
// HTTP service, a writer changing orders all the time, and the instance
// with the pipeline to a reporting table, the service and a hub. The
// service goes down: its destination falls behind and its breaker opens
// while reporting goes on; once it is back it catches up by itself. With
// the writer stopped, the reporting table and the service hold exactly
// the source's orders, and the function reacting to the hub alerted on
// every large order. Then rows lost from the reporting table come back by
// a replay of that destination from a time, through the CLI, and the
// other destinations are untouched.
func TestCDCPipeline(t *testing.T) {
	t.Parallel()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: set it to a PostgreSQL URL (postgres://postgres@127.0.0.1:5432/test?sslmode=disable) with wal_level = logical to run the cdc-pipeline example")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var level string
	require.NoError(t, pool.QueryRow(ctx, "SHOW wal_level").Scan(&level))
	if level != "logical" {
		t.Skipf("the test database has wal_level = %s: set it to logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL) to run the cdc-pipeline example", level)
	}

	// A schema for the source and one for reporting, and a pipeline (so a
	// slot and a publication) of this run's own. Cleanups run last in,
	// first out: these run after the processes below have stopped.
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	src, rep, name := "cdc_src_"+suffix, "cdc_rep_"+suffix, "orders-"+suffix
	// The source names its slot and publication so ('-' becomes '_').
	slot := "sluice_orders_" + suffix
	for _, s := range []string{src, rep} {
		_, err := pool.Exec(ctx, "CREATE SCHEMA "+s)
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, err := pool.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		assert.NoError(t, err, "drop the replication slot %s", slot)
		_, err = pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{slot}.Sanitize())
		assert.NoError(t, err)
		for _, s := range []string{src, rep} {
			_, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
			assert.NoError(t, err)
		}
	})

	root := moduleRoot(t)
	bin := t.TempDir()
	cli := filepath.Join(bin, "sluice")
	goBuild(t, root, cli, "./cmd/sluice")
	example := filepath.Join(bin, "cdc-pipeline")
	goBuild(t, root, example, "./examples/cdc-pipeline")

	svcAddr, writerAddr, apiAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	svc, writer, api := "http://"+svcAddr, "http://"+writerAddr, "http://"+apiAddr
	startProc(t, "service", example, "service", "--addr", svcAddr).waitOK(svc + "/")
	// The writer creates the table before it answers.
	startProc(t, "writer", example, "writer", "--source-url", dsn, "--schema", src, "--rate", "40",
		"--addr", writerAddr).waitOK(writer + "/")
	startProc(t, "instance", example, "run", "--data-dir", t.TempDir(), "--http", apiAddr, "--pipeline", name,
		"--source-url", dsn, "--schema", src, "--reporting-url", cdcSearchPath(t, dsn, rep),
		"--service-url", svc+"/changes", "--threshold", "800",
		"--retry-backoff", "50ms", "--max-retry-backoff", "500ms", "--cool-down", "500ms", "--max-cool-down", "2s",
	).waitOK(api + "/readyz")

	status := func() sluice.PipelineStatus {
		t.Helper()
		out := runCLI(t, cli, "pipeline", "status", name, "--server", api, "--json")
		var st sluice.PipelineStatus
		require.NoError(t, json.Unmarshal(out, &st), "%s", out)
		require.Len(t, st.Destinations, 3, "%s", out)
		return st
	}
	dest := func(st sluice.PipelineStatus, d string) sluice.PipelineDestinationStatus {
		i := slices.IndexFunc(st.Destinations, func(s sluice.PipelineDestinationStatus) bool { return s.Name == d })
		require.GreaterOrEqual(t, i, 0, "destination %s in %+v", d, st)
		return st.Destinations[i]
	}

	eventually(t, "the reporting table has rows", func() error {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+rep+".orders").Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no rows yet")
		}
		return nil
	})
	// The point the reporting destination is replayed from at the end.
	var from time.Time
	require.NoError(t, pool.QueryRow(ctx, "SELECT now()").Scan(&from))

	// The service goes down: its destination falls behind, its breaker
	// opens; reporting and events go on.
	postOK(t, svc+"/down")
	var atOpen sluice.PipelineStatus
	eventually(t, "the service destination is behind, its breaker open", func() error {
		atOpen = status()
		if d := dest(atOpen, "service"); d.Behind == 0 || d.Breaker == "closed" || d.Breaker == "" {
			return fmt.Errorf("service: %+v", d)
		}
		return nil
	})
	eventually(t, "reporting and events go on while the service is down", func() error {
		st := status()
		s, r, e := dest(st, "service"), dest(st, "reporting"), dest(st, "events")
		if s.Breaker == "closed" || s.Behind == 0 {
			return fmt.Errorf("the service is down, yet its destination is %+v", s)
		}
		if r.Applied <= dest(atOpen, "reporting").Applied || e.Applied <= dest(atOpen, "events").Applied {
			return fmt.Errorf("reporting %+v, events %+v; when the breaker opened: %+v", r, e, atOpen.Destinations)
		}
		return nil
	})
	assert.Positive(t, cdcGet[cdcServiceStatus](t, svc+"/").Refused, "change sets were refused while down")

	// Back up: it catches up by itself. The writer stops, and everything
	// ends equal to the source.
	postOK(t, svc+"/up")
	postOK(t, writer+"/stop")
	wrote := cdcGet[cdcWriterStatus](t, writer+"/")
	require.False(t, wrote.Writing)
	require.Positive(t, wrote.Inserted)
	require.Positive(t, wrote.Updated)
	require.Positive(t, wrote.Deleted)

	source := cdcRows(t, pool, src)
	require.NotEmpty(t, source)
	var caughtUp sluice.PipelineStatus
	eventually(t, "every destination has applied every change set", func() error {
		if got := cdcRows(t, pool, rep); !slices.Equal(got, source) {
			return fmt.Errorf("reporting has %d rows, the source %d (or they differ)", len(got), len(source))
		}
		if got := cdcServiceRows(t, svc); !slices.Equal(got, cdcWithoutTime(source)) {
			return fmt.Errorf("the service holds %d orders, the source %d (or they differ)", len(got), len(source))
		}
		caughtUp = status()
		for _, d := range caughtUp.Destinations {
			if d.Behind != 0 || d.Applied != caughtUp.Staged || d.Breaker != "closed" {
				return fmt.Errorf("%d change sets staged; %+v", caughtUp.Staged, caughtUp.Destinations)
			}
		}
		return nil
	})
	var large int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+src+".orders WHERE total > 800").Scan(&large))
	require.Positive(t, large, "the writer made large orders")
	var alerted cdcAlerts
	eventually(t, "order-alerts reacted to every large order", func() error {
		alerted = cdcGet[cdcAlerts](t, api+"/api/alerts")
		if alerted.Alerts < large || alerted.Changes < int64(len(source)) {
			return fmt.Errorf("%+v; %d large orders in %d", alerted, large, len(source))
		}
		return nil
	})

	// Rows lost from the reporting table (everything written since from)
	// come back with a replay of that destination from then; the service
	// and events are untouched.
	lost, err := pool.Exec(ctx, "DELETE FROM "+rep+".orders WHERE updated_at >= $1", from)
	require.NoError(t, err)
	require.Positive(t, lost.RowsAffected(), "orders written since %s", from)
	out := runCLI(t, cli, "pipeline", "replay", name, "--destination", "reporting", "--from", from.UTC().Format(time.RFC3339Nano),
		"--server", api, "--json")
	var replay struct {
		Pipeline, Destination string
		From                  int64
	}
	require.NoError(t, json.Unmarshal(out, &replay), "%s", out)
	assert.Equal(t, name, replay.Pipeline)
	assert.Equal(t, "reporting", replay.Destination)
	assert.Greater(t, replay.From, int64(1), "from a change set after the first: %s", out)
	assert.LessOrEqual(t, replay.From, caughtUp.Staged, "%s", out)
	eventually(t, "the replay restores the reporting table", func() error {
		if got := cdcRows(t, pool, rep); !slices.Equal(got, source) {
			return fmt.Errorf("reporting has %d rows, the source %d (or they differ)", len(got), len(source))
		}
		if r := dest(status(), "reporting"); r.Behind != 0 {
			return fmt.Errorf("reporting %+v", r)
		}
		return nil
	})
	after := status()
	for _, d := range []string{"service", "events"} {
		assert.GreaterOrEqual(t, dest(after, d).Applied, dest(caughtUp, d).Applied, "%s does not go back", d)
	}
	assert.Equal(t, cdcWithoutTime(source), cdcServiceRows(t, svc), "the service holds the same orders")
	assert.Equal(t, alerted.Alerts, cdcGet[cdcAlerts](t, api+"/api/alerts").Alerts, "no new alerts")
}

// cdcServiceStatus is the service's GET /.
type cdcServiceStatus struct {
	Up         bool `json:"up"`
	Orders     int  `json:"orders"`
	Posts      int  `json:"posts"`
	Duplicates int  `json:"duplicates"`
	Refused    int  `json:"refused_while_down"`
}

// cdcWriterStatus is the writer's GET /.
type cdcWriterStatus struct {
	Writing                    bool
	Transactions               int
	Inserted, Updated, Deleted int
}

// cdcAlerts is the instance's GET /api/alerts.
type cdcAlerts struct {
	Changes int64 `json:"changes"`
	Alerts  int   `json:"alerts"`
}

func cdcGet[T any](t *testing.T, url string) T {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s", url)
	var v T
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v), "GET %s", url)
	return v
}

// cdcRows reads schema.orders as id|customer|total|status|updated_at, by
// id; a missing table is none.
func cdcRows(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT id::text || '|' || customer || '|' || total::text || '|' || status || '|' || updated_at::text FROM "+
		schema+".orders ORDER BY id")
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// cdcWithoutTime drops updated_at from cdcRows' rows: the service holds it
// as the source's text, which depends on the session's time zone.
func cdcWithoutTime(rows []string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[:strings.LastIndexByte(r, '|')]
	}
	return out
}

// cdcServiceRows reads the service's orders as id|customer|total|status,
// by id.
func cdcServiceRows(t *testing.T, svc string) []string {
	t.Helper()
	orders := cdcGet[map[string]map[string]any](t, svc+"/orders")
	type row struct {
		id  int64
		txt string
	}
	var rows []row
	for id, o := range orders {
		var n int64
		_, err := fmt.Sscan(id, &n)
		require.NoError(t, err, "order id %q", id)
		rows = append(rows, row{n, fmt.Sprintf("%s|%v|%v|%v", id, o["customer"], o["total"], o["status"])})
	}
	slices.SortFunc(rows, func(a, b row) int { return int(a.id - b.id) })
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.txt
	}
	return out
}

// cdcSearchPath is dsn with its search_path set to schema.
func cdcSearchPath(t *testing.T, dsn, schema string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
