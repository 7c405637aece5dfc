package gateway

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHubDesired checks the formula against values worked out by hand.
// The even spreads ceil(P/c), c = 1..P, are:
//
//	P=1: 1           P=4: 1 2 4           P=8: 1 2 3 4 8
//	P=10: 1 2 3 4 5 10                    P=12: 1 2 3 4 6 12
//	P=20: 1 2 3 4 5 7 10 20               P=32: 1 2 3 4 5 6 7 8 11 16 32
func TestHubDesired(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		lag       int64
		target, p int
		want      int
		why       string
	}{
		{0, 100, 8, 0, "no lag, no instance"},
		{-5, 100, 8, 0, "no lag, no instance"},
		{1, 100, 8, 1, "lag below the target: one instance"},
		{99, 100, 8, 1, "lag below the target: one instance"},
		{100, 100, 8, 1, "exactly one target"},
		{101, 100, 8, 2, "one event over: two"},
		{250, 100, 8, 3, "3 spreads 8 partitions as 3+3+2"},
		{350, 100, 8, 4, "4 is even"},
		{450, 100, 8, 8, "5 rounds up to 8 (ceil(8/c) skips 5, 6, 7)"},
		{700, 100, 8, 8, "7 rounds up to 8"},
		{800, 100, 8, 8, "8 is the partition count"},
		{1_000_000, 100, 8, 8, "capped at the partition count"},
		{math.MaxInt64, 1, 8, 8, "no overflow, capped"},
		{400, 100, 12, 4, "4 is even for 12"},
		{500, 100, 12, 6, "5 rounds up to 6"},
		{700, 100, 12, 12, "7 rounds up to 12"},
		{5, 1, 10, 5, "5 is even for 10"},
		{6, 1, 10, 10, "6 rounds up to 10"},
		{6, 1, 20, 7, "6 rounds up to 7 for 20 (3 partitions each, the last 2)"},
		{8, 1, 20, 10, "8 rounds up to 10"},
		{11, 1, 20, 20, "11 rounds up to 20"},
		{9, 1, 32, 11, "9 rounds up to 11 for 32"},
		{12, 1, 32, 16, "12 rounds up to 16"},
		{17, 1, 32, 32, "17 rounds up to 32"},
		{3, 1, 4, 4, "3 rounds up to 4 for 4"},
		{1_000, 10, 1, 1, "one partition: one instance"},
		{1_000, 0, 4, 4, "a target of 0 counts as 1"},
		{10, 100, 0, 1, "no partitions counts as one"},
	} {
		require.Equal(t, c.want, HubDesired(c.lag, c.target, c.p), "lag %d, target %d, %d partitions: %s", c.lag, c.target, c.p, c.why)
	}
}

func TestQueueDesired(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		depth  int64
		target int
		want   int
	}{
		{0, 16, 0},
		{1, 16, 1},
		{16, 16, 1},
		{17, 16, 2},
		{1000, 16, 63},
		{1000, 1, 1000},
		{5, 0, 5},
		{math.MaxInt64, 1, int(min(math.MaxInt64, int64(math.MaxInt)))},
	} {
		require.Equal(t, c.want, QueueDesired(c.depth, c.target), "depth %d, target %d", c.depth, c.target)
	}
}
