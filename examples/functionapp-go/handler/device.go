package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// lowBattery is the battery level, in percent, below which a device is
// reported.
const lowBattery = 10

// reading is what a device sends.
type reading struct {
	DeviceID    string   `json:"deviceId"`
	Temperature *float64 `json:"temperature"`
	Battery     *float64 `json:"battery"`
	// Time is when the device measured, RFC 3339; when missing, ingest
	// takes the time the event was enqueued.
	Time string `json:"time,omitempty"`
}

// deviceIDs are ids that can name a document and a URL path segment.
var deviceIDs = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// parseReading reads and checks one reading.
func parseReading(body json.RawMessage) (reading, error) {
	var r reading
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("a reading is {\"deviceId\": \"d1\", \"temperature\": 21.5, \"battery\": 80, \"time\": \"2026-11-21T09:00:00Z\"}: %v", err)
	}
	switch {
	case !deviceIDs.MatchString(r.DeviceID):
		return r, fmt.Errorf("deviceId %q: give 1 to 64 letters, digits, '-' or '_'", r.DeviceID)
	case r.Temperature == nil:
		return r, errors.New("temperature: missing")
	case r.Battery == nil || *r.Battery < 0 || *r.Battery > 100:
		return r, errors.New("battery: give a percentage from 0 to 100")
	}
	if r.Time != "" {
		if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
			return r, fmt.Errorf("time %q: write RFC 3339, like 2026-11-21T09:00:00Z", r.Time)
		}
	}
	return r, nil
}

// device is the document kept for each device in the devices container:
// its latest reading.
type device struct {
	ID          string  `json:"id"`
	DeviceID    string  `json:"deviceId"` // the partition key, /deviceId
	Temperature float64 `json:"temperature"`
	Battery     float64 `json:"battery"`
	Time        string  `json:"time"`
	Status      string  `json:"status"` // "ok" or "low-battery"
}

func newDevice(r reading) device {
	status := "ok"
	if *r.Battery < lowBattery {
		status = "low-battery"
	}
	return device{ID: r.DeviceID, DeviceID: r.DeviceID, Temperature: *r.Temperature, Battery: *r.Battery, Time: r.Time, Status: status}
}

// newer reports whether a reading taken at a is newer than one taken at b
// (both valid RFC 3339; an equal time counts as newer, so that the later
// event wins).
func newer(a, b string) bool {
	ta, _ := time.Parse(time.RFC3339Nano, a)
	tb, _ := time.Parse(time.RFC3339Nano, b)
	return !ta.Before(tb)
}

// summary is the report's document in the reports container.
type summary struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"` // the partition key, /kind
	Devices     int      `json:"devices"`
	LowBattery  []string `json:"lowBattery"`
	Hottest     *hottest `json:"hottest"`
	GeneratedAt string   `json:"generatedAt"`
}

type hottest struct {
	DeviceID    string  `json:"deviceId"`
	Temperature float64 `json:"temperature"`
}

// utcTime makes an enqueued time RFC 3339: the Azure host writes them as
// .NET writes a UTC DateTime, without a zone ("2026-11-21T09:00:00.25").
// A time that is neither is returned as it is, for parseReading's check.
func utcTime(t string) string {
	if _, err := time.Parse(time.RFC3339Nano, t); err == nil {
		return t
	}
	if u, err := time.ParseInLocation("2006-01-02T15:04:05", t, time.UTC); err == nil {
		return u.Format(time.RFC3339Nano)
	}
	return t
}
