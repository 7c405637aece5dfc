package demo

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/examples/telemetry/pipeline"
)

// TestSameAsTheExample: examples/telemetry/pipeline shows this demo as a
// user writes it, so the two must do the same: the same defaults, the
// same simulated frames, the same decoding (problems included) and the
// same merged states.
func TestSameAsTheExample(t *testing.T) {
	t.Parallel()
	o, eo := Options{}.WithDefaults(), pipeline.Options{}.WithDefaults()
	require.Equal(t, []any{o.Hub, o.Partitions, o.Retention, o.Container, o.Function, o.MaxBatchSize, o.Route, o.StateFunction},
		[]any{eo.Hub, eo.Partitions, eo.Retention, eo.Container, eo.Function, eo.MaxBatchSize, eo.Route, eo.StateFunction})
	require.Equal(t, ReasonPrefix, pipeline.ReasonPrefix)

	sim, esim := NewSimulator(200, 0.05, 3), pipeline.NewSimulator(200, 0.05, 3)
	require.Equal(t, sim.DeviceIDs(), esim.DeviceIDs())
	states := map[string]*DeviceState{}
	estates := map[string]*pipeline.DeviceState{}
	for range 5000 {
		id, body := sim.Next()
		eid, ebody := esim.Next()
		require.Equal(t, id, eid)
		require.Equal(t, string(body), string(ebody))
		var f Frame
		var ef pipeline.Frame
		err, eerr := Decode(body, &f), pipeline.Decode(body, &ef)
		require.Equal(t, err == nil, eerr == nil, string(body))
		if err != nil {
			require.Equal(t, err.Error(), eerr.Error())
			continue
		}
		if states[id] == nil {
			states[id], estates[id] = &DeviceState{}, &pipeline.DeviceState{}
		}
		Merge(states[id], f)
		pipeline.Merge(estates[id], ef)
		got, err := json.Marshal(states[id])
		require.NoError(t, err)
		want, err := json.Marshal(estates[id])
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(got))
	}
}
