package demo

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

func TestMerge(t *testing.T) {
	t.Parallel()
	key := Frame{DeviceID: "d1", IsKeyFrame: true, Battery: ptr(80.0), FlightMode: ptr("flying"),
		Latitude: ptr(47.6), Longitude: ptr(-122.3), Altitude: ptr(120.0), GyrometerOK: ptr(true)}

	var st DeviceState
	Merge(&st, key)
	want := DeviceState{ID: "d1", DeviceID: "d1", Battery: ptr(80.0), FlightMode: ptr("flying"),
		Latitude: ptr(47.6), Longitude: ptr(-122.3), Altitude: ptr(120.0), GyrometerOK: ptr(true)}
	require.Equal(t, want, st, "a key frame sets every field, and the id")

	// A partial frame changes what it carries and keeps the rest.
	Merge(&st, Frame{DeviceID: "d1", Latitude: ptr(47.7), Longitude: ptr(-122.4), GyrometerOK: ptr(false)})
	want.Latitude, want.Longitude, want.GyrometerOK = ptr(47.7), ptr(-122.4), ptr(false)
	require.Equal(t, want, st)

	// A frame carrying nothing changes nothing.
	Merge(&st, Frame{DeviceID: "d1"})
	require.Equal(t, want, st)

	// A key frame replaces everything, even with a value equal to zero.
	Merge(&st, Frame{DeviceID: "d1", IsKeyFrame: true, Battery: ptr(0.0), FlightMode: ptr("landed"),
		Latitude: ptr(0.0), Longitude: ptr(0.0), Altitude: ptr(0.0), GyrometerOK: ptr(true)})
	require.Equal(t, DeviceState{ID: "d1", DeviceID: "d1", Battery: ptr(0.0), FlightMode: ptr("landed"),
		Latitude: ptr(0.0), Longitude: ptr(0.0), Altitude: ptr(0.0), GyrometerOK: ptr(true)}, st)

	// An (undecoded) key frame without a field makes it unknown.
	Merge(&st, Frame{DeviceID: "d1", IsKeyFrame: true, Battery: ptr(50.0)})
	require.Equal(t, DeviceState{ID: "d1", DeviceID: "d1", Battery: ptr(50.0)}, st)

	// A device whose first frame is partial knows only those fields.
	var fresh DeviceState
	Merge(&fresh, Frame{DeviceID: "d2", Battery: ptr(12.5)})
	require.Equal(t, DeviceState{ID: "d2", DeviceID: "d2", Battery: ptr(12.5)}, fresh)
	b, err := json.Marshal(fresh)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"d2","deviceId":"d2","battery":12.5,"partition":0,"sequence":0,"updated":"0001-01-01T00:00:00Z"}`, string(b),
		"unknown fields are absent from the document")

	// Merging does not write through the frame's values.
	f := Frame{DeviceID: "d2", Battery: ptr(10.0)}
	Merge(&fresh, f)
	Merge(&fresh, Frame{DeviceID: "d2", Battery: ptr(9.0)})
	assert.Equal(t, 10.0, *f.Battery)
	assert.Equal(t, 9.0, *fresh.Battery)
}

func TestDecodeValidFrames(t *testing.T) {
	t.Parallel()
	var f Frame
	require.NoError(t, Decode([]byte(`{"deviceId":"drone-0001","isKeyFrame":true,"battery":81.5,"flightMode":"flying",
		"latitude":47.61,"longitude":-122.33,"altitude":118.4,"gyrometerOK":true,"firmware":"2.1"}`), &f))
	require.Equal(t, Frame{DeviceID: "drone-0001", IsKeyFrame: true, Battery: ptr(81.5), FlightMode: ptr("flying"),
		Latitude: ptr(47.61), Longitude: ptr(-122.33), Altitude: ptr(118.4), GyrometerOK: ptr(true)}, f, "unknown fields are ignored")

	// Decode overwrites all of the frame.
	require.NoError(t, Decode([]byte(` {"deviceId":"drone-0002","latitude":-90,"longitude":180,"battery":null} `), &f))
	require.Equal(t, Frame{DeviceID: "drone-0002", Latitude: ptr(-90.0), Longitude: ptr(180.0)}, f, "null is not carried")

	require.NoError(t, Decode([]byte(`{"deviceId":"d"}`), &f), "a frame may carry no field")
	require.NoError(t, Decode([]byte(`{"deviceId":"d","battery":0,"altitude":-500,"flightMode":"état d'urgence"}`), &f))
}

func TestDecodeCorruptFrames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, reason string }{
		{``, "empty event"},
		{" \n", "empty event"},
		{`{"deviceId":"d1","battery":8`, "invalid JSON at byte 28: unexpected end of JSON input"},
		{"\xff\x00garbage", "invalid JSON at byte 1: invalid character 'ÿ' looking for beginning of value"},
		{`{"deviceId":"d1"}{}`, "invalid JSON at byte 18: invalid character '{' after top-level value"},
		{`["d1",80]`, "not a JSON object but a JSON array"},
		{`"d1"`, "not a JSON object but a JSON string"},
		{`null`, "not a JSON object but null"},
		{`{"battery":80}`, "no deviceId"},
		{`{"deviceId":""}`, "no deviceId"},
		{`{"deviceId":7}`, "deviceId: JSON number where a string belongs"},
		{`{"deviceId":"a/b"}`, `deviceId "a/b": want 1 to 128 bytes without '/', '\', '?', '#' or control characters`},
		{`{"deviceId":"a\tb"}`, `deviceId "a\tb": want 1 to 128 bytes without '/', '\', '?', '#' or control characters`},
		{`{"deviceId":"` + strings.Repeat("x", 129) + `"}`, `deviceId "` + strings.Repeat("x", 40) + `"…: want 1 to 128 bytes without '/', '\', '?', '#' or control characters`},
		{`{"deviceId":"d1","battery":"low"}`, "battery: JSON string where a number belongs"},
		{`{"deviceId":"d1","battery":1e999}`, "battery: JSON number 1e999 where a number belongs"},
		{`{"deviceId":"d1","gyrometerOK":"yes"}`, "gyrometerOK: JSON string where true or false belongs"},
		{`{"deviceId":"d1","isKeyFrame":1}`, "isKeyFrame: JSON number where true or false belongs"},
		{`{"deviceId":"d1","flightMode":3}`, "flightMode: JSON number where a string belongs"},
		{`{"deviceId":"d1","battery":100.5}`, "battery 100.5: want 0 to 100"},
		{`{"deviceId":"d1","battery":-1}`, "battery -1: want 0 to 100"},
		{`{"deviceId":"d1","latitude":91}`, "latitude 91: want -90 to 90"},
		{`{"deviceId":"d1","longitude":-180.5}`, "longitude -180.5: want -180 to 180"},
		{`{"deviceId":"d1","altitude":20000.1}`, "altitude 20000.1: want -500 to 20000"},
		{`{"deviceId":"d1","flightMode":""}`, `flightMode "": want 1 to 32 printable characters`},
		{`{"deviceId":"d1","flightMode":"a\u0000"}`, `flightMode "a\x00": want 1 to 32 printable characters`},
		{`{"deviceId":"d1","isKeyFrame":true,"battery":50,"latitude":1,"longitude":2,"altitude":3}`, "key frame without flightMode, gyrometerOK"},
		{`{"deviceId":"d1","isKeyFrame":true,"battery":500,"flightMode":"x","latitude":1,"longitude":2,"altitude":3,"gyrometerOK":true}`, "battery 500: want 0 to 100"},
	} {
		var f Frame
		err := Decode([]byte(tc.body), &f)
		if assert.Error(t, err, "%q", tc.body) {
			assert.Equal(t, tc.reason, err.Error(), "%q", tc.body)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"deviceId":"drone-0001","isKeyFrame":true,"battery":81.5,"flightMode":"flying","latitude":47.61,"longitude":-122.33,"altitude":118.4,"gyrometerOK":true}`))
	f.Add([]byte(`{"deviceId":"d","latitude":1}`))
	f.Add([]byte(`[1]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var fr Frame
		if err := Decode(body, &fr); err != nil {
			if err.Error() == "" {
				t.Fatal("an empty reason")
			}
			return
		}
		// A valid frame names a document, and merges into one that encodes.
		if !ValidDeviceID(fr.DeviceID) {
			t.Fatalf("valid frame with device id %q", fr.DeviceID)
		}
		var st DeviceState
		Merge(&st, fr)
		if _, err := json.Marshal(st); err != nil {
			t.Fatal(err)
		}
	})
}
