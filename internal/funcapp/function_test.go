package funcapp

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// parseFn parses a function.json of the function "fn" with a few settings.
func parseFn(t *testing.T, doc string) (Function, []string, []error) {
	t.Helper()
	return ParseFunctionJSON("fn", []byte(doc), map[string]string{
		"HUB_CONN": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s;EntityPath=from-connection",
		"FLAG":     "true",
	})
}

func TestFunctionValidation(t *testing.T) {
	t.Parallel()
	queue := `{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "jobs"}`
	one := func(binding string) string { return `{"bindings": [` + binding + `]}` }
	cases := []struct {
		name  string
		doc   string
		field string
		msg   string // the whole message when it starts with "=", else a part of it
	}{
		{"unknown type", one(`{"type": "serviceBusTrigger", "direction": "in", "name": "m"}`), "bindings[0].type",
			`="serviceBusTrigger" is not supported; Sluice supports the triggers eventHubTrigger, queueTrigger, cosmosDBTrigger, blobTrigger, timerTrigger, httpTrigger and the bindings eventHub, queue, cosmosDB, blob, http`},
		{"missing type", one(`{"direction": "in", "name": "m"}`), "bindings[0].type", "missing; write one of eventHubTrigger"},
		{"type not a string", one(`{"type": 5, "direction": "in", "name": "m"}`), "bindings[0].type", "=must be a string, not the number 5"},
		{"missing direction", one(`{"type": "queueTrigger", "name": "m", "queueName": "jobs"}`), "bindings[0].direction", `=missing; write "in"`},
		{"bad direction", one(`{"type": "queueTrigger", "direction": "sideways", "name": "m", "queueName": "jobs"}`), "bindings[0].direction", `="sideways" is not a direction; write "in", "out" or "inout"`},
		{"wrong direction", one(`{"type": "queueTrigger", "direction": "out", "name": "m", "queueName": "jobs"}`), "bindings[0].direction", `="out" is wrong for type queueTrigger; write "in"`},
		{"output as input", `{"bindings": [` + queue + `, {"type": "eventHub", "direction": "in", "name": "e", "eventHubName": "h"}]}`, "bindings[1].direction", `="in" is wrong for type eventHub; write "out"`},
		{"missing name", one(`{"type": "queueTrigger", "direction": "in", "queueName": "jobs"}`), "bindings[0].name", "missing; name the binding"},
		{"bad name", one(`{"type": "queueTrigger", "direction": "in", "name": "my-item", "queueName": "jobs"}`), "bindings[0].name", `"my-item" is not a valid binding name`},
		{"$return as input", one(`{"type": "queueTrigger", "direction": "in", "name": "$return", "queueName": "jobs"}`), "bindings[0].name", `"$return" is for output bindings only`},
		{"duplicate names", `{"bindings": [` + queue + `, {"type": "queue", "direction": "out", "name": "M", "queueName": "out"}]}`, "bindings[1].name",
			`="M" is already the name of bindings[0]; binding names must be unique (in any case)`},
		{"no trigger", one(`{"type": "queue", "direction": "out", "name": "o", "queueName": "out"}`), "bindings", "no trigger; a function needs exactly one binding of type eventHubTrigger"},
		{"empty bindings", `{"bindings": []}`, "bindings", "no trigger"},
		{"two triggers", `{"bindings": [` + queue + `, {"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "0 * * * * *"}]}`, "bindings[1].type",
			"=a second trigger (bindings[0] is one already); a function has exactly one trigger"},
		{"no bindings", `{"disabled": false}`, "bindings", `missing; a function needs a "bindings" array`},
		{"bindings not an array", `{"bindings": {"type": "queueTrigger"}}`, "bindings", "=must be an array of binding objects, not an object"},
		{"binding not an object", `{"bindings": ["queueTrigger"]}`, "bindings[0]", `not the string "queueTrigger"`},
		{"not an object", `[1, 2]`, "", `must hold a JSON object like {"bindings": [...]}, not an array`},
		{"syntax error", "{\n  \"bindings\": [\n    {\"type\" \"queueTrigger\"}\n  ]\n}", "", "=invalid JSON at line 3, column 13: invalid character '\"' after object key"},
		{"truncated", `{"bindings": [`, "", "invalid JSON at line 1, column 15: unexpected end of file"},
		{"trailing garbage", `{"bindings": []} x`, "", "invalid JSON at line 1, column 18: unexpected content after the end"},
		{"empty file", ``, "", "the file is empty"},
		{"disabled of a wrong type", `{"disabled": 1, "bindings": [` + queue + `]}`, "disabled", "must be true, false or the name of an app setting"},

		{"eventHubName missing", one(`{"type": "eventHubTrigger", "direction": "in", "name": "e"}`), "bindings[0].eventHubName", "missing; name the event hub"},
		{"bad cardinality", one(`{"type": "eventHubTrigger", "direction": "in", "name": "e", "path": "h", "cardinality": "some"}`), "bindings[0].cardinality", `"some" is not a cardinality`},
		{"eventHub output without hub", `{"bindings": [` + queue + `, {"type": "eventHub", "direction": "out", "name": "e"}]}`, "bindings[1].eventHubName", "missing"},

		{"queueName missing", one(`{"type": "queueTrigger", "direction": "in", "name": "m"}`), "bindings[0].queueName", "=missing; name the queue the function reads"},
		{"queueName empty", one(`{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": " "}`), "bindings[0].queueName", "=missing; name the queue the function reads"},
		{"output queueName missing", `{"bindings": [` + queue + `, {"type": "queue", "direction": "out", "name": "o"}]}`, "bindings[1].queueName", "=missing; name the queue the function writes to"},
		{"bad queue name", one(`{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "my_queue"}`), "bindings[0].queueName", `"my_queue" is not a valid queue name: use only letters, digits and '-'`},
		{"short queue name", one(`{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "ab"}`), "bindings[0].queueName", "3 to 63 characters"},
		{"double dash", one(`{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "a--b"}`), "bindings[0].queueName", "two '-' in a row"},
		{"trigger queue expression", one(`{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "{x}"}`), "bindings[0].queueName", "holds a binding expression"},

		{"cosmos databaseName", one(`{"type": "cosmosDBTrigger", "direction": "in", "name": "d", "containerName": "c"}`), "bindings[0].databaseName", "=missing; name the Cosmos DB database"},
		{"cosmos containerName", one(`{"type": "cosmosDBTrigger", "direction": "in", "name": "d", "databaseName": "db"}`), "bindings[0].containerName", "=missing; name the Cosmos DB container"},
		{"cosmos start twice", one(`{"type": "cosmosDBTrigger", "direction": "in", "name": "d", "databaseName": "db", "containerName": "c",
			"startFromBeginning": true, "startFromTime": "2024-01-01T00:00:00Z"}`), "bindings[0].startFromTime", "cannot be used with startFromBeginning"},
		{"cosmos bad time", one(`{"type": "cosmosDBTrigger", "direction": "in", "name": "d", "databaseName": "db", "containerName": "c", "startFromTime": "yesterday"}`),
			"bindings[0].startFromTime", `"yesterday" is not a time`},
		{"cosmos negative delay", one(`{"type": "cosmosDBTrigger", "direction": "in", "name": "d", "databaseName": "db", "containerName": "c", "feedPollDelay": -5}`),
			"bindings[0].feedPollDelay", "-5 is out of range; it must be at least 0"},
		{"cosmos fractional count", one(`{"type": "cosmosDBTrigger", "direction": "in", "name": "d", "databaseName": "db", "containerName": "c", "maxItemsPerInvocation": 1.5}`),
			"bindings[0].maxItemsPerInvocation", "must be a whole number, not the number 1.5"},
		{"cosmos bad bool", one(`{"type": "cosmosDBTrigger", "direction": "in", "name": "d", "databaseName": "db", "containerName": "c", "startFromBeginning": "yes"}`),
			"bindings[0].startFromBeginning", `must be true or false, not the string "yes"`},
		{"cosmos input container", `{"bindings": [` + queue + `, {"type": "cosmosDB", "direction": "in", "name": "d", "databaseName": "db"}]}`, "bindings[1].containerName", "missing"},

		{"blob path missing", one(`{"type": "blobTrigger", "direction": "in", "name": "b"}`), "bindings[0].path", "missing"},
		{"blob no container", one(`{"type": "blobTrigger", "direction": "in", "name": "b", "path": "/"}`), "bindings[0].path", "has no container"},
		{"blob trigger container expression", one(`{"type": "blobTrigger", "direction": "in", "name": "b", "path": "{c}/x"}`), "bindings[0].path", "container must be fixed"},
		{"blob bad source", one(`{"type": "blobTrigger", "direction": "in", "name": "b", "path": "c/{name}", "source": "Queue"}`), "bindings[0].source", `"Queue" is not a blob trigger source`},

		{"schedule missing", one(`{"type": "timerTrigger", "direction": "in", "name": "t"}`), "bindings[0].schedule", "missing; give an NCRONTAB expression"},
		{"runOnStartup not a bool", one(`{"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "0 * * * * *", "runOnStartup": 1}`), "bindings[0].runOnStartup", "must be true or false"},

		{"bad authLevel", one(`{"type": "httpTrigger", "direction": "in", "name": "r", "authLevel": "user"}`), "bindings[0].authLevel",
			`="user" is not an auth level; write "anonymous", "function" or "admin"`},
		{"bad method", one(`{"type": "httpTrigger", "direction": "in", "name": "r", "methods": ["get", "FETCH"]}`), "bindings[0].methods[1]", `"FETCH" is not an HTTP method`},
		{"methods not an array", one(`{"type": "httpTrigger", "direction": "in", "name": "r", "methods": "get"}`), "bindings[0].methods", "must be an array of strings"},
		{"method not a string", one(`{"type": "httpTrigger", "direction": "in", "name": "r", "methods": [1]}`), "bindings[0].methods[0]", "must be a string"},

		{"retry not an object", `{"retry": "always", "bindings": [` + queue + `]}`, "retry", "must be an object"},
		{"retry bad strategy", `{"retry": {"strategy": "linear", "maxRetryCount": 1}, "bindings": [` + queue + `]}`, "retry.strategy", `"linear" is not a retry strategy`},
		{"retry count missing", `{"retry": {"strategy": "fixedDelay", "delayInterval": "00:00:01"}, "bindings": [` + queue + `]}`, "retry.maxRetryCount", "missing"},
		{"retry count too low", `{"retry": {"strategy": "fixedDelay", "maxRetryCount": -2, "delayInterval": "00:00:01"}, "bindings": [` + queue + `]}`, "retry.maxRetryCount", "-2 is out of range"},
		{"retry delay missing", `{"retry": {"strategy": "fixedDelay", "maxRetryCount": 1}, "bindings": [` + queue + `]}`, "retry.delayInterval", "missing; fixedDelay needs"},
		{"retry bad TimeSpan", `{"retry": {"strategy": "fixedDelay", "maxRetryCount": 1, "delayInterval": "5 seconds"}, "bindings": [` + queue + `]}`, "retry.delayInterval", `"5 seconds" is not a TimeSpan`},
		{"retry min above max", `{"retry": {"strategy": "exponentialBackoff", "maxRetryCount": 1, "minimumInterval": "00:01:00", "maximumInterval": "00:00:10"}, "bindings": [` + queue + `]}`,
			"retry.maximumInterval", "=10s is less than minimumInterval 1m0s"},
		{"retry without strategy", `{"retry": {"maxRetryCount": 1, "delayInterval": "00:00:01"}, "bindings": [` + queue + `]}`, "retry.minimumInterval",
			"with no strategy, Azure uses exponentialBackoff"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, errs := parseFn(t, c.doc)
			require.NotEmpty(t, errs)
			var found *Error
			for _, err := range errs {
				e, ok := err.(*Error)
				require.True(t, ok, "%T", err)
				require.Equal(t, "fn/function.json", e.File)
				if e.Field == c.field && found == nil {
					found = e
				}
			}
			require.NotNil(t, found, "no error on %q; got %v", c.field, errs)
			if want, whole := strings.CutPrefix(c.msg, "="); whole {
				require.Equal(t, want, found.Msg)
			} else {
				require.Contains(t, found.Msg, c.msg)
			}
		})
	}
}

func TestFunctionParsing(t *testing.T) {
	t.Parallel()

	// Names match in any case; comments and trailing commas are accepted; a
	// connection string's EntityPath wins over eventHubName.
	f, warnings, errs := parseFn(t, "\xEF\xBB\xBF"+`{
		// a comment
		"Bindings": [
			{"TYPE": "EventHubTrigger", "Direction": "IN", "Name": "e", "EventHubName": "named", "Connection": "HUB_CONN", "Cardinality": "MANY",},
			/* block
			   comment */
			{"type": "http", "direction": "out", "name": "$return"},
		],
	}`)
	require.Empty(t, errs)
	require.Empty(t, warnings)
	require.Equal(t, TypeEventHubTrigger, f.Trigger.Type)
	require.Equal(t, DirectionIn, f.Trigger.Direction)
	require.Equal(t, "from-connection", f.Trigger.EventHubName)
	require.Equal(t, CardinalityMany, f.Trigger.Cardinality)
	require.False(t, f.IsHTTPOnly())

	// Numbers and booleans may be written as strings (a %setting% is one).
	f, _, errs = ParseFunctionJSON("feed", []byte(`{"disabled": "FLAG", "bindings": [{"type": "cosmosDBTrigger", "direction": "in", "name": "docs",
		"databaseName": "db", "collectionName": "c", "leaseCollectionName": "l", "leaseCollectionPrefix": "p",
		"createLeaseCollectionIfNotExists": "%YES%", "maxItemsPerInvocation": "%MAX%", "feedPollDelay": 250.0,
		"leaseConnectionStringSetting": "Leases", "leaseDatabaseName": "ldb", "startFromBeginning": "True"}]}`),
		map[string]string{"YES": "true", "MAX": "50", "FLAG": "1"})
	require.Empty(t, errs)
	require.True(t, f.Disabled)
	b := *f.Trigger
	b.Raw = nil
	require.Equal(t, Binding{Type: TypeCosmosDBTrigger, Direction: DirectionIn, Name: "docs", DatabaseName: "db", ContainerName: "c",
		LeaseConnection: "Leases", LeaseDatabaseName: "ldb", LeaseContainerName: "l", LeaseContainerPrefix: "p",
		CreateLeaseContainerIfNotExists: true, MaxItemsPerInvocation: 50, StartFromBeginning: true, FeedPollDelay: 250 * time.Millisecond,
		LeaseAcquireInterval: DefaultLeaseAcquireInterval, LeaseExpirationInterval: DefaultLeaseExpirationInterval,
		LeaseRenewInterval: DefaultLeaseRenewInterval}, b)

	// A blob binding may be inout: it is both an input and an output.
	f, _, errs = parseFn(t, `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "jobs"},
		{"type": "blob", "direction": "inout", "name": "b", "path": "c/{queueTrigger}"}]}`)
	require.Empty(t, errs)
	require.Len(t, f.Inputs, 1)
	require.Len(t, f.Outputs, 1)
	require.Equal(t, "c/{queueTrigger}", f.Inputs[0].Path)

	// A missing setting is reported once, not again as a bad value.
	_, _, errs = ParseFunctionJSON("fn", []byte(`{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "r",
		"authLevel": "%LEVEL%", "methods": ["%M%"]}]}`), nil)
	require.Len(t, errs, 2, "%v", errs)
	require.Equal(t, "fn/function.json: bindings[0].authLevel: app setting \"LEVEL\" is not set (the value refers to %LEVEL%); add it to Values in local.settings.json or to the environment", errs[0].Error())
	require.Equal(t, "bindings[0].methods[0]", errs[1].(*Error).Field)
}

func TestValidFunctionName(t *testing.T) {
	t.Parallel()
	for _, good := range []string{"a", "Orders", "order-items_2", "x" + strings.Repeat("1", 127)} {
		require.True(t, validFunctionName(good), good)
	}
	for _, bad := range []string{"", "1a", "_a", "-a", "a.b", "a b", "host", "HOST", "é", "x" + strings.Repeat("1", 128)} {
		require.False(t, validFunctionName(bad), bad)
	}
}

func TestDirectionMessageNamesEveryAllowedDirection(t *testing.T) {
	t.Parallel()
	_, _, errs := parseFn(t, `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "m", "queueName": "jobs"},
		{"type": "cosmosDB", "direction": "inout", "name": "d", "databaseName": "db", "containerName": "c"}]}`)
	require.Len(t, errs, 1)
	require.Equal(t, `fn/function.json: bindings[1].direction: "inout" is wrong for type cosmosDB; write "in" or "out"`, errs[0].Error())
}
