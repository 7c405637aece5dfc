package pipeline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice"
)

// KeyFrameEvery is how often a simulated device sends a key frame: its
// 1st, 11th, 21st… frames carry every field.
const KeyFrameEvery = 10

// flightModes are the simulated drones' modes, in the order they go
// through them.
var flightModes = [...]string{"landed", "takeoff", "flying", "hovering", "returning", "landing"}

const (
	landed = iota
	takeoff
	flying
	hovering
	returning
	landing
)

// Kinds of corrupt events the simulator makes, each as often.
const (
	faultNone = iota
	faultTruncated
	faultGarbage
	faultNoDeviceID
	faultOutOfRange
	faultWrongType
	faultKeyFrameIncomplete
	faultNotObject
	faultKinds
)

// Simulator makes telemetry of a fleet of drones: each frame is of a
// device picked at random, whose flight it advances (take-off, flight,
// return, landing, charging). A device's 1st, 11th, 21st… frames are key
// frames; the others carry its position, its battery every third frame,
// and its flight mode and gyrometer health when they changed. A share of
// the events are corrupt, in equal parts: truncated frames, garbage bytes,
// frames without deviceId, a battery over 100, a battery that is a string,
// a key frame without its altitude, and a JSON array.
//
// The frames are the same for the same arguments. A Simulator is not safe
// for concurrent use.
type Simulator struct {
	rng     *rand.Rand
	corrupt float64
	devices []simDevice
}

type simDevice struct {
	id                     string
	frames                 int64
	battery, lat, lon, alt float64
	homeLat, homeLon       float64
	mode                   int
	gyroOK                 bool
	// What the last frame said, so that partial frames carry changes.
	sentMode int
	sentGyro bool
}

// NewSimulator makes a simulator of devices drones (at least 1), a share
// corruptShare (0 to 1) of whose events are corrupt, seeded with seed.
// The drones are named drone-0001, drone-0002…
func NewSimulator(devices int, corruptShare float64, seed uint64) *Simulator {
	devices = max(devices, 1)
	s := &Simulator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), corrupt: min(max(corruptShare, 0), 1)}
	width := max(4, len(strconv.Itoa(devices)))
	s.devices = make([]simDevice, devices)
	for i := range s.devices {
		d := &s.devices[i]
		d.id = fmt.Sprintf("drone-%0*d", width, i+1)
		// Around Seattle, as the reference implementation's drones.
		d.homeLat, d.homeLon = 47.6+(s.rng.Float64()-0.5)*0.2, -122.33+(s.rng.Float64()-0.5)*0.2
		d.lat, d.lon = d.homeLat, d.homeLon
		d.battery = 40 + s.rng.Float64()*60
		d.gyroOK, d.sentGyro = true, true
	}
	return s
}

// DeviceIDs are the simulated devices' ids.
func (s *Simulator) DeviceIDs() []string {
	ids := make([]string, len(s.devices))
	for i := range s.devices {
		ids[i] = s.devices[i].id
	}
	return ids
}

// Next makes the next event: the device id, to publish it with as its
// partition key, and the body.
func (s *Simulator) Next() (deviceID string, body []byte) {
	d := s.next()
	return s.devices[d].id, s.body(d)
}

// next advances a random device and returns its index.
func (s *Simulator) next() int {
	i := s.rng.IntN(len(s.devices))
	s.devices[i].step(s.rng)
	return i
}

// body encodes device i's next frame, or a corrupt event.
func (s *Simulator) body(i int) []byte {
	d := &s.devices[i]
	d.frames++
	key := d.frames%KeyFrameEvery == 1
	fault := faultNone
	if s.corrupt > 0 && s.rng.Float64() < s.corrupt {
		fault = 1 + s.rng.IntN(faultKinds-1)
	}
	b := make([]byte, 0, 200)
	switch fault {
	case faultGarbage:
		b = b[:8+s.rng.IntN(33)]
		for j := range b {
			b[j] = byte(s.rng.Uint32())
		}
		b[0] |= 0x80 // never the start of a JSON value
	case faultNotObject:
		b = append(b, `["`...)
		b = append(b, d.id...)
		b = append(b, `",`...)
		b = strconv.AppendFloat(b, round(d.battery, 1), 'f', -1, 64)
		b = append(b, ']')
	default:
		b = s.encode(b, d, key, fault)
		if fault == faultTruncated {
			b = b[:1+s.rng.IntN(len(b)-1)]
		}
	}
	// The device sent it, corrupt or not.
	if key || fault == faultKeyFrameIncomplete {
		d.sentMode, d.sentGyro = d.mode, d.gyroOK
	}
	return b
}

// encode appends d's frame, with fault.
func (s *Simulator) encode(b []byte, d *simDevice, key bool, fault int) []byte {
	if fault == faultKeyFrameIncomplete {
		key = true
	}
	b = append(b, '{')
	if fault != faultNoDeviceID {
		b = append(b, `"deviceId":"`...)
		b = append(b, d.id...)
		b = append(b, `",`...)
	}
	b = append(b, `"isKeyFrame":`...)
	b = strconv.AppendBool(b, key)
	switch {
	case fault == faultOutOfRange:
		b = appendNumber(b, "battery", 100.1+float64(s.rng.IntN(1000))/10, 1)
	case fault == faultWrongType:
		b = append(b, `,"battery":"low"`...)
	case key || d.frames%3 == 0:
		b = appendNumber(b, "battery", d.battery, 1)
	}
	if key || d.mode != d.sentMode {
		b = append(b, `,"flightMode":"`...)
		b = append(b, flightModes[d.mode]...)
		b = append(b, '"')
		d.sentMode = d.mode
	}
	b = appendNumber(b, "latitude", d.lat, 6)
	b = appendNumber(b, "longitude", d.lon, 6)
	if fault != faultKeyFrameIncomplete {
		b = appendNumber(b, "altitude", d.alt, 1)
	}
	if key || d.gyroOK != d.sentGyro {
		b = append(b, `,"gyrometerOK":`...)
		b = strconv.AppendBool(b, d.gyroOK)
		d.sentGyro = d.gyroOK
	}
	return append(b, '}')
}

func appendNumber(b []byte, name string, v float64, decimals int) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return strconv.AppendFloat(b, round(v, decimals), 'f', -1, 64)
}

func round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// step advances the device's flight by one frame.
func (d *simDevice) step(rng *rand.Rand) {
	switch d.mode {
	case landed:
		d.alt = 0
		d.battery = min(100, d.battery+0.5)
		if d.battery > 30 && rng.Float64() < 0.05 {
			d.mode = takeoff
		}
	case takeoff:
		d.alt += 10 + rng.Float64()*10
		if d.alt >= 100 {
			d.mode = flying
		}
	case flying, hovering:
		if d.mode == flying {
			d.lat += (rng.Float64() - 0.5) * 0.001
			d.lon += (rng.Float64() - 0.5) * 0.001
		}
		d.alt = min(150, max(80, d.alt+(rng.Float64()-0.5)*4))
		switch r := rng.Float64(); {
		case d.battery < 25 || r < 0.01:
			d.mode = returning
		case d.mode == flying && r < 0.04:
			d.mode = hovering
		case d.mode == hovering && r < 0.2:
			d.mode = flying
		}
	case returning:
		d.lat += (d.homeLat - d.lat) * 0.3
		d.lon += (d.homeLon - d.lon) * 0.3
		if math.Abs(d.lat-d.homeLat)+math.Abs(d.lon-d.homeLon) < 0.0005 {
			d.mode = landing
		}
	case landing:
		d.alt = max(0, d.alt-10-rng.Float64()*10)
		if d.alt == 0 {
			d.mode = landed
		}
	}
	if d.mode != landed {
		d.battery = max(0, d.battery-0.05-rng.Float64()*0.1)
	}
	d.lat, d.lon = min(90, max(-90, d.lat)), min(180, max(-180, d.lon))
	switch {
	case d.gyroOK && rng.Float64() < 0.002:
		d.gyroOK = false
	case !d.gyroOK && rng.Float64() < 0.1:
		d.gyroOK = true
	}
}

// publishers publish concurrently in Run; a device is always published by
// the same one, so its frames stay in order.
const publishers = 4

// maxPublish bounds the events of one Publish call in Run.
const maxPublish = 500

// Run publishes the simulator's events to hub at about eventsPerSec (0 or
// less: as fast as the hub takes them), each with its device id as the
// partition key, until ctx ends, and calls onSent (if set) with the
// number of events of each publish once they are stored; onSent may be
// called from several goroutines at once. Each device's frames are
// published in the order they are made. Run returns nil when ctx ends, or
// the first publish error.
func (s *Simulator) Run(ctx context.Context, app *sluice.App, hub string, eventsPerSec int, onSent func(n int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		queues   [publishers]chan []sluice.Event
	)
	for w := range queues {
		queues[w] = make(chan []sluice.Event, 2)
		wg.Go(func() {
			for batch := range queues[w] {
				if ctx.Err() != nil {
					continue
				}
				if _, err := app.Publish(ctx, hub, batch...); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = fmt.Errorf("publish to %s: %w", hub, err); cancel() })
					}
					continue
				}
				if onSent != nil {
					onSent(len(batch))
				}
			}
		})
	}
	s.generate(ctx, eventsPerSec, func(w int, batch []sluice.Event) bool {
		select {
		case queues[w] <- batch:
			return true
		case <-ctx.Done():
			return false
		}
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait() // firstErr is set, if ever, before this returns
	return firstErr
}

// generate makes events at about eventsPerSec (0: as fast as send takes
// them) until ctx ends or send fails, and hands them to send in batches,
// each for the publisher of its devices.
func (s *Simulator) generate(ctx context.Context, eventsPerSec int, send func(w int, batch []sluice.Event) bool) {
	// Each publish is stored (and by default fsynced) on its own: at a low
	// rate, gather a tick's events into fewer, larger publishes.
	tick := 10 * time.Millisecond
	if eventsPerSec > 0 {
		tick = min(max(time.Second*publishers*50/time.Duration(eventsPerSec), 10*time.Millisecond), 100*time.Millisecond)
	}
	var pending [publishers][]sluice.Event
	start, made := time.Now(), 0
	for {
		due := publishers * maxPublish
		if eventsPerSec > 0 {
			want := int(time.Since(start).Seconds() * float64(eventsPerSec))
			// Behind by more than a tenth of a second (the hub is slower
			// than the rate): drop the debt rather than burst.
			made = max(made, want-eventsPerSec/10)
			due = want - made
		}
		made += due
		for range due {
			i := s.next()
			w := i % publishers
			pending[w] = append(pending[w], sluice.Event{Body: s.body(i), PartitionKey: s.devices[i].id})
			if len(pending[w]) == maxPublish {
				if !send(w, pending[w]) {
					return
				}
				pending[w] = nil
			}
		}
		for w := range pending {
			if len(pending[w]) > 0 {
				if !send(w, pending[w]) {
					return
				}
				pending[w] = nil
			}
		}
		if eventsPerSec > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(tick):
			}
		} else if ctx.Err() != nil {
			return
		}
	}
}
