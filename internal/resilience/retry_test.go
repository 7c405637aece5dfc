package resilience

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestFixedDelay(t *testing.T) {
	t.Parallel()
	r := Retry{Strategy: FixedDelay, MaxRetryCount: 3, Delay: 2 * time.Second}
	for i := 1; i <= 3; i++ {
		d, ok := r.Next(i, fixed(0.9))
		require.True(t, ok)
		require.Equal(t, 2*time.Second, d)
	}
	_, ok := r.Next(4, fixed(0))
	require.False(t, ok, "no fourth retry")

	r.Jitter = 0.5
	d, _ := r.Next(1, fixed(0))
	require.Equal(t, time.Second, d)
	d, _ = r.Next(1, fixed(0.999999))
	require.InDelta(t, 3*time.Second, d, float64(time.Millisecond))
}

func TestExponentialBackoffFollowsAzure(t *testing.T) {
	t.Parallel()
	r := Retry{Strategy: ExponentialBackoff, MaxRetryCount: 8, MinInterval: time.Second, MaxInterval: 20 * time.Second}
	// r = 0.5 gives factor 1: min + 2^(k-1)·min for retry k+1.
	want := []time.Duration{1, 2, 3, 5, 9, 17, 20, 20}
	for i, w := range want {
		d, ok := r.Next(i+1, fixed(0.5))
		require.True(t, ok)
		require.Equal(t, w*time.Second, d, "retry %d", i+1)
	}
	_, ok := r.Next(9, fixed(0.5))
	require.False(t, ok)
	// Jitter 0.2 (the default) spreads retry 3 over [min+0.8·2min, min+1.2·2min].
	lo, _ := r.Next(3, fixed(0))
	hi, _ := r.Next(3, fixed(0.999999))
	require.Equal(t, 2600*time.Millisecond, lo)
	require.InDelta(t, 3400*time.Millisecond, hi, float64(time.Millisecond))
}

func TestRetryForeverAndNone(t *testing.T) {
	t.Parallel()
	r := Retry{Strategy: ExponentialBackoff, MaxRetryCount: RetryForever, MinInterval: time.Millisecond, MaxInterval: time.Minute}
	d, ok := r.Next(1000, fixed(0.5))
	require.True(t, ok)
	require.Equal(t, time.Minute, d)
	_, ok = Retry{}.Next(1, fixed(0.5))
	require.False(t, ok, "the zero policy never retries")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	bad := map[string]Retry{
		"strategy":   {Strategy: "linear"},
		"minimum":    {Strategy: ExponentialBackoff, MaxInterval: time.Second},
		"maximum":    {Strategy: ExponentialBackoff, MinInterval: 2 * time.Second, MaxInterval: time.Second},
		"RetryCount": {Strategy: FixedDelay, MaxRetryCount: -2},
		"delay":      {Strategy: FixedDelay, Delay: -time.Second},
		"jitter":     {Strategy: FixedDelay, Jitter: 1},
	}
	for field, r := range bad {
		require.ErrorContains(t, r.Validate(), field, "policy %+v", r)
	}
	require.NoError(t, Retry{Strategy: FixedDelay, MaxRetryCount: 2, Delay: time.Second}.Validate())
}
