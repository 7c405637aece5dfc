package funcapp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fuzzSettings are the app settings the fuzz targets parse with.
var fuzzSettings = map[string]string{
	"PORT": "7071", "HUB": "telemetry", "ORDERS_OFF": "1", "AzureWebJobs.fn.Disabled": "false",
	"EH": "Endpoint=sb://ns/;EntityPath=hub",
}

// addSeeds adds every file of testdata/seeds/dir to f's corpus.
func addSeeds(f *testing.F, dir string, add func(data []byte)) {
	paths, err := filepath.Glob(filepath.Join("testdata", "seeds", dir, "*.json"))
	require.NoError(f, err)
	require.NotEmpty(f, paths)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(f, err)
		add(data)
	}
}

func FuzzParseHostJSON(f *testing.F) {
	addSeeds(f, "host", func(data []byte) { f.Add(data) })
	f.Add([]byte(minimalHost))
	f.Add([]byte("\xEF\xBB\xBF{/**/}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, warnings, errs := ParseHostJSON(data, fuzzSettings)
		for _, err := range errs {
			e, ok := err.(*Error)
			require.True(t, ok, "%T", err)
			require.Equal(t, "host.json", e.File)
			require.NotEmpty(t, e.Msg)
		}
		for _, w := range warnings {
			require.True(t, strings.HasPrefix(w, "host.json: "), w)
		}
		h2, _, errs2 := ParseHostJSON(data, fuzzSettings)
		require.Equal(t, len(errs), len(errs2), "deterministic")
		if len(errs) > 0 {
			return
		}
		require.Equal(t, h, h2, "deterministic")
		require.Equal(t, "2.0", h.Version)
		require.NotEmpty(t, strings.TrimSpace(h.Handler.Executable))
		require.NotNil(t, h.Handler.Arguments)
		require.True(t, h.FunctionTimeout == 0 || h.FunctionTimeout >= MinFunctionTimeout, h.FunctionTimeout)
		if h.Handler.Legacy {
			require.True(t, h.Handler.ForwardHTTP)
		}
		checkRetry(t, h.Retry)

		e := h.EventHubs
		require.GreaterOrEqual(t, e.MaxEventBatchSize, 1)
		require.GreaterOrEqual(t, e.MinEventBatchSize, 1)
		require.LessOrEqual(t, e.MinEventBatchSize, e.MaxEventBatchSize)
		require.True(t, e.MaxWaitTime >= 0 && e.MaxWaitTime <= MaxMaxWaitTime)
		require.GreaterOrEqual(t, e.BatchCheckpointFrequency, 1)
		require.GreaterOrEqual(t, e.PrefetchCount, 0)
		require.Contains(t, []string{OffsetFromStart, OffsetFromEnd, OffsetFromEnqueuedTime}, e.InitialOffset.Type)
		if e.InitialOffset.Type == OffsetFromEnqueuedTime {
			require.False(t, e.InitialOffset.EnqueuedTimeUTC.IsZero())
		}

		q := h.Queues
		require.GreaterOrEqual(t, q.MaxPollingInterval, MinMaxPollingInterval)
		require.GreaterOrEqual(t, q.VisibilityTimeout, time.Duration(0))
		require.True(t, q.BatchSize >= 1 && q.BatchSize <= MaxQueueBatchSize)
		require.GreaterOrEqual(t, q.NewBatchThreshold, -1)
		require.GreaterOrEqual(t, q.NewBatchThresholdFor(4), 0)
		require.GreaterOrEqual(t, q.MaxDequeueCount, 1)
		require.Contains(t, []string{EncodingBase64, EncodingNone}, q.MessageEncoding)
		require.Contains(t, []string{"", "Gateway", "Direct"}, h.CosmosDB.ConnectionMode)
		require.False(t, strings.HasPrefix(h.HTTP.RoutePrefix, "/") || strings.HasSuffix(h.HTTP.RoutePrefix, "/"))
		for name, p := range h.Breakers {
			require.True(t, name == BreakerDefault || validFunctionName(name), name)
			require.NoError(t, p.Validate(), name)
		}
	})
}

func FuzzParseFunctionJSON(f *testing.F) {
	addSeeds(f, "function", func(data []byte) { f.Add("fn", data) })
	f.Add("Orders-2", []byte(`{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "%HUB%"}]}`))
	f.Add("host", []byte(`{"bindings": []}`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		fn, warnings, errs := ParseFunctionJSON(name, data, fuzzSettings)
		for _, err := range errs {
			e, ok := err.(*Error)
			require.True(t, ok, "%T", err)
			require.Equal(t, name+"/function.json", e.File)
			require.NotEmpty(t, e.Msg)
		}
		for _, w := range warnings {
			require.True(t, strings.HasPrefix(w, name+"/function.json: "), w)
		}
		fn2, _, errs2 := ParseFunctionJSON(name, data, fuzzSettings)
		require.Equal(t, len(errs), len(errs2), "deterministic")
		if len(errs) > 0 {
			return
		}
		require.Equal(t, fn, fn2, "deterministic")
		checkFunction(t, name, fn)
	})
}

// checkFunction asserts that a function parsed without errors is
// self-consistent.
func checkFunction(t *testing.T, name string, fn Function) {
	require.True(t, validFunctionName(name))
	require.Equal(t, name, fn.Name)
	checkRetry(t, fn.Retry)

	triggers := 0
	names := map[string]bool{}
	inputs, outputs := 0, 0
	for i := range fn.Bindings {
		b := fn.Bindings[i]
		require.NotEmpty(t, canonicalType(b.Type))
		require.Equal(t, canonicalType(b.Type), b.Type)
		require.Contains(t, directions[b.Type], b.Direction)
		require.True(t, b.Name == ReturnName || validBindingName(b.Name), b.Name)
		if b.Name == ReturnName {
			require.Equal(t, DirectionOut, b.Direction)
		}
		require.False(t, names[strings.ToLower(b.Name)], "duplicate name %q", b.Name)
		names[strings.ToLower(b.Name)] = true
		require.Contains(t, []string{"", DataTypeString, DataTypeBinary, DataTypeStream}, b.DataType)
		require.NotNil(t, b.Raw)
		if b.IsTrigger() {
			triggers++
			require.Same(t, &fn.Bindings[i], fn.Trigger)
		} else {
			if b.Direction != DirectionOut {
				inputs++
			}
			if b.Direction != DirectionIn {
				outputs++
			}
		}
		switch b.Type {
		case TypeEventHubTrigger:
			require.NotEmpty(t, b.ConsumerGroup)
			require.Contains(t, []string{CardinalityOne, CardinalityMany}, b.Cardinality)
			fallthrough
		case TypeEventHub:
			require.NotEmpty(t, strings.TrimSpace(b.EventHubName))
		case TypeQueueTrigger:
			require.Empty(t, checkQueueName(b.QueueName))
		case TypeQueue:
			require.NotEmpty(t, strings.TrimSpace(b.QueueName))
		case TypeCosmosDBTrigger:
			require.NotEmpty(t, b.LeaseContainerName)
			require.NotEmpty(t, b.LeaseDatabaseName)
			require.False(t, b.StartFromBeginning && !b.StartFromTime.IsZero())
			require.GreaterOrEqual(t, b.FeedPollDelay, time.Duration(0))
			fallthrough
		case TypeCosmosDB:
			require.NotEmpty(t, strings.TrimSpace(b.DatabaseName))
			require.NotEmpty(t, strings.TrimSpace(b.ContainerName))
			require.GreaterOrEqual(t, b.MaxItemsPerInvocation, 0)
		case TypeBlobTrigger:
			require.Contains(t, []string{BlobSourcePolling, BlobSourceEventGrid}, b.Source)
			fallthrough
		case TypeBlob:
			require.NotEmpty(t, strings.TrimSpace(b.Path))
		case TypeTimerTrigger:
			require.NotEmpty(t, b.Schedule)
		case TypeHTTPTrigger:
			require.Contains(t, []string{AuthAnonymous, AuthFunction, AuthAdmin}, b.AuthLevel)
			require.NotEmpty(t, b.Route)
			for _, m := range b.Methods {
				require.Contains(t, httpMethods, m)
			}
			require.Equal(t, len(b.Methods), len(slices.Compact(slices.Sorted(slices.Values(b.Methods)))))
		}
	}
	require.Equal(t, 1, triggers, "exactly one trigger")
	require.Len(t, fn.Inputs, inputs)
	require.Len(t, fn.Outputs, outputs)
	if fn.IsHTTPOnly() {
		require.Equal(t, TypeHTTPTrigger, fn.Trigger.Type)
	}
}

func checkRetry(t *testing.T, r *Retry) {
	if r == nil {
		return
	}
	require.Contains(t, []string{RetryFixedDelay, RetryExponentialBackoff}, r.Strategy)
	require.GreaterOrEqual(t, r.MaxRetryCount, RetryForever)
	require.GreaterOrEqual(t, r.DelayInterval, time.Duration(0))
	require.LessOrEqual(t, r.MinimumInterval, r.MaximumInterval)
}
