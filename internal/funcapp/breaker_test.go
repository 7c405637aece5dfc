package funcapp

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestBreakersParsing(t *testing.T) {
	t.Parallel()
	h, warnings, errs := ParseHostJSON([]byte(hostWith(`"Sluice": {"Breakers": {
		"orders": {"failureThreshold": 101, "window": "00:00:30", "consecutiveFailures": 5, "coolDown": "00:00:30", "maxCoolDown": "00:05:00"},
		"Feed":   {"ConsecutiveFailures": "3", /* Json.NET leniency */},
		"audit":  null,
		"quiet":  {},
		"*":      {"failureThreshold": 50, "window": "00:01:00"}}}`)), nil)
	require.Empty(t, errs)
	require.Empty(t, warnings, "the sluice section is Sluice's own: no 'not used' warning")
	require.Equal(t, map[string]sluice.BreakerPolicy{
		"orders": {FailureThreshold: 101, Window: 30 * time.Second, ConsecutiveFailures: 5, CoolDown: 30 * time.Second, MaxCoolDown: 5 * time.Minute},
		"Feed":   {ConsecutiveFailures: 3},
		"audit":  {},
		"quiet":  {},
		"*":      {FailureThreshold: 50, Window: time.Minute},
	}, h.Breakers)

	h, _, errs = ParseHostJSON([]byte(hostWith("")), nil)
	require.Empty(t, errs)
	require.Nil(t, h.Breakers)
}

func TestBreakersValidation(t *testing.T) {
	t.Parallel()
	breakers := func(s string) string { return hostWith(`"sluice": {"breakers": {` + s + `}}`) }
	cases := []struct {
		name, doc, field, msg string
	}{
		{"sluice not an object", hostWith(`"sluice": []`), "sluice", "must be an object, not an array"},
		{"breakers not an object", hostWith(`"sluice": {"breakers": "on"}`), "sluice.breakers", `must be an object, not the string "on"`},
		{"unknown sluice member", hostWith(`"sluice": {"brakers": {}}`), "sluice.brakers", `not a Sluice setting; the sluice section holds "breakers"`},
		{"entry not an object", breakers(`"orders": 5`), "sluice.breakers.orders", "must be an object like {\"failureThreshold\": 101, \"window\": \"00:00:30\"}, not the number 5"},
		{"not a function name", breakers(`"orders/v2": {"failureThreshold": 1}`), "sluice.breakers.orders/v2", `"orders/v2" is not a function name`},
		{"same name in another case", breakers(`"Orders": {"failureThreshold": 1}, "orders": {"failureThreshold": 2}`), "sluice.breakers.orders", `names the same function as "Orders"`},
		{"unknown member", breakers(`"orders": {"failureTreshold": 101}`), "sluice.breakers.orders.failureTreshold",
			"not a breaker setting; write failureThreshold, window, consecutiveFailures, coolDown, maxCoolDown"},
		{"negative threshold", breakers(`"orders": {"failureThreshold": -1}`), "sluice.breakers.orders.failureThreshold", "-1 is out of range; it must be at least 0"},
		{"fractional threshold", breakers(`"orders": {"consecutiveFailures": 2.5}`), "sluice.breakers.orders.consecutiveFailures", "must be a whole number, not the number 2.5"},
		{"window not a TimeSpan", breakers(`"orders": {"failureThreshold": 1, "window": "30s"}`), "sluice.breakers.orders.window", `"30s" is not a TimeSpan`},
		{"coolDown a number", breakers(`"orders": {"failureThreshold": 1, "coolDown": 30}`), "sluice.breakers.orders.coolDown", "must be a string, not the number 30"},
		{"maxCoolDown negative", breakers(`"orders": {"failureThreshold": 1, "maxCoolDown": "-00:01:00"}`), "sluice.breakers.orders.maxCoolDown", "it is negative"},
		{"no threshold", breakers(`"orders": {"window": "00:00:30"}`), "sluice.breakers.orders", "set failureThreshold or consecutiveFailures (or both) to turn the breaker on"},
		{"window too short", breakers(`"*": {"failureThreshold": 5, "window": "00:00:00.5"}`), "sluice.breakers.*", "window 500ms is below the shortest of 1s"},
		{"window too long", breakers(`"orders": {"failureThreshold": 5, "window": "01:00:01"}`), "sluice.breakers.orders", "window 1h0m1s is above the longest of 1h"},
		{"maxCoolDown below coolDown", breakers(`"orders": {"consecutiveFailures": 5, "coolDown": "00:01:00", "maxCoolDown": "00:00:30"}`),
			"sluice.breakers.orders", "maxCoolDown 30s is below coolDown 1m0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h, _, errs := ParseHostJSON([]byte(c.doc), nil)
			require.Len(t, errs, 1, "%v", errs)
			e := errs[0].(*Error)
			require.Equal(t, "host.json", e.File)
			require.Equal(t, c.field, e.Field, "%v", e)
			require.Contains(t, e.Msg, c.msg)
			for name, p := range h.Breakers {
				require.NoError(t, p.Validate(), "a bad entry is left out: %s", name)
			}
		})
	}
}

func TestBreakersMultipleErrors(t *testing.T) {
	t.Parallel()
	_, _, errs := ParseHostJSON([]byte(hostWith(`"sluice": {"brakers": {}, "breakers": {
		"a b": {}, "orders": {"window": "00:00:00.5", "treshold": 1}, "feed": {"failureThreshold": 1, "window": "00:00:00.5"},
		"x": {"coolDown": "00:01:00", "maxCoolDown": "00:00:30", "failureThreshold": -1}}}`)), nil)
	require.Equal(t, []string{
		"host.json: sluice.breakers.a b",
		"host.json: sluice.breakers.feed",
		"host.json: sluice.breakers.orders.treshold",
		"host.json: sluice.breakers.x.failureThreshold",
		"host.json: sluice.brakers",
	}, problems(errors.Join(errs...)))
}

// breakerApp has a function of every trigger type; host.json's sluice
// section is added by the test.
func breakerApp(sluice string) map[string]string {
	return map[string]string{
		"host.json":             hostWith(`"sluice": ` + sluice),
		"hub/function.json":     `{"bindings": [{"type": "eventHubTrigger", "direction": "in", "name": "events", "eventHubName": "telemetry"}]}`,
		"orders/function.json":  `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "order", "queueName": "orders"}]}`,
		"feed/function.json":    `{"bindings": [{"type": "cosmosDBTrigger", "direction": "in", "name": "docs", "databaseName": "db", "containerName": "orders"}]}`,
		"audit/function.json":   `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "entry", "queueName": "audit"}]}`,
		"tick/function.json":    `{"bindings": [{"type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "0 */5 * * * *"}]}`,
		"api/function.json":     `{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req"}, {"type": "http", "direction": "out", "name": "res"}]}`,
		"uploads/function.json": `{"bindings": [{"type": "blobTrigger", "direction": "in", "name": "file", "path": "uploads/{name}"}]}`,
	}
}

func TestLoadBreakers(t *testing.T) {
	t.Parallel()
	app := mustLoad(t, writeApp(t, breakerApp(`{"breakers": {
		"HUB":  {"failureThreshold": 101, "window": "00:00:30"},
		"audit": null,
		"tick": null,
		"api": {},
		"*":    {"consecutiveFailures": 5, "coolDown": "00:01:00"}}}`)), Options{})
	require.Empty(t, app.Warnings)
	def := sluice.BreakerPolicy{ConsecutiveFailures: 5, CoolDown: time.Minute}
	want := map[string]sluice.BreakerPolicy{
		"hub":     {FailureThreshold: 101, Window: 30 * time.Second}, // its own, named in another case
		"orders":  def,                                               // "*"
		"feed":    def,                                               // "*"
		"audit":   {},                                                // null: none, whatever "*" says
		"tick":    {},                                                // "*" is for hub, queue and feed functions only
		"api":     {},
		"uploads": {},
	}
	for name, p := range want {
		f, ok := app.Function(name)
		require.True(t, ok, name)
		require.Equal(t, p, f.EffectiveBreaker(app.Host), name)
	}
}

func TestLoadBreakersErrors(t *testing.T) {
	t.Parallel()
	files := breakerApp(`{"breakers": {
		"ordrs":   {"failureThreshold": 101},
		"tick":    {"consecutiveFailures": 3},
		"API":     {"consecutiveFailures": 3},
		"uploads": {"consecutiveFailures": 3},
		"hub":     {"consecutiveFailures": -3}}}`)
	files["bad/function.json"] = `{"bindings": []}`
	_, err := load(t, writeApp(t, files))
	require.ElementsMatch(t, []string{
		"host.json: sluice.breakers.hub.consecutiveFailures",
		"bad/function.json: bindings",
		"host.json: sluice.breakers.API",
		"host.json: sluice.breakers.ordrs",
		"host.json: sluice.breakers.tick",
		"host.json: sluice.breakers.uploads",
	}, problems(err), "every problem at once: %v", err)
	require.Contains(t, findError(t, err, "host.json", "sluice.breakers.ordrs").Msg,
		`the app has no function "ordrs"; name one of its function folders (api, audit, bad, feed, hub, orders, tick, uploads), or write "*" for all of them`)
	require.Equal(t, "breakers are for eventHubTrigger, queueTrigger and cosmosDBTrigger functions, which can hold their work while the breaker is open; tick is triggered by timerTrigger",
		findError(t, err, "host.json", "sluice.breakers.tick").Msg)
	require.Contains(t, findError(t, err, "host.json", "sluice.breakers.API").Msg, "api is triggered by httpTrigger")
	require.Contains(t, findError(t, err, "host.json", "sluice.breakers.uploads").Msg, "uploads is triggered by blobTrigger")
}

func TestLoadBreakerOfSkippedFunction(t *testing.T) {
	t.Parallel()
	files := breakerApp(`{"breakers": {"audit": {"failureThreshold": 10}}}`)
	files["host.json"] = hostWith(`"functions": ["orders"], "sluice": {"breakers": {"audit": {"failureThreshold": 10}}}`)
	app := mustLoad(t, writeApp(t, files), Options{})
	require.Contains(t, app.Warnings, `host.json: sluice.breakers.audit: not used: host.json's "functions" does not list audit`)
}
