package pipeline

import (
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSimulatorIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b, c := NewSimulator(50, 0.1, 7), NewSimulator(50, 0.1, 7), NewSimulator(50, 0.1, 8)
	differ := false
	for range 2000 {
		ida, bodya := a.Next()
		idb, bodyb := b.Next()
		idc, bodyc := c.Next()
		require.Equal(t, ida, idb)
		require.Equal(t, bodya, bodyb)
		differ = differ || ida != idc || string(bodya) != string(bodyc)
	}
	assert.True(t, differ, "another seed, other frames")
	assert.Equal(t, []string{"drone-0001", "drone-0002", "drone-0003"}, NewSimulator(3, 0, 1).DeviceIDs())
	assert.Equal(t, "drone-00001", NewSimulator(10000, 0, 1).DeviceIDs()[0])
}

func TestSimulatorFrames(t *testing.T) {
	t.Parallel()
	const devices, n = 20, 20000
	s := NewSimulator(devices, 0, 3)
	frames := map[string]int{}
	state := map[string]*DeviceState{}
	var keys, modes int
	for range n {
		id, body := s.Next()
		var f Frame
		require.NoError(t, Decode(body, &f), "%s", body)
		require.Equal(t, id, f.DeviceID)
		frames[id]++
		// Every 10th frame of a device, from its first, is a key frame.
		require.Equal(t, frames[id]%KeyFrameEvery == 1, f.IsKeyFrame, "frame %d of %s: %s", frames[id], id, body)
		if f.IsKeyFrame {
			keys++
		} else {
			require.NotNil(t, f.Latitude, "a partial frame carries the position: %s", body)
		}
		if f.FlightMode != nil && !f.IsKeyFrame {
			modes++
			// A partial frame carries the mode only when it changed.
			require.NotEqual(t, *state[id].FlightMode, *f.FlightMode, "%s", body)
		}
		if state[id] == nil {
			require.True(t, f.IsKeyFrame, "a device starts with a key frame")
			state[id] = &DeviceState{}
		}
		Merge(state[id], f)
	}
	assert.Len(t, frames, devices)
	assert.InDelta(t, n/KeyFrameEvery, keys, n/KeyFrameEvery/10)
	assert.Positive(t, modes, "drones change modes")
	flying := 0
	for _, st := range state {
		if *st.FlightMode != "landed" {
			flying++
		}
	}
	assert.Positive(t, flying, "some drones are in the air")
}

func TestSimulatorCorruptShare(t *testing.T) {
	t.Parallel()
	const n = 50000
	for _, share := range []float64{0, 0.01, 0.2, 1} {
		s := NewSimulator(100, share, 11)
		corrupt := 0
		kinds := map[string]int{}
		for range n {
			_, body := s.Next()
			var f Frame
			if err := Decode(body, &f); err != nil {
				corrupt++
				kind := number.ReplaceAllString(err.Error(), "N")
				if strings.Contains(kind, "invalid character") {
					kind = "garbage"
				}
				kinds[kind]++
			}
		}
		// Within five standard deviations of the binomial.
		sd := max(1, math.Sqrt(n*share*(1-share)))
		assert.InDelta(t, n*share, float64(corrupt), 5*sd, "share %g: %d corrupt of %d", share, corrupt, n)
		if share == 1 {
			assert.Equal(t, []string{
				"battery N: want N to N",
				"battery: JSON string where a number belongs",
				"garbage",
				"invalid JSON at byte N: unexpected end of JSON input",
				"key frame without altitude",
				"no deviceId",
				"not a JSON object but a JSON array",
			}, slices.Sorted(maps.Keys(kinds)), "every kind of corruption")
		}
	}
}

var number = regexp.MustCompile(`-?[0-9][0-9.]*`)
