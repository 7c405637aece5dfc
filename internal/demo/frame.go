package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Frame is one telemetry event as a device sends it, for example
//
//	{"deviceId":"drone-0042","isKeyFrame":true,"battery":81.5,"flightMode":"flying",
//	 "latitude":47.6105,"longitude":-122.3301,"altitude":118.4,"gyrometerOK":true}
//
// A key frame carries every field; other frames carry the device id and
// only some of the fields (a nil field is not carried), and leave the rest
// of the device's state as it is.
type Frame struct {
	DeviceID   string `json:"deviceId"`
	IsKeyFrame bool   `json:"isKeyFrame"`
	// Battery is the charge left, in percent (0 to 100).
	Battery *float64 `json:"battery,omitempty"`
	// FlightMode is what the drone is doing: "landed", "takeoff",
	// "flying", "hovering", "returning", "landing"… (any 1 to 32
	// printable characters).
	FlightMode *string `json:"flightMode,omitempty"`
	// Latitude and Longitude are in degrees, Altitude in metres.
	Latitude  *float64 `json:"latitude,omitempty"`
	Longitude *float64 `json:"longitude,omitempty"`
	Altitude  *float64 `json:"altitude,omitempty"`
	// GyrometerOK is the health of the gyrometer.
	GyrometerOK *bool `json:"gyrometerOK,omitempty"`
}

// DeviceState is a device's document in the container: its latest known
// state, one document per device, partitioned by device id. A field no
// frame has carried yet is absent (nil).
type DeviceState struct {
	// ID is the document id, the device id.
	ID string `json:"id"`
	// DeviceID is the partition key (path /deviceId).
	DeviceID    string   `json:"deviceId"`
	Battery     *float64 `json:"battery,omitempty"`
	FlightMode  *string  `json:"flightMode,omitempty"`
	Latitude    *float64 `json:"latitude,omitempty"`
	Longitude   *float64 `json:"longitude,omitempty"`
	Altitude    *float64 `json:"altitude,omitempty"`
	GyrometerOK *bool    `json:"gyrometerOK,omitempty"`
	// Partition and Sequence locate in the hub the last event merged into
	// this state; Updated is when that event was enqueued.
	Partition int       `json:"partition"`
	Sequence  int64     `json:"sequence"`
	Updated   time.Time `json:"updated"`
}

// Merge applies a frame to a device's state. A key frame is the device's
// whole state: it replaces every field (a field it lacks becomes
// unknown, though a decoded key frame lacks none). Any other frame
// replaces the fields it carries and keeps the others. A state without
// an id takes the frame's device id. Merge does not look at the event's
// position (the caller sets Partition, Sequence and Updated), and shares
// the frame's field values with the state: neither is ever written
// through.
func Merge(state *DeviceState, f Frame) {
	if state.ID == "" {
		state.ID, state.DeviceID = f.DeviceID, f.DeviceID
	}
	if f.IsKeyFrame {
		state.Battery, state.FlightMode, state.GyrometerOK = f.Battery, f.FlightMode, f.GyrometerOK
		state.Latitude, state.Longitude, state.Altitude = f.Latitude, f.Longitude, f.Altitude
		return
	}
	keep(&state.Battery, f.Battery)
	keep(&state.FlightMode, f.FlightMode)
	keep(&state.Latitude, f.Latitude)
	keep(&state.Longitude, f.Longitude)
	keep(&state.Altitude, f.Altitude)
	keep(&state.GyrometerOK, f.GyrometerOK)
}

// keep sets *dst to v when v is carried.
func keep[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}

// Bounds of a valid frame.
const (
	MaxDeviceIDBytes   = 128
	MaxFlightModeBytes = 32
	MinAltitude        = -500.0  // metres: below the Dead Sea shore is a broken sensor
	MaxAltitude        = 20000.0 // metres
)

// Decode decodes an event's body into f, overwriting all of it, and
// checks it. A frame is corrupt, and Decode says why, when:
//
//   - the body is empty, not JSON ("invalid JSON at byte 12: …", the
//     byte, counted from 1, where reading stopped: garbage, a truncated
//     frame), or JSON but not an object;
//   - a field has the wrong JSON type ("battery: JSON string where a
//     number belongs");
//   - deviceId is missing or empty, longer than 128 bytes, or has '/',
//     '\', '?', '#' or control characters (it must name a document);
//   - a value is out of range: battery 0 to 100, latitude -90 to 90,
//     longitude -180 to 180, altitude -500 to 20000, flightMode 1 to 32
//     printable characters;
//   - it is a key frame without one of the fields.
//
// Unknown fields are ignored, and so is a null field (not carried).
// Field names match as encoding/json matches them (case-insensitively).
func Decode(body []byte, f *Frame) error {
	*f = Frame{}
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("empty event")
	}
	if err := json.Unmarshal(body, f); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, se.Error())
		}
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			if te.Field == "" {
				return fmt.Errorf("not a JSON object but a JSON %s", te.Value)
			}
			return fmt.Errorf("%s: JSON %s where %s belongs", te.Field, te.Value, jsonKind(te.Type))
		}
		return fmt.Errorf("invalid frame: %v", err)
	}
	if bytes.TrimSpace(body)[0] != '{' {
		return errors.New("not a JSON object but null")
	}
	return f.check()
}

// check checks a decoded frame.
func (f *Frame) check() error {
	switch {
	case f.DeviceID == "":
		return errors.New("no deviceId")
	case !ValidDeviceID(f.DeviceID):
		return fmt.Errorf("deviceId %s: want 1 to %d bytes without '/', '\\', '?', '#' or control characters", quoteShort(f.DeviceID), MaxDeviceIDBytes)
	}
	if f.IsKeyFrame {
		var missing []string
		for _, m := range []struct {
			name    string
			carried bool
		}{
			{"battery", f.Battery != nil}, {"flightMode", f.FlightMode != nil}, {"latitude", f.Latitude != nil},
			{"longitude", f.Longitude != nil}, {"altitude", f.Altitude != nil}, {"gyrometerOK", f.GyrometerOK != nil},
		} {
			if !m.carried {
				missing = append(missing, m.name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("key frame without %s", strings.Join(missing, ", "))
		}
	}
	if err := inRange("battery", f.Battery, 0, 100); err != nil {
		return err
	}
	if err := inRange("latitude", f.Latitude, -90, 90); err != nil {
		return err
	}
	if err := inRange("longitude", f.Longitude, -180, 180); err != nil {
		return err
	}
	if err := inRange("altitude", f.Altitude, MinAltitude, MaxAltitude); err != nil {
		return err
	}
	if m := f.FlightMode; m != nil && !validFlightMode(*m) {
		return fmt.Errorf("flightMode %s: want 1 to %d printable characters", quoteShort(*m), MaxFlightModeBytes)
	}
	return nil
}

func inRange(name string, v *float64, lo, hi float64) error {
	if v != nil && (*v < lo || *v > hi) {
		return fmt.Errorf("%s %g: want %g to %g", name, *v, lo, hi)
	}
	return nil
}

// ValidDeviceID reports whether id is a device id a frame may carry: 1 to
// 128 bytes of UTF-8 without '/', '\', '?', '#' (it names a document, and
// appears in the URL of the device route) or control characters.
func ValidDeviceID(id string) bool {
	if id == "" || len(id) > MaxDeviceIDBytes || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if r == '/' || r == '\\' || r == '?' || r == '#' || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func validFlightMode(m string) bool {
	if m == "" || len(m) > MaxFlightModeBytes {
		return false
	}
	for _, r := range m {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// quoteShort quotes s for an error, cut to 40 bytes.
func quoteShort(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q…", s[:40])
	}
	return fmt.Sprintf("%q", s)
}

// jsonKind names what a Go type takes in JSON.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	}
	return "another value"
}
