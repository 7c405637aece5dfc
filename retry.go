package sluice

import (
	"time"

	"github.com/sluicehq/sluice/internal/resilience"
)

// RetryPolicy says how often and when a failed batch is tried again before
// its events are dead-lettered. While a hub batch is retried its partition
// waits, so order is kept. The zero value never retries.
type RetryPolicy = resilience.Retry

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
type BreakerPolicy = resilience.BreakerPolicy
