package resilience

import (
	"cmp"
	"fmt"
	"time"
)

// Defaults of a breaker policy.
const (
	DefaultBreakerWindow   = 30 * time.Second
	DefaultBreakerCoolDown = 30 * time.Second
	// MaxBreakerCoolDownFactor bounds the back-off of failed probes when
	// MaxCoolDown is not set: at most this many times CoolDown.
	MaxBreakerCoolDownFactor = 10
)

// BreakerPolicy configures a function's circuit breaker. Failures are
// counted per invocation (a failed batch or message is one failure, each
// retry another) over every instance running the function. The breaker
// opens when either threshold is reached; a zero threshold is not used,
// and a policy with neither is no breaker at all.
type BreakerPolicy struct {
	// FailureThreshold opens the breaker when this many invocations failed
	// within Window, counted over all instances. The seeds' "more than 100
	// failures within 30 seconds" is FailureThreshold 101, Window 30s.
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

// Enabled reports whether the policy describes a breaker.
func (p BreakerPolicy) Enabled() bool { return p.FailureThreshold > 0 || p.ConsecutiveFailures > 0 }

// WithDefaults fills in the defaults of an enabled policy.
func (p BreakerPolicy) WithDefaults() BreakerPolicy {
	if !p.Enabled() {
		return p
	}
	p.Window = cmp.Or(p.Window, DefaultBreakerWindow)
	p.CoolDown = cmp.Or(p.CoolDown, DefaultBreakerCoolDown)
	p.MaxCoolDown = cmp.Or(p.MaxCoolDown, MaxBreakerCoolDownFactor*p.CoolDown)
	return p
}

// Validate reports the first problem with the policy, naming the field.
func (p BreakerPolicy) Validate() error {
	switch {
	case p.FailureThreshold < 0:
		return fmt.Errorf("breaker: failureThreshold %d must not be negative (0 turns it off)", p.FailureThreshold)
	case p.ConsecutiveFailures < 0:
		return fmt.Errorf("breaker: consecutiveFailures %d must not be negative (0 turns it off)", p.ConsecutiveFailures)
	case p.Window < 0, p.CoolDown < 0, p.MaxCoolDown < 0:
		return fmt.Errorf("breaker: window, coolDown and maxCoolDown must not be negative")
	case !p.Enabled() && (p.Window != 0 || p.CoolDown != 0 || p.MaxCoolDown != 0):
		return fmt.Errorf("breaker: set failureThreshold or consecutiveFailures (or both) to turn the breaker on")
	case p.Window != 0 && p.Window < time.Second:
		return fmt.Errorf("breaker: window %s is below the shortest of 1s", p.Window)
	case p.Window > time.Hour:
		return fmt.Errorf("breaker: window %s is above the longest of 1h", p.Window)
	}
	d := p.WithDefaults()
	if d.MaxCoolDown < d.CoolDown {
		return fmt.Errorf("breaker: maxCoolDown %s is below coolDown %s", d.MaxCoolDown, d.CoolDown)
	}
	return nil
}
