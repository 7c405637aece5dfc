package funcapp

import (
	"math"
	"strings"
	"time"
)

// Strategies of a retry policy.
const (
	RetryFixedDelay         = "fixedDelay"
	RetryExponentialBackoff = "exponentialBackoff"
)

// RetryForever as Retry.MaxRetryCount never stops retrying.
const RetryForever = -1

// Retry is a function retry policy: the "retry" object of host.json (for
// every function) or of function.json (for one function, winning over
// host.json's).
type Retry struct {
	// Strategy is RetryFixedDelay or RetryExponentialBackoff. The names are
	// matched in any case, and Python's "fixed_delay" and
	// "exponential_backoff" are accepted. When it is missing, Azure's enum
	// default applies: exponentialBackoff.
	Strategy string
	// MaxRetryCount is the number of retries after the first attempt
	// (required); RetryForever (-1) retries until the function succeeds.
	MaxRetryCount int
	// DelayInterval is the wait before each retry of RetryFixedDelay
	// (required for it).
	DelayInterval time.Duration
	// MinimumInterval and MaximumInterval bound the waits of
	// RetryExponentialBackoff (both required for it; minimum <= maximum).
	MinimumInterval time.Duration
	MaximumInterval time.Duration
}

// retrySupported lists the triggers Azure applies retry policies to. Queue
// and blob triggers retry through their own dequeue count, and HTTP callers
// retry themselves.
var retrySupported = map[string]bool{
	TypeEventHubTrigger: true,
	TypeCosmosDBTrigger: true,
	TypeTimerTrigger:    true,
}

// parseRetry reads a "retry" object. It returns nil when the object is bad.
func parseRetry(o *object) *Retry {
	before := len(o.r.errs)
	var r Retry
	strategy, ok := o.str("strategy")
	switch norm := strings.ToLower(strings.ReplaceAll(strategy, "_", "")); {
	case !ok:
		r.Strategy = RetryExponentialBackoff
	case norm == "fixeddelay":
		r.Strategy = RetryFixedDelay
	case norm == "exponentialbackoff":
		r.Strategy = RetryExponentialBackoff
	default:
		o.r.errorf(o.field("strategy"), "%q is not a retry strategy; write %q or %q", strategy, RetryFixedDelay, RetryExponentialBackoff)
	}
	if n, ok := o.integer(RetryForever, math.MaxInt32, "maxRetryCount"); ok {
		r.MaxRetryCount = n
	} else if !o.has("maxRetryCount") {
		o.r.errorf(o.field("maxRetryCount"), "missing; give the number of retries (-1 retries forever)")
	}
	switch r.Strategy {
	case RetryFixedDelay:
		if d, ok := o.timeSpan("delayInterval"); ok {
			r.DelayInterval = d
		} else if !o.has("delayInterval") {
			o.r.errorf(o.field("delayInterval"), "missing; fixedDelay needs the wait between retries, like \"00:00:10\"")
		}
	case RetryExponentialBackoff:
		why := "exponentialBackoff needs"
		if !o.has("strategy") {
			why = "with no strategy, Azure uses exponentialBackoff, which needs"
		}
		minOK, maxOK := false, false
		if d, ok := o.timeSpan("minimumInterval"); ok {
			r.MinimumInterval, minOK = d, true
		} else if !o.has("minimumInterval") {
			o.r.errorf(o.field("minimumInterval"), "missing; %s the first wait, like \"00:00:04\"", why)
		}
		if d, ok := o.timeSpan("maximumInterval"); ok {
			r.MaximumInterval, maxOK = d, true
		} else if !o.has("maximumInterval") {
			o.r.errorf(o.field("maximumInterval"), "missing; %s the longest wait, like \"00:15:00\"", why)
		}
		if minOK && maxOK && r.MinimumInterval > r.MaximumInterval {
			o.r.errorf(o.field("maximumInterval"), "%s is less than minimumInterval %s", r.MaximumInterval, r.MinimumInterval)
		}
	}
	if len(o.r.errs) > before {
		return nil
	}
	return &r
}
