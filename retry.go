package sluice

import (
	"time"

	"github.com/sluicehq/sluice/internal/resilience"
)

// RetryPolicy says how often and when a failed batch is tried again before
// its events are dead-lettered. While a hub batch is retried its partition
// waits, so order is kept. The zero value never retries.
type RetryPolicy struct {
	// Strategy is "fixedDelay", "exponentialBackoff", or "" for no
	// retries. FixedDelay and ExponentialBackoff make policies of each.
	Strategy string `json:"strategy,omitempty"`
	// MaxRetryCount is the number of retries after the first attempt;
	// RetryForever never gives up.
	MaxRetryCount int `json:"maxRetryCount,omitempty"`
	// Delay is the wait of fixedDelay.
	Delay time.Duration `json:"delayInterval,omitempty"`
	// MinInterval and MaxInterval bound exponentialBackoff: retry 1 waits
	// MinInterval, retry k+1 waits MinInterval + r·2^(k-1)·MinInterval with
	// r drawn from [1-Jitter, 1+Jitter], never more than MaxInterval.
	MinInterval time.Duration `json:"minimumInterval,omitempty"`
	MaxInterval time.Duration `json:"maximumInterval,omitempty"`
	// Jitter is the randomization factor in [0, 1). For exponentialBackoff
	// zero means the Azure default of 0.2; fixedDelay has none unless set.
	// Set it negative for no jitter at all.
	Jitter float64 `json:"jitter,omitempty"`
}

// RetryForever as a retry count never gives up.
const RetryForever = resilience.RetryForever

// FixedDelay retries up to maxRetries times, waiting delay before each.
func FixedDelay(maxRetries int, delay time.Duration) RetryPolicy {
	return RetryPolicy{Strategy: resilience.FixedDelay, MaxRetryCount: maxRetries, Delay: delay}
}

// ExponentialBackoff retries up to maxRetries times: the first retry waits
// minInterval, each later one about twice as long as the one before (with
// ±20% jitter), never more than maxInterval. It is Azure Functions'
// exponentialBackoff strategy.
func ExponentialBackoff(maxRetries int, minInterval, maxInterval time.Duration) RetryPolicy {
	return RetryPolicy{Strategy: resilience.ExponentialBackoff, MaxRetryCount: maxRetries,
		MinInterval: minInterval, MaxInterval: maxInterval}
}

// BreakerPolicy configures a function's circuit breaker (see WithBreaker).
//
// Failures are counted per invocation (a failed batch or message is one
// failure, each retry another) over every instance running the function.
// The breaker opens when either threshold is reached; a zero threshold is
// not used, and a policy with neither is no breaker at all.
type BreakerPolicy struct {
	// FailureThreshold opens the breaker when this many invocations failed
	// within Window, counted over all instances ("more than 100 failures
	// within 30 seconds" is FailureThreshold 101, Window 30s).
	FailureThreshold int `json:"failureThreshold,omitempty"`
	// Window is the rolling window of FailureThreshold. Default 30s.
	Window time.Duration `json:"window,omitempty"`
	// ConsecutiveFailures opens the breaker after this many failed
	// invocations in a row: on each instance, a run of failures ends with
	// its next success, and the runs of all instances add up.
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`
	// CoolDown is how long the breaker stays open before one probe
	// invocation is let through (half-open). Default 30s. Each failed probe
	// doubles it, up to MaxCoolDown (default 10 × CoolDown).
	CoolDown    time.Duration `json:"coolDown,omitempty"`
	MaxCoolDown time.Duration `json:"maxCoolDown,omitempty"`
}

// Enabled reports whether the policy describes a breaker: a policy with
// neither threshold is none.
func (p BreakerPolicy) Enabled() bool { return p.internal().Enabled() }

// Validate reports the first problem with the policy, naming the field, as
// Start would.
func (p BreakerPolicy) Validate() error { return p.internal().Validate() }

// WithDefaults returns an enabled policy with the defaults filled in
// (Window 30s, CoolDown 30s, MaxCoolDown 10 × CoolDown), as the host runs
// it; a policy that is not enabled is returned as it is.
func (p BreakerPolicy) WithDefaults() BreakerPolicy {
	return BreakerPolicy(p.internal().WithDefaults())
}

// The conversions to the host's policies: of identical struct types, so
// that a change there fails to compile here instead of changing the SDK.
func (p RetryPolicy) internal() resilience.Retry           { return resilience.Retry(p) }
func (p BreakerPolicy) internal() resilience.BreakerPolicy { return resilience.BreakerPolicy(p) }
