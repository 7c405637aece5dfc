package demo

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/examples/telemetry/pipeline"
)

// examples/telemetry/pipeline shows this demo as a user writes it, so the
// two must do the same: the same defaults, the same simulated frames, the
// same decoding (problems included) and the same merged states. The
// example holds the unit tests of Decode and Merge; these tests hold the
// copy here to it.

func TestSameAsTheExample(t *testing.T) {
	t.Parallel()
	o, eo := Options{}.WithDefaults(), pipeline.Options{}.WithDefaults()
	require.Equal(t, []any{o.Hub, o.Partitions, o.Retention, o.Container, o.Function, o.MaxBatchSize, o.Route, o.StateFunction},
		[]any{eo.Hub, eo.Partitions, eo.Retention, eo.Container, eo.Function, eo.MaxBatchSize, eo.Route, eo.StateFunction})
	require.Equal(t, ReasonPrefix, pipeline.ReasonPrefix)

	sim, esim := NewSimulator(200, 0.05, 3), pipeline.NewSimulator(200, 0.05, 3)
	require.Equal(t, esim.DeviceIDs(), sim.DeviceIDs())
	states := map[string]*DeviceState{}
	estates := map[string]*pipeline.DeviceState{}
	for range 5000 {
		id, body := sim.Next()
		eid, ebody := esim.Next()
		require.Equal(t, eid, id)
		require.Equal(t, string(ebody), string(body), "the same simulated frames")
		if !sameDecoding(t, body) {
			continue
		}
		var f Frame
		var ef pipeline.Frame
		require.NoError(t, Decode(body, &f))
		require.NoError(t, pipeline.Decode(body, &ef))
		if states[id] == nil {
			states[id], estates[id] = &DeviceState{}, &pipeline.DeviceState{}
		}
		Merge(states[id], f)
		pipeline.Merge(estates[id], ef)
		requireSameJSON(t, estates[id], states[id])
	}
}

// FuzzSameAsTheExample: on any body, both copies accept or refuse alike,
// with the same reason, and a frame they accept merges into the same
// state.
func FuzzSameAsTheExample(f *testing.F) {
	sim := NewSimulator(20, 0.5, 1)
	for range 40 {
		_, body := sim.Next()
		f.Add(body)
	}
	f.Add([]byte(`{"deviceId":"d","latitude":1}`))
	f.Add([]byte(`[1]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !sameDecoding(t, body) {
			return
		}
		var fr Frame
		var efr pipeline.Frame
		_, _ = Decode(body, &fr), pipeline.Decode(body, &efr)
		var st DeviceState
		var est pipeline.DeviceState
		Merge(&st, fr)
		pipeline.Merge(&est, efr)
		requireSameJSON(t, est, st)
	})
}

// sameDecoding fails the test unless both copies decode body alike, and
// reports whether they accepted it.
func sameDecoding(t *testing.T, body []byte) bool {
	t.Helper()
	var f Frame
	var ef pipeline.Frame
	err, eerr := Decode(body, &f), pipeline.Decode(body, &ef)
	require.Equal(t, eerr == nil, err == nil, "%q", body)
	if err != nil {
		require.Equal(t, eerr.Error(), err.Error(), "%q", body)
		return false
	}
	requireSameJSON(t, ef, f)
	return true
}

func requireSameJSON(t *testing.T, want, got any) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g))
}
