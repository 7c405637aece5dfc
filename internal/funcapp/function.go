package funcapp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Function is one function of the app: a folder holding function.json.
type Function struct {
	// Name is the folder's name: letters, digits, '-' and '_', starting with
	// a letter, at most 128 characters, and not "host" (Azure's rule).
	Name string
	// Dir is the absolute path of the folder; set by Load ("" from
	// ParseFunctionJSON).
	Dir string
	// Disabled is true when the trigger must not fire: function.json's
	// "disabled" is true (or names an app setting that is "true" or "1"),
	// or the app setting AzureWebJobs.<Name>.Disabled (on Linux
	// AzureWebJobs_<Name>_Disabled) is "true" or "1".
	Disabled bool
	// Retry is function.json's retry policy; nil means the host's (see
	// EffectiveRetry).
	Retry *Retry
	// Trigger points at the one trigger binding in Bindings.
	Trigger *Binding
	// Inputs are the bindings other than the trigger that are read (in or
	// inout), in file order.
	Inputs []Binding
	// Outputs are the bindings that are written (out or inout), in file
	// order.
	Outputs []Binding
	// Bindings are all bindings, in file order; bindings[i] in messages is
	// Bindings[i].
	Bindings []Binding
}

// IsHTTPOnly reports whether the function's bindings are exactly an
// httpTrigger and an http output: the functions whose requests a custom
// handler gets forwarded as-is when Handler.ForwardHTTP is set.
func (f Function) IsHTTPOnly() bool {
	if len(f.Bindings) != 2 {
		return false
	}
	var trigger, out bool
	for _, b := range f.Bindings {
		switch {
		case b.Type == TypeHTTPTrigger:
			trigger = true
		case b.Type == TypeHTTP && b.Direction == DirectionOut:
			out = true
		}
	}
	return trigger && out
}

// EffectiveRetry returns the retry policy that applies to the function: its
// own, else the host's; nil when there is none or when the trigger does not
// take retry policies (Azure applies them to timer, Event Hubs and Cosmos DB
// triggers only: queues and blobs retry through their dequeue count, HTTP
// callers retry themselves).
func (f Function) EffectiveRetry(h Host) *Retry {
	if f.Trigger == nil || !retrySupported[f.Trigger.Type] {
		return nil
	}
	if f.Retry != nil {
		return f.Retry
	}
	return h.Retry
}

// functionKeys are the function.json keys that are read or knowingly ignored
// (scriptFile and entryPoint name code a custom handler does not need).
var functionKeys = []string{"bindings", "disabled", "retry", "scriptFile", "entryPoint", "configurationSource", "generatedBy", "excluded", "language"}

// ParseFunctionJSON reads the function.json of the function named name.
// settings are the app settings: %NAME% in any string of a binding or of the
// retry policy is replaced by the setting NAME, and the disabled state is read
// from them. It returns the function, warnings about what is ignored, and
// every problem found (each an *Error). The Function is complete only when
// there are no errors; its Dir is not set.
func ParseFunctionJSON(name string, data []byte, settings map[string]string) (Function, []string, []error) {
	r := &report{file: name + "/function.json"}
	f := parseFunction(name, data, settings, r)
	return f, r.warnings, r.errs
}

func parseFunction(name string, data []byte, settings map[string]string, r *report) Function {
	f := Function{Name: name}
	if !validFunctionName(name) {
		r.errorf("", "%q is not a valid function name: the folder name must start with a letter, hold only letters, digits, '-' and '_', be at most 128 characters long, and not be \"host\"", name)
	}
	doc, err := decodeJSON(data)
	if err != nil {
		r.errorf("", "%v", err)
		return f
	}
	m, ok := doc.(map[string]any)
	if !ok {
		r.errorf("", "must hold a JSON object like {\"bindings\": [...]}, not %s", describe(doc))
		return f
	}
	o := newObject(m, "", r)

	f.Disabled = parseDisabled(o, name, settings)
	if v, _, ok := o.lookup("retry"); ok && v != nil {
		if rm, isObject := expandValue(v, "retry", settings, r).(map[string]any); isObject {
			f.Retry = parseRetry(newObject(rm, "retry", r))
		} else {
			r.errorf("retry", "must be an object like {\"strategy\": \"fixedDelay\", \"maxRetryCount\": 3, \"delayInterval\": \"00:00:10\"}, not %s", describe(v))
		}
	}

	v, _, ok := o.lookup("bindings")
	arr, isArray := v.([]any)
	switch {
	case !ok || v == nil:
		r.errorf("bindings", "missing; a function needs a \"bindings\" array holding its trigger")
		return f
	case !isArray:
		r.errorf("bindings", "must be an array of binding objects, not %s", describe(v))
		return f
	}

	before := len(r.errs)
	names := map[string]int{} // lower-case name -> index of first binding
	triggerAt := -1
	for i, e := range arr {
		path := fmt.Sprintf("bindings[%d]", i)
		bm, isObject := e.(map[string]any)
		if !isObject {
			r.errorf(path, "must be a binding object like {\"type\": ..., \"direction\": ..., \"name\": ...}, not %s", describe(e))
			continue
		}
		bm = expandValue(bm, path, settings, r).(map[string]any)
		b := parseBinding(newObject(bm, path, r), name, settings)
		b.Raw = rawMembers(bm)
		f.Bindings = append(f.Bindings, b)
		if b.Name != "" {
			key := strings.ToLower(b.Name)
			if first, dup := names[key]; dup {
				r.errorf(path+".name", "%q is already the name of bindings[%d]; binding names must be unique (in any case)", b.Name, first)
			} else {
				names[key] = i
			}
		}
		if b.IsTrigger() {
			if triggerAt >= 0 {
				r.errorf(path+".type", "a second trigger (bindings[%d] is one already); a function has exactly one trigger", triggerAt)
			} else {
				triggerAt = i
			}
		}
	}
	if triggerAt < 0 && len(r.errs) == before {
		r.errorf("bindings", "no trigger; a function needs exactly one binding of type %s", strings.Join(triggerTypes, ", "))
	}
	if len(r.errs) > before || len(f.Bindings) != len(arr) {
		return f
	}
	for i := range f.Bindings {
		b := f.Bindings[i]
		switch {
		case i == triggerAt:
			f.Trigger = &f.Bindings[i]
		case b.Direction == DirectionIn:
			f.Inputs = append(f.Inputs, b)
		case b.Direction == DirectionInOut:
			f.Inputs = append(f.Inputs, b)
			f.Outputs = append(f.Outputs, b)
		case b.Direction == DirectionOut:
			f.Outputs = append(f.Outputs, b)
		}
	}
	if f.Retry != nil && !retrySupported[f.Trigger.Type] {
		r.warnf("retry", "ignored: Azure applies retry policies to %s, %s and %s functions only, not %s", TypeTimerTrigger, TypeEventHubTrigger, TypeCosmosDBTrigger, f.Trigger.Type)
	}
	for _, k := range o.unread() {
		known := false
		for _, fk := range functionKeys {
			known = known || strings.EqualFold(k, fk)
		}
		if !known {
			r.warnf(k, "not used by Sluice; ignored")
		}
	}
	return f
}

// parseDisabled reads "disabled" and the AzureWebJobs.<name>.Disabled
// setting; the function is disabled when either says so.
func parseDisabled(o *object, name string, settings map[string]string) bool {
	disabled := settingEnabled(settings, "AzureWebJobs."+name+".Disabled") ||
		settingEnabled(settings, "AzureWebJobs_"+name+"_Disabled")
	v, _, ok := o.lookup("disabled")
	if !ok || v == nil {
		return disabled
	}
	switch x := v.(type) {
	case bool:
		return disabled || x
	case string:
		// "true"/"false" as text, or the name of a setting holding "true"
		// or "1" (the Functions 1.x form, still found in apps).
		switch s := strings.TrimSpace(x); {
		case strings.EqualFold(s, "true"):
			return true
		case strings.EqualFold(s, "false"), s == "":
			return disabled
		default:
			return disabled || settingEnabled(settings, s)
		}
	default:
		o.r.errorf("disabled", "must be true, false or the name of an app setting, not %s", describe(v))
		return disabled
	}
}

func validFunctionName(name string) bool {
	if name == "" || len(name) > 128 || strings.EqualFold(name, "host") {
		return false
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case (c >= '0' && c <= '9') || c == '-' || c == '_':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// rawMembers encodes each member of a binding (after %setting% expansion).
func rawMembers(m map[string]any) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			continue // cannot happen for decoded JSON
		}
		out[k] = json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n"))
	}
	return out
}
