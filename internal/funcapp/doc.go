// Package funcapp loads an Azure Functions app folder written for a custom
// handler, so that Sluice can run it unmodified: host.json, the optional
// local.settings.json, and one folder per function holding its
// function.json.
//
// # Using it
//
// [Load] reads and checks a whole folder and returns an [App]: the host
// settings ([Host], with the handler's executable resolved to an absolute
// path), the app settings, and the functions sorted by name, each with its
// trigger and other bindings typed ([Function], [Binding]). Load never
// returns half an app: when anything is wrong it returns every problem it
// found, each an [*Error] naming the file, the JSON path of the field and
// what to write instead:
//
//	orders/function.json: bindings[0].queueName: missing; name the queue the function reads
//
// [ParseHostJSON] and [ParseFunctionJSON] check one file without touching
// the file system; Load uses them, and the fuzz tests drive them.
//
// # Azure semantics kept
//
//   - Member names match in any case; JSON may carry comments and trailing
//     commas (Json.NET reads them).
//   - %NAME% in the strings of a binding, of a function's retry policy and of
//     the handler's path and arguments is replaced by the app setting NAME;
//     a missing setting is an error. Binding expressions in braces
//     ({queueTrigger}, {Query.id}) are kept for the runner to resolve per
//     invocation.
//   - App settings are local.settings.json's Values overridden by the
//     environment ([Options].Env).
//   - Defaults are those of runtime 4.x and its current extensions (Event
//     Hubs 6.x: maxEventBatchSize 100; queues: batchSize 16, maxDequeueCount
//     5, base64 messages; routePrefix "api"; functionTimeout 30 minutes;
//     eventHubTrigger cardinality "one").
//   - A function is disabled by function.json's "disabled" or by the setting
//     AzureWebJobs.<name>.Disabled.
//   - The legacy httpWorker section is read when there is no customHandler;
//     with it, HTTP-only functions are always forwarded.
//
// What is not used by Sluice (logging, extensionBundle, other extensions,
// unknown keys) is accepted; all but logging and extensionBundle are listed
// in [App].Warnings.
//
// # Sluice's own settings
//
// What Azure's host.json has no place for lives under a top-level "sluice"
// member, which Azure's host ignores, so the same folder still deploys to
// Azure. Today it holds circuit breakers, per function ([Host].Breakers,
// [Function.EffectiveBreaker]):
//
//	"sluice": {
//	  "breakers": {
//	    "orders": {"failureThreshold": 101, "window": "00:00:30",
//	               "consecutiveFailures": 5, "coolDown": "00:00:30", "maxCoolDown": "00:05:00"},
//	    "audit":  null,
//	    "*":      {"consecutiveFailures": 10}
//	  }
//	}
//
// A key names a function (in any case); "*" applies to every function with
// an eventHubTrigger, queueTrigger or cosmosDBTrigger that has no entry of
// its own, and null turns the breaker off for one function. The members are
// those of [sluice.BreakerPolicy]: whole numbers for the thresholds (0
// or absent: not used; at least one must be set) and TimeSpans for the
// durations (window 30 s, coolDown 30 s and maxCoolDown ten times coolDown
// when absent). Errors name the file and the JSON path, like
// "host.json: sluice.breakers.ordrs: the app has no function ...": a name
// that is no function of the app, a breaker on a timer, HTTP or blob function, a
// policy that sluice.BreakerPolicy.Validate refuses, and, unlike in
// Azure's sections, an unknown member, since there it can only be a typo
// that would silently leave a function unprotected.
package funcapp
