package sluice_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// A pipeline created through the API on one instance runs on every
// instance sharing the cluster (one of them reads the source), shows in
// both statuses as created, and stops everywhere when deleted, its change
// log gone. Bad definitions get a clear 400 and store nothing; a second
// creation of the same name is a 409; a declared pipeline cannot be
// deleted through the API.
func TestPipelineCreateAndDeleteThroughAPI(t *testing.T) {
	ctx := context.Background()
	srv := graphFake(t)
	t.Setenv("GRAPH_AUTH_TEST", "Bearer graph-token")
	first := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", Logger: quiet(), InstanceID: "first"})
	first.Hub(sluice.HubConfig{Name: "items", Partitions: 2})
	first.Pipeline("declared", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{
		sluice.SinkDestination("a", &memSink{rows: map[string]string{}})}}, newMemSource()))
	require.NoError(t, first.Start(ctx))
	t.Cleanup(func() { _ = first.Stop(context.Background()) })
	second := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSURL: first.NATSURL(), Logger: quiet(), InstanceID: "second"})
	require.NoError(t, second.Start(ctx))
	t.Cleanup(func() { _ = second.Stop(context.Background()) })

	api := first.URL() + "/api/v1/pipelines"
	js := "application/json"
	for _, c := range []struct {
		body string
		want int
		says string
	}{
		{`{"name": "list", "spec": {"http": {"url": "` + srv.URL + `/items", "table": "sp.items"}, "destinations": {"d": {"hub": "items"}}, "colour": 1}}`, 400, `unknown field "colour"`},
		{`{"name": "list", "spec": {"http": {"url": "` + srv.URL + `/items", "table": "sp.items"}}}`, 400, "give its destinations"},
		{`{"name": "list", "spec": {"http": {"url": "` + srv.URL + `/items", "table": "sp.items", "headersEnv": {"Authorization": "NOT_SET_ANYWHERE_X"}}, "destinations": {"d": {"hub": "items"}}}}`, 400, "NOT_SET_ANYWHERE_X"},
		{`{"name": "list", "spec": {"http": {"url": "` + srv.URL + `/items", "table": "sp.items"}, "destinations": {"d": {"hub": "items", "transform": {"*": {"filter": ".x <"}}}}}}`, 400, "is not a jq expression"},
		{`{"name": "List!", "spec": {"http": {"url": "` + srv.URL + `/items", "table": "sp.items"}, "destinations": {"d": {"hub": "items"}}}}`, 400, "lowercase"},
		{`{"name": "list", "spec": {"http": {"url": "` + srv.URL + `/items", "table": "sp.items"}, "destinations": {"d": {"hub": "items", "retryBackoff": 5}}}}`, 400, "duration"},
		{`{"name": "declared", "spec": {"http": {"url": "` + srv.URL + `/items", "table": "sp.items"}, "destinations": {"d": {"hub": "items"}}}}`, 409, "exists"},
		{`{"spec": {}}`, 400, `"name"`},
	} {
		code, out := send(t, "POST", api, "", js, strings.NewReader(c.body), nil)
		require.Equal(t, c.want, code, "%s: %v", c.body, out)
		require.Contains(t, out["error"], c.says, c.body)
	}
	code, out := send(t, "GET", api, "", "", nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, out["pipelines"], 1, "nothing stored by the bad definitions")

	spec := `{"name": "list", "spec": {"http": {"url": "` + srv.URL + `/items", "table": "sp.items", "pollInterval": "10ms",
		"headersEnv": {"Authorization": "GRAPH_AUTH_TEST"}}, "destinations": {"events": {"hub": "items"}}}}`
	code, out = send(t, "POST", api, "", js, strings.NewReader(spec), nil)
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, true, out["created"])
	code, out = send(t, "POST", api, "", js, strings.NewReader(spec), nil)
	require.Equal(t, http.StatusConflict, code, out)

	// Both instances run it; the hub destination gets the list's changes.
	waitUntil(t, "the second instance runs it too", func() bool {
		st, err := second.PipelineStatus(ctx, "list")
		return err == nil && st.Created && st.StartError == ""
	})
	waitUntil(t, "the items reach the hub: 3 read, then an update and a removal", func() bool {
		lag, err := first.Lag(ctx, "items", "")
		require.NoError(t, err)
		return lag == 5
	})
	for _, app := range []*sluice.App{first, second} {
		st, err := app.PipelineStatus(ctx, "list")
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(st.Position, "http:"), st.Position)
	}

	code, out = send(t, "DELETE", api+"/declared", "", "", nil, nil)
	require.Equal(t, http.StatusConflict, code, out)
	require.Contains(t, out["error"], "declared")
	req, err := http.NewRequest("DELETE", api+"/list", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	code, _ = send(t, "GET", api+"/list", "", "", nil, nil)
	require.Equal(t, http.StatusNotFound, code)
	waitUntil(t, "the second instance stops it", func() bool {
		_, err := second.PipelineStatus(ctx, "list")
		return err != nil
	})
	_, err = first.Lag(ctx, sluice.PipelineHub("list"), "events")
	require.Error(t, err, "its change log is gone")
	code, _ = send(t, "DELETE", api+"/list", "", "", nil, nil)
	require.Equal(t, http.StatusNotFound, code)

	// One that cannot start here (its destination's database is not
	// there) is created, and its status says why; it can be deleted.
	broken := `{"name": "broken", "spec": {"http": {"url": "` + srv.URL + `/items", "table": "sp.items"},
		"destinations": {"db": {"sql": {"url": "postgres://nobody@127.0.0.1:1/none?connect_timeout=5"}}}}}`
	code, out = send(t, "POST", api, "", js, strings.NewReader(broken), nil)
	require.Equal(t, http.StatusCreated, code, out)
	require.NotEmpty(t, out["start_error"], out)
	require.NoError(t, first.DeletePipeline(ctx, "broken"))

	// Created again under the same name: it starts afresh.
	code, out = send(t, "POST", api, "", js, strings.NewReader(spec), nil)
	require.Equal(t, http.StatusCreated, code, out)
	require.NoError(t, errors.Join(first.DeletePipeline(ctx, "list")))
}
