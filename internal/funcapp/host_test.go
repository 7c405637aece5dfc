package funcapp

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hostWith returns a valid host.json with extra top-level members.
func hostWith(extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}` + extra + `}`
}

func TestHostValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, doc, field, msg string
	}{
		{"syntax error", "{\n\"version\": \"2.0\",\n}}", "", "invalid JSON at line 3, column 2: unexpected content after the end of the JSON value"},
		{"not an object", `"2.0"`, "", `must hold a JSON object`},
		{"version a number", `{"version": 2.0, "customHandler": {"description": {"defaultExecutablePath": "h"}}}`, "version", "must be a string, not the number 2.0"},
		{"customHandler not an object", `{"version": "2.0", "customHandler": "handler"}`, "customHandler", `must be an object, not the string "handler"`},
		{"arguments not strings", `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "h", "arguments": [1]}}}`,
			"customHandler.description.arguments[0]", "must be a string"},
		{"forwarding not a bool", `{"version": "2.0", "customHandler": {"enableForwardingHttpRequest": "on", "description": {"defaultExecutablePath": "h"}}}`,
			"customHandler.enableForwardingHttpRequest", "must be true or false"},
		{"timeout not a TimeSpan", hostWith(`"functionTimeout": "5m"`), "functionTimeout", `"5m" is not a TimeSpan`},
		{"timeout a number", hostWith(`"functionTimeout": 300`), "functionTimeout", "must be a string, not the number 300"},
		{"timeout too short", hostWith(`"functionTimeout": "00:00:00.5"`), "functionTimeout", "too short"},
		{"timeout negative", hostWith(`"functionTimeout": "-00:05:00"`), "functionTimeout", "it is negative"},
		{"retry", hostWith(`"retry": {"strategy": "fixedDelay", "maxRetryCount": 2}`), "retry.delayInterval", "missing"},
		{"extensions not an object", hostWith(`"extensions": []`), "extensions", "must be an object"},
		{"maxEventBatchSize", hostWith(`"extensions": {"eventHubs": {"maxEventBatchSize": 0}}`), "extensions.eventHubs.maxEventBatchSize", "0 is out of range; it must be at least 1"},
		{"targetUnprocessedEventThreshold", hostWith(`"extensions": {"eventHubs": {"targetUnprocessedEventThreshold": 0}}`), "extensions.eventHubs.targetUnprocessedEventThreshold", "0 is out of range; it must be at least 1"},
		{"legacy maxBatchSize", hostWith(`"extensions": {"eventHubs": {"eventProcessorOptions": {"maxBatchSize": 0}}}`), "extensions.eventHubs.eventProcessorOptions.maxBatchSize", "out of range"},
		{"min above max", hostWith(`"extensions": {"eventHubs": {"maxEventBatchSize": 10, "minEventBatchSize": 11}}`), "extensions.eventHubs.minEventBatchSize", "11 is more than maxEventBatchSize 10"},
		{"min above default max", hostWith(`"extensions": {"eventHubs": {"minEventBatchSize": 101}}`), "extensions.eventHubs.minEventBatchSize", "more than maxEventBatchSize 100"},
		{"maxWaitTime", hostWith(`"extensions": {"eventHubs": {"maxWaitTime": "00:10:01"}}`), "extensions.eventHubs.maxWaitTime", "longer than the limit of 00:10:00"},
		{"batchCheckpointFrequency", hostWith(`"extensions": {"eventHubs": {"batchCheckpointFrequency": 0}}`), "extensions.eventHubs.batchCheckpointFrequency", "out of range"},
		{"prefetchCount", hostWith(`"extensions": {"eventHubs": {"prefetchCount": -1}}`), "extensions.eventHubs.prefetchCount", "out of range"},
		{"offset type", hostWith(`"extensions": {"eventHubs": {"initialOffsetOptions": {"type": "fromMiddle"}}}`), "extensions.eventHubs.initialOffsetOptions.type", `"fromMiddle" is not an initial offset`},
		{"offset time missing", hostWith(`"extensions": {"eventHubs": {"initialOffsetOptions": {"type": "fromEnqueuedTime"}}}`), "extensions.eventHubs.initialOffsetOptions.enqueuedTimeUtc", "missing"},
		{"offset time bad", hostWith(`"extensions": {"eventHubs": {"initialOffsetOptions": {"type": "fromEnqueuedTime", "enqueuedTimeUtc": "noon"}}}`), "extensions.eventHubs.initialOffsetOptions.enqueuedTimeUtc", `"noon" is not a time`},
		{"polling too fast", hostWith(`"extensions": {"queues": {"maxPollingInterval": "00:00:00.05"}}`), "extensions.queues.maxPollingInterval", "too short"},
		{"batchSize", hostWith(`"extensions": {"queues": {"batchSize": 33}}`), "extensions.queues.batchSize", "33 is out of range; it must be between 1 and 32"},
		{"maxDequeueCount", hostWith(`"extensions": {"queues": {"maxDequeueCount": 0}}`), "extensions.queues.maxDequeueCount", "out of range"},
		{"newBatchThreshold", hostWith(`"extensions": {"queues": {"newBatchThreshold": -1}}`), "extensions.queues.newBatchThreshold", "out of range"},
		{"messageEncoding", hostWith(`"extensions": {"queues": {"messageEncoding": "utf8"}}`), "extensions.queues.messageEncoding", `"utf8" is not a message encoding`},
		{"visibilityTimeout", hostWith(`"extensions": {"queues": {"visibilityTimeout": "soon"}}`), "extensions.queues.visibilityTimeout", "not a TimeSpan"},
		{"connectionMode", hostWith(`"extensions": {"cosmosDB": {"connectionMode": "Fast"}}`), "extensions.cosmosDB.connectionMode", `"Fast" is not a connection mode`},
		{"routePrefix", hostWith(`"extensions": {"http": {"routePrefix": 1}}`), "extensions.http.routePrefix", "must be a string"},
		{"functions", hostWith(`"functions": "a"`), "functions", "must be an array of strings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, errs := ParseHostJSON([]byte(c.doc), nil)
			var found *Error
			for _, err := range errs {
				e := err.(*Error)
				require.Equal(t, "host.json", e.File)
				if e.Field == c.field && found == nil {
					found = e
				}
			}
			require.NotNil(t, found, "no error on %q; got %v", c.field, errs)
			require.Contains(t, found.Msg, c.msg)
		})
	}
}

func TestHostParsing(t *testing.T) {
	t.Parallel()
	parse := func(doc string) Host {
		t.Helper()
		h, _, errs := ParseHostJSON([]byte(doc), map[string]string{"EXE": "handler.bin"})
		require.Empty(t, errs)
		return h
	}
	require.Equal(t, time.Duration(0), parse(hostWith(`"functionTimeout": "-1"`)).FunctionTimeout)
	require.Equal(t, time.Duration(0), parse(hostWith(`"functionTimeout": null`)).FunctionTimeout)
	require.Equal(t, 2*time.Hour, parse(hostWith(`"functionTimeout": "02:00:00"`)).FunctionTimeout)
	require.Equal(t, DefaultFunctionTimeout, parse(hostWith(``)).FunctionTimeout)
	require.Equal(t, "", parse(hostWith(`"extensions": {"http": {"routePrefix": ""}}`)).HTTP.RoutePrefix)

	// The 3.x Event Hubs names are read, and the new ones win.
	h := parse(hostWith(`"extensions": {"eventHubs": {"maxEventBatchSize": 7, "eventProcessorOptions": {"maxBatchSize": 64, "prefetchCount": 20}}}`))
	require.Equal(t, 7, h.EventHubs.MaxEventBatchSize)
	require.Zero(t, h.EventHubs.TargetUnprocessedEventThreshold, "not set: the runner leaves the default, maxEventBatchSize")
	require.Equal(t, 20, h.EventHubs.PrefetchCount)

	// Times without a zone are UTC.
	h = parse(hostWith(`"extensions": {"eventHubs": {"initialOffsetOptions": {"type": "FromEnqueuedTime", "enqueuedTimeUtc": "2024-03-01 12:30:00"}}}`))
	require.Equal(t, InitialOffset{Type: OffsetFromEnqueuedTime, EnqueuedTimeUTC: time.Date(2024, 3, 1, 12, 30, 0, 0, time.UTC)}, h.EventHubs.InitialOffset)

	// Settings expand in the executable path; a retry without strategy is
	// exponential backoff, as in Azure.
	h = parse(`{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "bin/%EXE%"}},
		"retry": {"maxRetryCount": 2, "minimumInterval": "00:00:01", "maximumInterval": "00:01:00"}}`)
	require.Equal(t, "bin/handler.bin", h.Handler.Executable)
	require.Equal(t, &Retry{Strategy: RetryExponentialBackoff, MaxRetryCount: 2, MinimumInterval: time.Second, MaximumInterval: time.Minute}, h.Retry)

	// Python's strategy spelling.
	h = parse(hostWith(`"retry": {"strategy": "FIXED_DELAY", "maxRetryCount": 0, "delayInterval": "00:00:01"}`))
	require.Equal(t, RetryFixedDelay, h.Retry.Strategy)
}

func TestHostMultipleErrors(t *testing.T) {
	t.Parallel()
	_, _, errs := ParseHostJSON([]byte(`{"version": "3.0", "functionTimeout": "x",
		"extensions": {"queues": {"batchSize": 0, "maxDequeueCount": 0}}}`), nil)
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.(*Error).Field)
	}
	require.Equal(t, []string{"version", "customHandler", "functionTimeout", "extensions.queues.batchSize", "extensions.queues.maxDequeueCount"}, fields)
}

func TestRelax(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`{"a": 1, // c` + "\n" + `}`: `{"a": 1      ` + "\n" + `}`,
		`{"a": "//not a comment",}`:  `{"a": "//not a comment" }`,
		`[1, /* x */ 2,]`:            `[1,         2 ]`,
		`{"a": "\"/*", "b": [ , ]}`:  `{"a": "\"/*", "b": [ , ]}`,
		"/* a\nb */{}":               "    \n    {}",
		`{"x": "a\\"}// end`:         `{"x": "a\\"}      `,
		`[1,,]`:                      `[1,,]`,
		`{"unterminated": 1 /* `:     `{"unterminated": 1 /* `,
		"\xEF\xBB\xBF{}":             "{}",
		`{"s": "tab,` + "\t" + `]"}`: `{"s": "tab,` + "\t" + `]"}`,
	}
	for in, want := range cases {
		require.Equal(t, want, string(relax([]byte(in))), in)
		require.Equal(t, len(strings.TrimPrefix(in, "\xEF\xBB\xBF")), len(relax([]byte(in))))
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	settings := map[string]string{"A": "1", "b": "2", "Path.With:Odd-Chars_1": "3"}
	cases := []struct {
		in, out string
		missing []string
	}{
		{"plain", "plain", nil},
		{"%A%", "1", nil},
		{"x-%A%-%B%", "x-1-2", nil},
		{"%Path.With:Odd-Chars_1%", "3", nil},
		{"{queueTrigger}-%A%", "{queueTrigger}-1", nil},
		{"50% off, 20% more", "50% off, 20% more", nil},
		{"LIKE '%abc' AND %A%", "LIKE '%abc' AND 1", nil},
		{"%%", "%%", nil},
		{"%NOPE% and %A%", "%NOPE% and 1", []string{"NOPE"}},
		{"100%", "100%", nil},
	}
	for _, c := range cases {
		out, missing := expand(c.in, settings)
		require.Equal(t, c.out, out, c.in)
		require.Equal(t, c.missing, missing, c.in)
	}
}
