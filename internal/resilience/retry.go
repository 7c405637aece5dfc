// Package resilience holds the policies that decide what happens when a
// function fails: retry schedules (retry.go), the circuit breaker shared by
// all instances (breaker.go, window.go, policy.go) and idempotency keys
// (idempotency.go).
package resilience

import (
	"errors"
	"fmt"
	"time"
)

// Strategies of a retry policy, named as in Azure Functions' "retry" object.
const (
	FixedDelay         = "fixedDelay"
	ExponentialBackoff = "exponentialBackoff"
)

// RetryForever as MaxRetryCount retries until the input succeeds.
const RetryForever = -1

// Retry is a retry policy: how many times a failed input is tried again and
// how long to wait before each try. The zero value never retries.
type Retry struct {
	// Strategy is FixedDelay, ExponentialBackoff, or "" for no retries.
	Strategy string `json:"strategy,omitempty"`
	// MaxRetryCount is the number of retries after the first attempt;
	// RetryForever (-1) never gives up.
	MaxRetryCount int `json:"maxRetryCount,omitempty"`
	// Delay is the wait of FixedDelay.
	Delay time.Duration `json:"delayInterval,omitempty"`
	// MinInterval and MaxInterval bound ExponentialBackoff: retry 1 waits
	// MinInterval, retry k+1 waits MinInterval + r·2^(k-1)·MinInterval with
	// r drawn from [1-Jitter, 1+Jitter], never more than MaxInterval.
	MinInterval time.Duration `json:"minimumInterval,omitempty"`
	MaxInterval time.Duration `json:"maximumInterval,omitempty"`
	// Jitter is the randomization factor in [0, 1). For ExponentialBackoff
	// zero means the Azure default of 0.2; FixedDelay has none unless set.
	// Set it negative for no jitter at all.
	Jitter float64 `json:"jitter,omitempty"`
}

// Validate reports the first problem with the policy, naming the field.
func (r Retry) Validate() error {
	switch r.Strategy {
	case "":
		return nil
	case FixedDelay:
		if r.Delay < 0 {
			return fmt.Errorf("retry: delayInterval %s must not be negative", r.Delay)
		}
	case ExponentialBackoff:
		if r.MinInterval <= 0 {
			return errors.New("retry: exponentialBackoff needs a positive minimumInterval")
		}
		if r.MaxInterval < r.MinInterval {
			return fmt.Errorf("retry: maximumInterval %s is below minimumInterval %s", r.MaxInterval, r.MinInterval)
		}
	default:
		return fmt.Errorf("retry: unknown strategy %q (use %q or %q)", r.Strategy, FixedDelay, ExponentialBackoff)
	}
	if r.MaxRetryCount < RetryForever {
		return fmt.Errorf("retry: maxRetryCount %d must be -1 (forever) or at least 0", r.MaxRetryCount)
	}
	if r.Jitter >= 1 {
		return fmt.Errorf("retry: jitter %g must be below 1", r.Jitter)
	}
	return nil
}

// Next returns the wait before retry number retry (1 for the first retry,
// after the first failure), and false when the policy allows no such retry.
// rnd returns a uniform value in [0, 1); tests pass a fixed one.
func (r Retry) Next(retry int, rnd func() float64) (time.Duration, bool) {
	if r.Strategy == "" || retry < 1 || (r.MaxRetryCount != RetryForever && retry > r.MaxRetryCount) {
		return 0, false
	}
	if r.Strategy == FixedDelay {
		return jitter(r.Delay, r.Jitter, rnd), true
	}
	if retry == 1 {
		return r.MinInterval, true
	}
	j := r.Jitter
	if j == 0 {
		j = 0.2
	}
	// Doubling past the cap only matters until it is hit; stop before the
	// shift overflows.
	shift := min(retry-2, 40)
	grow := float64(r.MinInterval) * float64(int64(1)<<shift)
	d := float64(r.MinInterval) + grow*factor(j, rnd)
	if d > float64(r.MaxInterval) {
		return r.MaxInterval, true
	}
	return time.Duration(d), true
}

func factor(j float64, rnd func() float64) float64 {
	if j <= 0 {
		return 1
	}
	return 1 - j + 2*j*rnd()
}

func jitter(d time.Duration, j float64, rnd func() float64) time.Duration {
	return time.Duration(float64(d) * factor(j, rnd))
}
