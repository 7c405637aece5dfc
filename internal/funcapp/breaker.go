package funcapp

import (
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/sluicehq/sluice"
)

// Sluice's own host.json section. Azure's host.json has no circuit
// breakers, so they live under a top-level "sluice" member, which Azure's
// host ignores:
//
//	"sluice": {"breakers": {
//	  "orders": {"failureThreshold": 101, "window": "00:00:30"},
//	  "*":      {"consecutiveFailures": 5, "coolDown": "00:01:00"}
//	}}
//
// Unlike Azure's sections, where an unknown member is a setting Sluice does
// not implement and only earns a warning, an unknown member here can only
// be a typo (or a setting of a newer Sluice), and ignoring it would leave a
// function without the breaker its author wrote: it is an error.

// BreakerDefault is the key of sluice.breakers that applies to every
// function with an eventHubTrigger, queueTrigger or cosmosDBTrigger that
// has no entry of its own.
const BreakerDefault = "*"

// breakerSupported lists the triggers a breaker applies to: those that take
// work from a source that can hold it while the breaker is open.
var breakerSupported = map[string]bool{
	TypeEventHubTrigger: true,
	TypeQueueTrigger:    true,
	TypeCosmosDBTrigger: true,
}

// breakerKeys are the members of a breaker object, as documented.
var breakerKeys = []string{"failureThreshold", "window", "consecutiveFailures", "coolDown", "maxCoolDown"}

// EffectiveBreaker returns the circuit breaker policy of the function: its
// own entry in host.json's sluice.breakers (names match in any case), else
// the "*" entry; the zero policy (no breaker) when there is neither or when
// the trigger takes no breaker (timer, HTTP and blob triggers). The policy
// is as written: sluice.BreakerPolicy.WithDefaults fills in the rest.
func (f Function) EffectiveBreaker(h Host) sluice.BreakerPolicy {
	if f.Trigger == nil || !breakerSupported[f.Trigger.Type] {
		return sluice.BreakerPolicy{}
	}
	if p, ok := h.Breakers[f.Name]; ok {
		return p
	}
	for name, p := range h.Breakers {
		if strings.EqualFold(name, f.Name) {
			return p
		}
	}
	return h.Breakers[BreakerDefault]
}

// parseSluice reads host.json's "sluice" section.
func parseSluice(o *object, h *Host) {
	if bo, ok := o.object("breakers"); ok {
		h.Breakers = parseBreakers(bo)
	}
	for _, k := range o.unread() {
		o.r.errorf(o.field(k), "not a Sluice setting; the sluice section holds \"breakers\"")
	}
}

// parseBreakers reads sluice.breakers: function name (or "*") -> policy.
// Bad entries are reported and left out.
func parseBreakers(o *object) map[string]sluice.BreakerPolicy {
	out := map[string]sluice.BreakerPolicy{}
	seen := map[string]string{} // lower-case name -> name as written
	for _, name := range slices.Sorted(maps.Keys(o.m)) {
		o.read[name] = true
		field := o.field(name)
		if name != BreakerDefault && !validFunctionName(name) {
			o.r.errorf(field, "%q is not a function name; name a function folder, or write \"*\" for every eventHub, queue and cosmosDB function without an entry of its own", name)
			continue
		}
		if other, dup := seen[strings.ToLower(name)]; dup {
			o.r.errorf(field, "names the same function as %q (names match in any case); keep one", other)
			continue
		}
		seen[strings.ToLower(name)] = name
		switch v := o.m[name].(type) {
		case nil:
			// No breaker for this function, whatever "*" says.
			out[name] = sluice.BreakerPolicy{}
		case map[string]any:
			if p, ok := parseBreaker(newObject(v, field, o.r)); ok {
				out[name] = p
			}
		default:
			o.r.errorf(field, "must be an object like {\"failureThreshold\": 101, \"window\": \"00:00:30\"}, not %s", describe(v))
		}
	}
	return out
}

// parseBreaker reads one breaker object; ok is false when it is bad.
func parseBreaker(o *object) (sluice.BreakerPolicy, bool) {
	before := len(o.r.errs)
	var p sluice.BreakerPolicy
	if n, ok := o.integer(0, math.MaxInt32, "failureThreshold"); ok {
		p.FailureThreshold = n
	}
	if n, ok := o.integer(0, math.MaxInt32, "consecutiveFailures"); ok {
		p.ConsecutiveFailures = n
	}
	if d, ok := o.timeSpan("window"); ok {
		p.Window = d
	}
	if d, ok := o.timeSpan("coolDown"); ok {
		p.CoolDown = d
	}
	if d, ok := o.timeSpan("maxCoolDown"); ok {
		p.MaxCoolDown = d
	}
	for _, k := range o.unread() {
		o.r.errorf(o.field(k), "not a breaker setting; write %s", strings.Join(breakerKeys, ", "))
	}
	if len(o.r.errs) > before {
		return sluice.BreakerPolicy{}, false
	}
	if err := p.Validate(); err != nil {
		o.r.errorf(o.path, "%s", strings.TrimPrefix(err.Error(), "breaker: "))
		return sluice.BreakerPolicy{}, false
	}
	return p, true
}

// checkBreakers checks sluice.breakers against the functions loaded: each
// name must be one of them, with a trigger that takes a breaker. skipped
// are the function folders host.json's "functions" leaves out.
func checkBreakers(h Host, functions []Function, skipped []string, r *report) {
	if len(functions) == 0 {
		return // the app is refused for that already
	}
	for _, name := range slices.Sorted(maps.Keys(h.Breakers)) {
		if name == BreakerDefault {
			continue
		}
		field := "sluice.breakers." + name
		i := slices.IndexFunc(functions, func(f Function) bool { return strings.EqualFold(f.Name, name) })
		switch {
		case i >= 0:
			f := functions[i]
			if f.Trigger != nil && !breakerSupported[f.Trigger.Type] && h.Breakers[name].Enabled() {
				r.errorf(field, "breakers are for %s, %s and %s functions, which can hold their work while the breaker is open; %s is triggered by %s",
					TypeEventHubTrigger, TypeQueueTrigger, TypeCosmosDBTrigger, f.Name, f.Trigger.Type)
			}
		case slices.ContainsFunc(skipped, func(s string) bool { return strings.EqualFold(s, name) }):
			r.warnf(field, "not used: host.json's \"functions\" does not list %s", name)
		default:
			names := make([]string, len(functions))
			for i, f := range functions {
				names[i] = f.Name
			}
			r.errorf(field, "the app has no function %q; name one of its function folders (%s), or write \"*\" for all of them", name, strings.Join(names, ", "))
		}
	}
}
