package funcapp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The app of TestLoadCompleteApp: one function per trigger type, and every
// output type, with most settings written out.
var completeApp = map[string]string{
	"host.json": `{
  "version": "2.0",
  "logging": {"logLevel": {"default": "Information"}},
  "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
  "functionTimeout": "00:10:00",
  "retry": {"strategy": "fixedDelay", "maxRetryCount": 3, "delayInterval": "00:00:05"},
  "customHandler": {
    "description": {"defaultExecutablePath": "handler", "arguments": ["--mode", "%MODE%"], "workingDirectory": ""},
    "enableForwardingHttpRequest": true
  },
  "extensions": {
    "http": {"routePrefix": "/v1/"},
    "eventHubs": {
      "maxEventBatchSize": 50, "minEventBatchSize": 10, "maxWaitTime": "00:00:30",
      "batchCheckpointFrequency": 2, "prefetchCount": 500, "targetUnprocessedEventThreshold": 400,
      "initialOffsetOptions": {"type": "fromEnqueuedTime", "enqueuedTimeUtc": "2024-01-31T08:00:00Z"}
    },
    "queues": {
      "maxPollingInterval": "00:00:02", "visibilityTimeout": "00:00:30", "batchSize": 8,
      "maxDequeueCount": 3, "newBatchThreshold": 4, "messageEncoding": "none"
    },
    "cosmosDB": {"connectionMode": "direct", "userAgentSuffix": "sluice"}
  }
}`,
	"local.settings.json": `{
  "IsEncrypted": false,
  "Values": {"FUNCTIONS_WORKER_RUNTIME": "custom", "MODE": "fast", "HUB": "telemetry", "EH": "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=s"}
}`,
	"hub/function.json": `{
  "bindings": [
    {"type": "eventHubTrigger", "direction": "in", "name": "events", "eventHubName": "%HUB%",
     "consumerGroup": "sluice", "cardinality": "many", "connection": "EH", "dataType": "string"},
    {"type": "eventHub", "direction": "out", "name": "forward", "eventHubName": "archive", "connection": "EH"},
    {"type": "cosmosDB", "direction": "out", "name": "doc", "databaseName": "db", "containerName": "readings",
     "createIfNotExists": true, "partitionKey": "/device", "connection": "Cosmos"}
  ],
  "retry": {"strategy": "exponentialBackoff", "maxRetryCount": -1, "minimumInterval": "00:00:01", "maximumInterval": "00:05:00"}
}`,
	"orders/function.json": `{
  "scriptFile": "handler",
  "bindings": [
    {"type": "queueTrigger", "direction": "in", "name": "order", "queueName": "Orders", "connection": "Storage"},
    {"type": "queue", "direction": "out", "name": "$return", "queueName": "shipments-{queueTrigger}"}
  ]
}`,
	"feed/function.json": `{
  "bindings": [
    {"type": "cosmosDBTrigger", "direction": "in", "name": "documents", "connection": "Cosmos",
     "databaseName": "db", "containerName": "orders", "leaseContainerName": "locks", "leaseContainerPrefix": "feed-",
     "createLeaseContainerIfNotExists": true, "maxItemsPerInvocation": 100, "startFromTime": "2024-02-01T00:00:00Z",
     "feedPollDelay": 1000, "leaseAcquireInterval": 2000, "leaseExpirationInterval": 30000, "leaseRenewInterval": 9000,
     "leasesContainerThroughput": 400, "preferredLocations": "West Europe, North Europe"},
    {"type": "blob", "direction": "out", "name": "copy", "path": "archive/{rand-guid}.json", "dataType": "binary"}
  ]
}`,
	"uploads/function.json": `{
  "bindings": [
    {"type": "blobTrigger", "direction": "in", "name": "file", "path": "uploads/{name}", "source": "eventgrid", "connection": "Storage"},
    {"type": "cosmosDB", "direction": "in", "name": "meta", "databaseName": "db", "collectionName": "files",
     "id": "{name}", "partitionKey": "{name}", "connectionStringSetting": "Cosmos"},
    {"type": "blob", "direction": "in", "name": "template", "path": "templates/default.txt"}
  ]
}`,
	"tick/function.json": `{
  "bindings": [
    {"type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "0 */5 * * * *", "runOnStartup": true, "useMonitor": false}
  ]
}`,
	"api/function.json": `{
  "bindings": [
    {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "methods": ["get", "Post"], "route": "items/{id}"},
    {"type": "http", "direction": "out", "name": "res"}
  ]
}`,
	"notes/README.md": "not a function folder",
}

func TestLoadCompleteApp(t *testing.T) {
	t.Parallel()
	root := writeApp(t, completeApp)
	app := mustLoad(t, root, Options{})

	require.Equal(t, root, app.Root)
	require.Equal(t, Host{
		Version: "2.0",
		Handler: Handler{
			Executable:  filepath.Join(root, "handler"),
			Arguments:   []string{"--mode", "fast"},
			WorkingDir:  root,
			ForwardHTTP: true,
		},
		FunctionTimeout: 10 * time.Minute,
		Retry:           &Retry{Strategy: RetryFixedDelay, MaxRetryCount: 3, DelayInterval: 5 * time.Second},
		EventHubs: EventHubs{
			MaxEventBatchSize: 50, MinEventBatchSize: 10, MaxWaitTime: 30 * time.Second,
			BatchCheckpointFrequency: 2, PrefetchCount: 500, TargetUnprocessedEventThreshold: 400,
			InitialOffset: InitialOffset{Type: OffsetFromEnqueuedTime, EnqueuedTimeUTC: time.Date(2024, 1, 31, 8, 0, 0, 0, time.UTC)},
		},
		Queues: Queues{
			MaxPollingInterval: 2 * time.Second, VisibilityTimeout: 30 * time.Second, BatchSize: 8,
			NewBatchThreshold: 4, MaxDequeueCount: 3, MessageEncoding: EncodingNone,
		},
		CosmosDB: CosmosDB{ConnectionMode: "Direct", UserAgentSuffix: "sluice"},
		HTTP:     HTTP{RoutePrefix: "v1"},
	}, app.Host)
	require.Equal(t, map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom", "MODE": "fast", "HUB": "telemetry",
		"EH": "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=s",
	}, app.Settings)
	require.Empty(t, app.Warnings)

	names := []string{}
	for _, f := range app.Functions {
		names = append(names, f.Name)
	}
	require.Equal(t, []string{"api", "feed", "hub", "orders", "tick", "uploads"}, names)

	check := func(name string, raws []string, want Function) {
		t.Helper()
		f, ok := app.Function(name)
		require.True(t, ok, name)
		require.Len(t, f.Bindings, len(raws))
		for i := range f.Bindings {
			requireRaw(t, raws[i], &f.Bindings[i])
		}
		want.Name, want.Dir = name, filepath.Join(root, name)
		// Trigger, Inputs and Outputs are checked against Bindings.
		require.Same(t, &f.Bindings[0], f.Trigger)
		want.Trigger = &want.Bindings[0]
		for i := range f.Inputs {
			f.Inputs[i].Raw = nil
		}
		for i := range f.Outputs {
			f.Outputs[i].Raw = nil
		}
		require.Equal(t, want, f, name)
	}

	check("hub", []string{
		`{"type": "eventHubTrigger", "direction": "in", "name": "events", "eventHubName": "telemetry",
		  "consumerGroup": "sluice", "cardinality": "many", "connection": "EH", "dataType": "string"}`,
		`{"type": "eventHub", "direction": "out", "name": "forward", "eventHubName": "archive", "connection": "EH"}`,
		`{"type": "cosmosDB", "direction": "out", "name": "doc", "databaseName": "db", "containerName": "readings",
		  "createIfNotExists": true, "partitionKey": "/device", "connection": "Cosmos"}`,
	}, Function{
		Retry: &Retry{Strategy: RetryExponentialBackoff, MaxRetryCount: RetryForever, MinimumInterval: time.Second, MaximumInterval: 5 * time.Minute},
		Bindings: []Binding{
			{Type: TypeEventHubTrigger, Direction: DirectionIn, Name: "events", DataType: DataTypeString, Connection: "EH",
				EventHubName: "telemetry", ConsumerGroup: "sluice", Cardinality: CardinalityMany},
			{Type: TypeEventHub, Direction: DirectionOut, Name: "forward", Connection: "EH", EventHubName: "archive"},
			{Type: TypeCosmosDB, Direction: DirectionOut, Name: "doc", Connection: "Cosmos", DatabaseName: "db",
				ContainerName: "readings", PartitionKey: "/device", CreateIfNotExists: true},
		},
		Outputs: []Binding{
			{Type: TypeEventHub, Direction: DirectionOut, Name: "forward", Connection: "EH", EventHubName: "archive"},
			{Type: TypeCosmosDB, Direction: DirectionOut, Name: "doc", Connection: "Cosmos", DatabaseName: "db",
				ContainerName: "readings", PartitionKey: "/device", CreateIfNotExists: true},
		},
	})

	check("orders", []string{
		`{"type": "queueTrigger", "direction": "in", "name": "order", "queueName": "Orders", "connection": "Storage"}`,
		`{"type": "queue", "direction": "out", "name": "$return", "queueName": "shipments-{queueTrigger}"}`,
	}, Function{
		Bindings: []Binding{
			{Type: TypeQueueTrigger, Direction: DirectionIn, Name: "order", Connection: "Storage", QueueName: "orders"},
			{Type: TypeQueue, Direction: DirectionOut, Name: "$return", QueueName: "shipments-{queueTrigger}"},
		},
		Outputs: []Binding{{Type: TypeQueue, Direction: DirectionOut, Name: "$return", QueueName: "shipments-{queueTrigger}"}},
	})

	feedTrigger := Binding{
		Type: TypeCosmosDBTrigger, Direction: DirectionIn, Name: "documents", Connection: "Cosmos",
		DatabaseName: "db", ContainerName: "orders",
		LeaseConnection: "Cosmos", LeaseDatabaseName: "db", LeaseContainerName: "locks", LeaseContainerPrefix: "feed-",
		CreateLeaseContainerIfNotExists: true, LeasesContainerThroughput: 400, MaxItemsPerInvocation: 100,
		StartFromTime: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC),
		FeedPollDelay: time.Second, LeaseAcquireInterval: 2 * time.Second, LeaseExpirationInterval: 30 * time.Second,
		LeaseRenewInterval: 9 * time.Second, PreferredLocations: []string{"West Europe", "North Europe"},
	}
	blobOut := Binding{Type: TypeBlob, Direction: DirectionOut, Name: "copy", DataType: DataTypeBinary, Path: "archive/{rand-guid}.json"}
	check("feed", []string{
		`{"type": "cosmosDBTrigger", "direction": "in", "name": "documents", "connection": "Cosmos",
		  "databaseName": "db", "containerName": "orders", "leaseContainerName": "locks", "leaseContainerPrefix": "feed-",
		  "createLeaseContainerIfNotExists": true, "maxItemsPerInvocation": 100, "startFromTime": "2024-02-01T00:00:00Z",
		  "feedPollDelay": 1000, "leaseAcquireInterval": 2000, "leaseExpirationInterval": 30000, "leaseRenewInterval": 9000,
		  "leasesContainerThroughput": 400, "preferredLocations": "West Europe, North Europe"}`,
		`{"type": "blob", "direction": "out", "name": "copy", "path": "archive/{rand-guid}.json", "dataType": "binary"}`,
	}, Function{Bindings: []Binding{feedTrigger, blobOut}, Outputs: []Binding{blobOut}})

	meta := Binding{Type: TypeCosmosDB, Direction: DirectionIn, Name: "meta", Connection: "Cosmos", DatabaseName: "db",
		ContainerName: "files", ID: "{name}", PartitionKey: "{name}"}
	template := Binding{Type: TypeBlob, Direction: DirectionIn, Name: "template", Path: "templates/default.txt"}
	check("uploads", []string{
		`{"type": "blobTrigger", "direction": "in", "name": "file", "path": "uploads/{name}", "source": "eventgrid", "connection": "Storage"}`,
		`{"type": "cosmosDB", "direction": "in", "name": "meta", "databaseName": "db", "collectionName": "files",
		  "id": "{name}", "partitionKey": "{name}", "connectionStringSetting": "Cosmos"}`,
		`{"type": "blob", "direction": "in", "name": "template", "path": "templates/default.txt"}`,
	}, Function{
		Bindings: []Binding{
			{Type: TypeBlobTrigger, Direction: DirectionIn, Name: "file", Connection: "Storage", Path: "uploads/{name}", Source: BlobSourceEventGrid},
			meta, template,
		},
		Inputs: []Binding{meta, template},
	})

	check("tick", []string{
		`{"type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "0 */5 * * * *", "runOnStartup": true, "useMonitor": false}`,
	}, Function{Bindings: []Binding{
		{Type: TypeTimerTrigger, Direction: DirectionIn, Name: "timer", Schedule: "0 */5 * * * *", RunOnStartup: true, UseMonitor: ptr(false)},
	}})

	res := Binding{Type: TypeHTTP, Direction: DirectionOut, Name: "res"}
	check("api", []string{
		`{"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "methods": ["get", "Post"], "route": "items/{id}"}`,
		`{"type": "http", "direction": "out", "name": "res"}`,
	}, Function{
		Bindings: []Binding{
			{Type: TypeHTTPTrigger, Direction: DirectionIn, Name: "req", AuthLevel: AuthAnonymous, Methods: []string{"GET", "POST"}, Route: "items/{id}"},
			res,
		},
		Outputs: []Binding{res},
	})

	api, _ := app.Function("API")
	require.True(t, api.IsHTTPOnly())
	hub, _ := app.Function("hub")
	require.False(t, hub.IsHTTPOnly())
	require.True(t, hub.Trigger.IsTrigger())
	require.False(t, hub.Bindings[1].IsTrigger())

	// Retry: the function's own wins, the host's applies to the rest that
	// take retries, and queue and HTTP triggers take none.
	require.Equal(t, hub.Retry, hub.EffectiveRetry(app.Host))
	tick, _ := app.Function("tick")
	require.Equal(t, app.Host.Retry, tick.EffectiveRetry(app.Host))
	orders, _ := app.Function("orders")
	require.Nil(t, orders.EffectiveRetry(app.Host))
	require.Nil(t, api.EffectiveRetry(app.Host))
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	root := writeApp(t, map[string]string{
		"host.json": minimalHost,
		"a/function.json": `{"bindings": [
			{"type": "eventHubTrigger", "direction": "in", "name": "e", "eventHubName": "h"}]}`,
		"b/function.json": `{"bindings": [
			{"type": "cosmosDBTrigger", "direction": "in", "name": "d", "databaseName": "db", "containerName": "c", "connection": "C"}]}`,
		"c/function.json": `{"bindings": [
			{"type": "httpTrigger", "direction": "in", "name": "req"}, {"type": "http", "direction": "out", "name": "$return"}]}`,
		"d/function.json": `{"bindings": [{"type": "blobTrigger", "direction": "in", "name": "b", "path": "in"}]}`,
		"e/function.json": `{"bindings": [{"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "00:05:00"}]}`,
	})
	app := mustLoad(t, root, Options{})
	require.Equal(t, Host{
		Version:         "2.0",
		Handler:         Handler{Executable: filepath.Join(root, "handler"), Arguments: []string{}, WorkingDir: root},
		FunctionTimeout: 30 * time.Minute,
		EventHubs: EventHubs{MaxEventBatchSize: 100, MinEventBatchSize: 1, MaxWaitTime: time.Minute,
			BatchCheckpointFrequency: 1, PrefetchCount: 300, InitialOffset: InitialOffset{Type: OffsetFromStart}},
		Queues: Queues{MaxPollingInterval: time.Minute, BatchSize: 16, NewBatchThreshold: -1,
			MaxDequeueCount: 5, MessageEncoding: EncodingBase64},
		HTTP: HTTP{RoutePrefix: "api"},
	}, app.Host)
	require.Equal(t, 8, app.Host.Queues.NewBatchThresholdFor(1))
	require.Equal(t, 32, app.Host.Queues.NewBatchThresholdFor(4))

	trigger := func(name string) Binding {
		f, ok := app.Function(name)
		require.True(t, ok)
		b := *f.Trigger
		b.Raw = nil
		return b
	}
	require.Equal(t, Binding{Type: TypeEventHubTrigger, Direction: DirectionIn, Name: "e", EventHubName: "h",
		ConsumerGroup: "$Default", Cardinality: CardinalityOne}, trigger("a"))
	require.Equal(t, Binding{Type: TypeCosmosDBTrigger, Direction: DirectionIn, Name: "d", Connection: "C",
		DatabaseName: "db", ContainerName: "c", LeaseConnection: "C", LeaseDatabaseName: "db", LeaseContainerName: "leases",
		FeedPollDelay: 5 * time.Second, LeaseAcquireInterval: 13 * time.Second, LeaseExpirationInterval: time.Minute,
		LeaseRenewInterval: 17 * time.Second}, trigger("b"))
	require.Equal(t, Binding{Type: TypeHTTPTrigger, Direction: DirectionIn, Name: "req", AuthLevel: AuthFunction, Route: "c"}, trigger("c"))
	require.Equal(t, Binding{Type: TypeBlobTrigger, Direction: DirectionIn, Name: "b", Path: "in", Source: BlobSourcePolling}, trigger("d"))
	require.Equal(t, Binding{Type: TypeTimerTrigger, Direction: DirectionIn, Name: "t", Schedule: "00:05:00"}, trigger("e"))
	c, _ := app.Function("c")
	require.True(t, c.IsHTTPOnly())
	require.False(t, c.Disabled)
	require.Nil(t, c.Retry)
}

func TestSettingsFromLocalFileAndEnv(t *testing.T) {
	t.Parallel()
	root := writeApp(t, map[string]string{
		"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler", "arguments": ["%Port%"]}}}`,
		"local.settings.json": `{"IsEncrypted": false, "Values": {"QUEUE": "from-file", "PORT": "1", "ONLY_FILE": "x", "N": 5, "B": true},
			"Host": {"LocalHttpPort": 7071}, "ConnectionStrings": {}}`,
		"q/function.json": `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "%QUEUE%"},
			{"type": "queue", "direction": "out", "name": "o", "queueName": "%queue%-out"}]}`,
	})
	app := mustLoad(t, root, Options{Env: map[string]string{"QUEUE": "from-env", "PATH": "/bin"}})
	require.Equal(t, map[string]string{"QUEUE": "from-env", "PORT": "1", "ONLY_FILE": "x", "N": "5", "B": "true", "PATH": "/bin"}, app.Settings)
	require.Equal(t, []string{"B=true", "N=5", "ONLY_FILE=x", "PATH=/bin", "PORT=1", "QUEUE=from-env"}, app.Environ())
	q, _ := app.Function("q")
	require.Equal(t, "from-env", q.Trigger.QueueName, "the environment wins over local.settings.json")
	require.Equal(t, "from-env-out", q.Outputs[0].QueueName, "setting names match in any case")
	require.JSONEq(t, `"from-env"`, string(q.Trigger.Raw["queueName"]), "Raw holds expanded values")
	require.Equal(t, []string{"1"}, app.Host.Handler.Arguments)

	// Without local.settings.json, the environment alone.
	root2 := writeApp(t, map[string]string{
		"host.json":       minimalHost,
		"q/function.json": `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "%QUEUE%"}]}`,
	})
	app = mustLoad(t, root2, Options{Env: map[string]string{"QUEUE": "jobs"}})
	require.Equal(t, "jobs", app.Functions[0].Trigger.QueueName)
}

func TestLoadUsesProcessEnvironmentWhenEnvIsNil(t *testing.T) {
	t.Setenv("SLUICE_FUNCAPP_TEST_QUEUE", "from-process")
	root := writeApp(t, map[string]string{
		"host.json":       minimalHost,
		"q/function.json": `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "%SLUICE_FUNCAPP_TEST_QUEUE%"}]}`,
	})
	app, err := Load(root, Options{})
	require.NoError(t, err)
	require.Equal(t, "from-process", app.Functions[0].Trigger.QueueName)
}

func TestMissingSetting(t *testing.T) {
	t.Parallel()
	root := writeApp(t, map[string]string{
		"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler", "arguments": ["--port", "%NOPE%"]}}}`,
		"orders/function.json": `{"bindings": [
			{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "%ORDERS_QUEUE%"},
			{"type": "cosmosDB", "direction": "in", "name": "doc", "databaseName": "db", "containerName": "c",
			 "sqlQuery": "SELECT * FROM c WHERE c.name LIKE '%abc' AND c.x = {id}", "id": "%ID_SETTING%"}]}`,
	})
	app, err := load(t, root)
	require.Nil(t, app)
	e := findError(t, err, "orders/function.json", "bindings[0].queueName")
	require.Equal(t, `orders/function.json: bindings[0].queueName: app setting "ORDERS_QUEUE" is not set (the value refers to %ORDERS_QUEUE%); add it to Values in local.settings.json or to the environment`, e.Error())
	findError(t, err, "orders/function.json", "bindings[1].id")
	findError(t, err, "host.json", "customHandler.description.arguments[1]")
	require.Len(t, Errors(err), 3, "a lone percent sign in sqlQuery is text: %v", err)
}

func TestLegacyHTTPWorker(t *testing.T) {
	t.Parallel()
	fn := `{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req"}, {"type": "http", "direction": "out", "name": "res"}]}`
	root := writeApp(t, map[string]string{
		"host.json":         `{"version": "2.0", "httpWorker": {"description": {"defaultExecutablePath": "handler", "arguments": ["-v"]}}}`,
		"api/function.json": fn,
	})
	app := mustLoad(t, root, Options{})
	require.True(t, app.Host.Handler.Legacy)
	require.True(t, app.Host.Handler.ForwardHTTP, "httpWorker always forwards HTTP-only functions")
	require.Equal(t, []string{"-v"}, app.Host.Handler.Arguments)

	// customHandler wins when both are there.
	root = writeApp(t, map[string]string{
		"host.json": `{"version": "2.0",
			"httpWorker": {"description": {"defaultExecutablePath": "old"}},
			"customHandler": {"description": {"defaultExecutablePath": "handler"}}}`,
		"api/function.json": fn,
	})
	app = mustLoad(t, root, Options{})
	require.False(t, app.Host.Handler.Legacy)
	require.False(t, app.Host.Handler.ForwardHTTP)
	require.Equal(t, filepath.Join(root, "handler"), app.Host.Handler.Executable)
	require.Equal(t, []string{"host.json: httpWorker: ignored: customHandler wins when host.json has both, as on Azure"}, app.Warnings)

	// A legacy handler's problems name the httpWorker section.
	root = writeApp(t, map[string]string{
		"host.json":         `{"version": "2.0", "httpWorker": {"description": {"defaultExecutablePath": "missing-handler"}}}`,
		"api/function.json": fn,
	})
	_, err := load(t, root)
	findError(t, err, "host.json", "httpWorker.description.defaultExecutablePath")
}

func TestDisabled(t *testing.T) {
	t.Parallel()
	timer := func(extra string) string {
		return `{` + extra + `"bindings": [{"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "0 * * * * *"}]}`
	}
	root := writeApp(t, map[string]string{
		"host.json":                  minimalHost,
		"local.settings.json":        `{"Values": {"FLAG_ON": "1", "FLAG_OFF": "0", "AzureWebJobs.bySetting.Disabled": "true"}}`,
		"plain/function.json":        timer(``),
		"literal/function.json":      timer(`"disabled": true,`),
		"literalOff/function.json":   timer(`"disabled": false,`),
		"named/function.json":        timer(`"disabled": "FLAG_ON",`),
		"namedOff/function.json":     timer(`"disabled": "FLAG_OFF",`),
		"namedMissing/function.json": timer(`"disabled": "NO_SUCH_FLAG",`),
		"bySetting/function.json":    timer(``),
		"linux/function.json":        timer(``),
	})
	app := mustLoad(t, root, Options{Env: map[string]string{"AzureWebJobs_linux_Disabled": "TRUE"}})
	got := map[string]bool{}
	for _, f := range app.Functions {
		got[f.Name] = f.Disabled
	}
	require.Equal(t, map[string]bool{
		"plain": false, "literal": true, "literalOff": false, "named": true, "namedOff": false,
		"namedMissing": false, "bySetting": true, "linux": true,
	}, got)
}

func TestExecutable(t *testing.T) {
	t.Parallel()
	fn := `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "jobs"}]}`
	host := func(desc string) string {
		return `{"version": "2.0", "customHandler": {"description": {` + desc + `}}}`
	}
	field := "customHandler.description.defaultExecutablePath"

	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		root := writeApp(t, map[string]string{"handler": "", "host.json": minimalHost, "f/function.json": fn})
		_, err := load(t, root)
		e := findError(t, err, "host.json", field)
		require.Contains(t, e.Msg, `"handler" is neither in the app root nor an executable on PATH`)
	})
	t.Run("not executable", func(t *testing.T) {
		t.Parallel()
		root := writeApp(t, map[string]string{"host.json": host(`"defaultExecutablePath": "bin/handler.sh"`), "f/function.json": fn, "bin/handler.sh": "#!/bin/sh\n"})
		_, err := load(t, root)
		e := findError(t, err, "host.json", field)
		require.Equal(t, "bin/handler.sh is not executable; make it so (chmod +x handler.sh)", e.Msg)
	})
	t.Run("a directory", func(t *testing.T) {
		t.Parallel()
		root := writeApp(t, map[string]string{"host.json": host(`"defaultExecutablePath": "bin"`), "f/function.json": fn, "bin/x": ""})
		_, err := load(t, root)
		require.Equal(t, "bin is a directory, not an executable", findError(t, err, "host.json", field).Msg)
	})
	t.Run("relative path missing", func(t *testing.T) {
		t.Parallel()
		root := writeApp(t, map[string]string{"host.json": host(`"defaultExecutablePath": "bin/handler"`), "f/function.json": fn})
		_, err := load(t, root)
		require.Equal(t, `"bin/handler" is not in the app root; build the handler there or fix the path`, findError(t, err, "host.json", field).Msg)
	})
	t.Run("on PATH", func(t *testing.T) {
		t.Parallel()
		bin := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(bin, "python3"), []byte("#!/bin/sh\n"), 0o755))
		notExec := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(notExec, "python3"), []byte(""), 0o644))
		root := writeApp(t, map[string]string{
			"host.json":       host(`"defaultExecutablePath": "python3", "arguments": ["app.py"], "workingDirectory": "src"`),
			"f/function.json": fn, "src/app.py": "",
		})
		app := mustLoad(t, root, Options{Env: map[string]string{"PATH": "relative:" + notExec + ":" + bin}})
		require.Equal(t, filepath.Join(bin, "python3"), app.Host.Handler.Executable)
		require.Equal(t, filepath.Join(root, "src"), app.Host.Handler.WorkingDir)
		require.Equal(t, []string{"app.py"}, app.Host.Handler.Arguments)

		_, err := Load(root, Options{Env: map[string]string{"PATH": notExec}})
		require.Contains(t, findError(t, err, "host.json", field).Msg, `"python3" is neither in the app root or the working directory src nor an executable on PATH`)
	})
	t.Run("in the working directory", func(t *testing.T) {
		t.Parallel()
		root := writeApp(t, map[string]string{
			"handler":         "",
			"host.json":       host(`"defaultExecutablePath": "handler", "workingDirectory": "app", "defaultWorkerPath": "main.js", "workerArguments": ["--x"]`),
			"f/function.json": fn, "app/handler": "#!/bin/sh\n",
		})
		app := mustLoad(t, root, Options{})
		require.Equal(t, filepath.Join(root, "app", "handler"), app.Host.Handler.Executable)
		require.Equal(t, []string{"main.js", "--x"}, app.Host.Handler.Arguments)
	})
	t.Run("absolute", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		exe := filepath.Join(dir, "h")
		require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
		root := writeApp(t, map[string]string{"host.json": host(`"defaultExecutablePath": "` + exe + `"`), "f/function.json": fn})
		require.Equal(t, exe, mustLoad(t, root, Options{}).Host.Handler.Executable)
	})
	t.Run("working directory missing", func(t *testing.T) {
		t.Parallel()
		root := writeApp(t, map[string]string{"host.json": host(`"defaultExecutablePath": "handler", "workingDirectory": "nope"`), "f/function.json": fn})
		_, err := load(t, root)
		findError(t, err, "host.json", "customHandler.description.workingDirectory")
	})
}

func TestTimerScheduleCheck(t *testing.T) {
	t.Parallel()
	root := writeApp(t, map[string]string{
		"host.json":           minimalHost,
		"local.settings.json": `{"Values": {"SCHEDULE": "every minute"}}`,
		"tick/function.json": `{"bindings": [
			{"type": "queue", "direction": "out", "name": "o", "queueName": "out"},
			{"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "%SCHEDULE%"}]}`,
	})
	var checked []string
	check := func(expr string) error {
		checked = append(checked, expr)
		return errors.New("not a schedule")
	}
	_, err := Load(root, Options{Env: map[string]string{}, CheckSchedule: check})
	require.Equal(t, "tick/function.json: bindings[1].schedule: not a schedule", findError(t, err, "tick/function.json", "bindings[1].schedule").Error())
	require.Equal(t, []string{"every minute"}, checked)
}

func TestFunctionsFilterAndSkippedFolders(t *testing.T) {
	t.Parallel()
	fn := `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "jobs"}]}`
	root := writeApp(t, map[string]string{
		"host.json":          `{"version": "2.0", "functions": ["Keep", "gone"], "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`,
		"keep/function.json": fn,
		"drop/function.json": fn,
		"src/main.go":        "package main",
		".git/HEAD":          "ref",
	})
	app := mustLoad(t, root, Options{})
	require.Len(t, app.Functions, 1)
	require.Equal(t, "keep", app.Functions[0].Name)
	require.Equal(t, []string{"Keep", "gone"}, app.Host.Functions)
	require.Equal(t, []string{
		`drop/function.json: skipped: host.json's "functions" does not list it`,
		"host.json: functions: gone: no folder of that name holds a function.json",
	}, app.Warnings)
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	root := writeApp(t, map[string]string{
		"host.json": `{"version": "2.0", "healthMonitor": {"enabled": true}, "aggregator": {},
			"customHandler": {"description": {"defaultExecutablePath": "handler", "defaultRuntimeVersion": "1"}, "port": 5000},
			"extensions": {"serviceBus": {}, "queues": {"maxPollingInterval": "00:00:05", "foo": 1},
			  "eventHubs": {"eventProcessorOptions": {"maxBatchSize": 64, "prefetchCount": 10}, "transportType": "amqpWebSockets"}}}`,
		"local.settings.json": `{"Values": {}, "Extra": 1}`,
		"q/function.json": `{"generatedBy": "x", "comment": "hi",
			"retry": {"strategy": "fixedDelay", "maxRetryCount": 1, "delayInterval": "00:00:01"},
			"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "jobs", "dataType": "object"}]}`,
	})
	app := mustLoad(t, root, Options{})
	require.Equal(t, 64, app.Host.EventHubs.MaxEventBatchSize, "3.x name read")
	require.Equal(t, 10, app.Host.EventHubs.PrefetchCount)
	require.ElementsMatch(t, []string{
		"local.settings.json: Extra: not used by Sluice; ignored",
		"host.json: customHandler.description.defaultRuntimeVersion: not used by Sluice; ignored",
		"host.json: customHandler.port: not used by Sluice; ignored",
		"host.json: extensions.eventHubs.transportType: not used by Sluice; ignored",
		"host.json: extensions.queues.foo: not used by Sluice; ignored",
		"host.json: extensions.serviceBus: not used by Sluice; ignored",
		"host.json: aggregator: not used by Sluice; ignored",
		"host.json: healthMonitor: not used by Sluice; ignored",
		`q/function.json: bindings[0].dataType: "object" is not string, binary or stream; ignored, as Azure does`,
		"q/function.json: retry: ignored: Azure applies retry policies to timerTrigger, eventHubTrigger and cosmosDBTrigger functions only, not queueTrigger",
		"q/function.json: comment: not used by Sluice; ignored",
	}, app.Warnings)
}

func TestAppLevelErrors(t *testing.T) {
	t.Parallel()
	fn := `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "jobs"}]}`
	cases := []struct {
		name        string
		files       map[string]string
		file, field string
		msg         string
	}{
		{"no functions", map[string]string{"host.json": minimalHost, "empty/readme.txt": "x"}, "", "", "no functions: "},
		{"no host.json", map[string]string{"f/function.json": fn}, "host.json", "", "missing; an app folder needs a host.json"},
		{"version 1", map[string]string{"host.json": `{"version": "1.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`, "f/function.json": fn},
			"host.json", "version", `"1.0" is not supported`},
		{"no version", map[string]string{"host.json": `{"customHandler": {"description": {"defaultExecutablePath": "handler"}}}`, "f/function.json": fn},
			"host.json", "version", `missing; write "version": "2.0"`},
		{"no handler", map[string]string{"host.json": `{"version": "2.0"}`, "f/function.json": fn}, "host.json", "customHandler", "missing; Sluice runs custom handler apps"},
		{"no description", map[string]string{"host.json": `{"version": "2.0", "customHandler": {}}`, "f/function.json": fn}, "host.json", "customHandler.description", "missing"},
		{"no executable", map[string]string{"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": ""}}}`, "f/function.json": fn},
			"host.json", "customHandler.description.defaultExecutablePath", "missing; name the handler executable"},
		{"encrypted", map[string]string{"host.json": minimalHost, "local.settings.json": `{"IsEncrypted": true, "Values": {"A": "xyz"}}`, "f/function.json": fn},
			"local.settings.json", "IsEncrypted", "the settings are encrypted and Sluice cannot decrypt them"},
		{"bad local settings", map[string]string{"host.json": minimalHost, "local.settings.json": `{"Values": {"A": [1]}}`, "f/function.json": fn},
			"local.settings.json", "Values.A", "must be a string, not an array"},
		{"same name in another case", map[string]string{"host.json": minimalHost, "Orders/function.json": fn, "orders/function.json": fn},
			"orders/function.json", "", `function "orders" differs from function "Orders" only in case`},
		{"bad function name", map[string]string{"host.json": minimalHost, "1st/function.json": fn}, "1st/function.json", "", `"1st" is not a valid function name`},
		{"function named host", map[string]string{"host.json": minimalHost, "Host/function.json": fn}, "Host/function.json", "", `"Host" is not a valid function name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app, err := load(t, writeApp(t, c.files))
			require.Nil(t, app)
			e := findError(t, err, c.file, c.field)
			require.Contains(t, e.Msg, c.msg)
		})
	}
}

func TestMultipleErrorsReportedTogether(t *testing.T) {
	t.Parallel()
	root := writeApp(t, map[string]string{
		"handler": "",
		"host.json": `{"version": "2.0", "functionTimeout": "bad", "customHandler": {"description": {"defaultExecutablePath": "handler"}},
			"extensions": {"queues": {"batchSize": 64}}}`,
		"a/function.json": `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m"}]}`,
		"b/function.json": `{"bindings": [{"type": "serviceBusTrigger", "direction": "in", "name": "m"},
			{"type": "queue", "direction": "in", "name": "o", "queueName": "x"}]}`,
		"c/function.json": `{"bindings": [`,
	})
	_, err := load(t, root)
	require.Equal(t, []string{
		"host.json: functionTimeout",
		"host.json: extensions.queues.batchSize",
		"a/function.json: bindings[0].queueName",
		"b/function.json: bindings[0].type",
		"b/function.json: bindings[1].direction",
		"b/function.json: bindings[1].queueName",
		"c/function.json: ",
	}, problems(err))
	require.Contains(t, err.Error(), "a/function.json: bindings[0].queueName: missing; name the queue the function reads\n")
	// host.json had errors, so the executable was not looked for.
}

func TestLoadRejectsNonDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	_, err := Load(path, Options{})
	require.ErrorContains(t, err, "is not a directory")
	require.Len(t, Errors(err), 1)
	require.True(t, strings.HasPrefix(Errors(err)[0].Error(), "app folder "))
}
