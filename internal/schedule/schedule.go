package schedule

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Schedule says when a timer fires.
type Schedule interface {
	// Next is the first occurrence strictly after t, or the zero time if
	// there is none (a cron schedule for February 30th).
	Next(t time.Time) time.Time
	// String is the expression as given.
	String() string
}

// Parse reads a timer trigger's schedule: either a six-field NCRONTAB
// expression, "{second} {minute} {hour} {day} {month} {day-of-week}", or a
// .NET TimeSpan interval such as "00:05:00" (an expression with a ':' is a
// TimeSpan, since no cron field can hold one). loc is the time zone the
// cron fields are read in; nil means UTC. loc does not affect a TimeSpan,
// which counts from the Unix epoch (see [Interval]).
//
// The cron dialect is NCrontab's, which Azure Functions uses; see [Cron]
// for the fields and where this parser is stricter than NCrontab. A
// five-field expression is refused with the six-field form to write
// instead, as Azure's documentation asks for the seconds field.
func Parse(expr string, loc *time.Location) (Schedule, error) {
	if strings.Contains(expr, ":") {
		return parseInterval(expr)
	}
	return parseCron(expr, loc)
}

// Interval is a TimeSpan schedule. It fires at every whole multiple of its
// interval counted from the Unix epoch (1970-01-01T00:00:00Z): "00:05:00"
// fires at :00, :05, :10… of every hour, and "00:07:00" at epoch + 7k
// minutes. Counting from a fixed origin, rather than from when the host
// started as Azure does, lets every instance of an app agree on the
// occurrences, so one of them can claim each and the others skip it.
type Interval struct {
	expr  string
	every time.Duration
}

var _ Schedule = (*Interval)(nil)

func parseInterval(expr string) (*Interval, error) {
	d, err := ParseTimeSpan(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	if d <= 0 {
		return nil, fmt.Errorf("schedule %q: the interval is zero; a TimeSpan schedule needs a positive interval such as 00:05:00", expr)
	}
	return &Interval{expr: expr, every: d}, nil
}

// Every is the time between two occurrences.
func (s *Interval) Every() time.Duration { return s.every }

// String is the expression as given.
func (s *Interval) String() string { return s.expr }

// Next is the first multiple of the interval after the Unix epoch that is
// strictly after t, in t's location.
func (s *Interval) Next(t time.Time) time.Time {
	t = t.Round(0) // drop the monotonic reading: the result is a wall time
	return t.Add(s.every - floorMod(t, s.every))
}

// floorMod is (t - epoch) mod d, in [0, d), for any t a time.Time can hold:
// the count of nanoseconds since the epoch needs 128 bits far from 1970.
func floorMod(t time.Time, d time.Duration) time.Duration {
	sec, nsec := t.Unix(), uint64(t.Nanosecond())
	neg := sec < 0
	if neg {
		// -(sec*1e9 + nsec) = (-sec-1)*1e9 + (1e9 - nsec), both parts non-negative.
		sec, nsec = -sec-1, 1e9-nsec
	}
	hi, lo := bits.Mul64(uint64(sec), 1e9)
	lo, carry := bits.Add64(lo, nsec, 0)
	hi += carry
	_, rem := bits.Div64(hi%uint64(d), lo, uint64(d))
	if neg && rem != 0 {
		rem = uint64(d) - rem
	}
	return time.Duration(rem)
}

// Cron is a six-field NCRONTAB schedule read in a time zone.
//
// Each field is "*", a value, a range "a-b", a step "*/n", "a-b/n" or "a/n"
// (from a to the field's largest value), or a comma-separated list of
// those. Seconds and minutes run 0-59, hours 0-23, days 1-31, months 1-12
// or JAN-DEC, days of the week 0-6 or SUN-SAT with 0 as Sunday (7 is
// Sunday too). Names are case-insensitive and may be written in full or
// shortened to three or more letters ("Sept", "thu").
//
// As in NCrontab, and unlike Vixie cron, a day must match both the day
// and the day-of-week fields: "0 0 0 13 * FRI" fires on Friday the 13th
// only. NCrontab's GetNextOccurrence finds the next day the day field
// allows and then tests the weekday; its own tests expect
// "45 16 1 * Mon" to go from 2003-01-01 to Monday 2003-09-01.
//
// Where NCrontab quietly accepts something that is probably a mistake this
// parser refuses it, naming the field: a reversed range "5-1" (NCrontab
// swaps the ends), a step of 0 (NCrontab uses 1), name abbreviations
// shorter than three letters ("J" is January to NCrontab).
//
// Occurrences are wall-clock readings in the location, so they follow its
// daylight saving changes:
//   - a reading the clock skips when it springs forward does not happen,
//     and the schedule does not fire for it;
//   - a reading the clock shows twice when it falls back fires once, on
//     its first showing, unless the schedule runs at intervals within the
//     day, in which case it keeps firing through the repeated hour. The
//     test is Azure's (CronSchedule.IsInterval): the second, minute or
//     hour field allows two adjacent values. "0 30 1 * * *" fires at the
//     first 01:30 only; "0 */15 * * * *" fires at both 01:15s.
type Cron struct {
	expr string
	loc  *time.Location
	// Sets of allowed values, bit v for value v. Sunday is bit 0 of weekday.
	second, minute, hour, day, month, weekday uint64
	// repeats says the schedule fires in both passes of a repeated hour.
	repeats bool
	// never says no month has one of the allowed days, so Next needn't look.
	never bool
}

var _ Schedule = (*Cron)(nil)

// String is the expression as given.
func (s *Cron) String() string { return s.expr }

// Location is the time zone the fields are read in.
func (s *Cron) Location() *time.Location { return s.loc }

// field describes one of the six positions of a cron expression.
type field struct {
	name     string
	min, max int
	names    []string // full lowercase names of min, min+1, …
	kind     string   // how the names are described in errors
}

var fields = [6]field{
	{name: "second", min: 0, max: 59},
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day", min: 1, max: 31},
	{name: "month", min: 1, max: 12, kind: "a month name (JAN-DEC)", names: []string{
		"january", "february", "march", "april", "may", "june",
		"july", "august", "september", "october", "november", "december"}},
	{name: "day-of-week", min: 0, max: 6, kind: "a day name (SUN-SAT)", names: []string{
		"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}},
}

func parseCron(expr string, loc *time.Location) (*Cron, error) {
	parts := strings.Fields(expr)
	switch n := len(parts); {
	case n == 0:
		return nil, fmt.Errorf("schedule %q is empty: write six NCRONTAB fields, {second} {minute} {hour} {day} {month} {day-of-week}, or a TimeSpan such as 00:05:00", expr)
	case n == 5:
		return nil, fmt.Errorf("schedule %q has 5 fields; NCRONTAB needs 6, seconds first: %q", expr, "0 "+strings.Join(parts, " "))
	case n == 7:
		return nil, fmt.Errorf("schedule %q has 7 fields; NCRONTAB needs 6, {second} {minute} {hour} {day} {month} {day-of-week}, and has no year field", expr)
	case n != 6:
		return nil, fmt.Errorf("schedule %q has %d fields; NCRONTAB needs 6: {second} {minute} {hour} {day} {month} {day-of-week}", expr, n)
	}
	var sets [6]uint64
	for i, p := range parts {
		set, err := fields[i].parse(p)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", expr, err)
		}
		sets[i] = set
	}
	if loc == nil {
		loc = time.UTC
	}
	s := &Cron{
		expr: expr, loc: loc,
		second: sets[0], minute: sets[1], hour: sets[2], day: sets[3], month: sets[4], weekday: sets[5],
	}
	s.repeats = adjacent(s.second) || adjacent(s.minute) || adjacent(s.hour)
	s.never = true
	for m := 1; m <= 12; m++ {
		// February is allowed its 29th: leap years come, and with them every weekday.
		longest := uint(daysIn(2024, m))
		if has(s.month, m) && s.day&(1<<(longest+1)-1) != 0 {
			s.never = false
		}
	}
	return s, nil
}

// parse reads one field: a comma-separated list of items.
func (f *field) parse(text string) (uint64, error) {
	var set uint64
	for item := range strings.SplitSeq(text, ",") {
		if item == "" {
			return 0, fmt.Errorf("%s list %q has an empty item", f.name, text)
		}
		bits, err := f.parseItem(item)
		if err != nil {
			return 0, err
		}
		set |= bits
	}
	return set, nil
}

// parseItem reads "*", "v", "a-b", each optionally followed by "/step".
func (f *field) parseItem(item string) (uint64, error) {
	body, stepText, stepped := strings.Cut(item, "/")
	step := 1
	if stepped {
		switch {
		case strings.Contains(stepText, "/"):
			return 0, fmt.Errorf("%s %q has more than one '/'", f.name, item)
		case !digits(stepText):
			return 0, fmt.Errorf("%s step in %q is not a number", f.name, item)
		}
		n, err := strconv.Atoi(stepText)
		if err != nil || n > 1<<20 {
			return 0, fmt.Errorf("%s step in %q is too large", f.name, item)
		}
		if n == 0 {
			return 0, fmt.Errorf("%s step in %q must be 1 or more", f.name, item)
		}
		step = n
	}
	var lo, hi int
	switch a, b, isRange := strings.Cut(body, "-"); {
	case body == "*":
		lo, hi = f.min, f.max
	case body == "?":
		return 0, fmt.Errorf("%s %q is Quartz syntax, which NCRONTAB does not have: write *", f.name, item)
	case isRange:
		var err error
		if lo, err = f.value(a, item); err != nil {
			return 0, err
		}
		if hi, err = f.value(b, item); err != nil {
			return 0, err
		}
		if lo > hi {
			return 0, fmt.Errorf("%s range %q runs backwards; ranges do not wrap around, so write it as two (%s,%s) or swap its ends", f.name, body, span(lo, f.top()), span(f.min, hi))
		}
	default:
		var err error
		if lo, err = f.value(body, item); err != nil {
			return 0, err
		}
		hi = lo
		if stepped {
			hi = max(lo, f.max)
		}
	}
	var set uint64
	for v := lo; v <= hi; v += step {
		set |= 1 << uint(v)
	}
	if f.top() != f.max {
		// Day-of-week's 7 is another name for Sunday, bit 0.
		set = set&^(1<<7) | (set>>7)&1
	}
	return set, nil
}

// span writes the range a-b, or a alone when b is a.
func span(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return strconv.Itoa(a) + "-" + strconv.Itoa(b)
}

// top is the largest value the field accepts: 7 for day-of-week, whose 7 is
// another Sunday, and max for the rest.
func (f *field) top() int {
	if f.name == "day-of-week" {
		return 7
	}
	return f.max
}

// value reads a number or a name within item.
func (f *field) value(text, item string) (int, error) {
	if text == "" {
		return 0, fmt.Errorf("%s %q is missing a number", f.name, item)
	}
	if digits(text) {
		n, err := strconv.Atoi(text)
		if err != nil || n < f.min || n > f.top() {
			extra := ""
			if f.top() != f.max {
				extra = " (7 is Sunday too)"
			}
			return 0, fmt.Errorf("%s %s is out of range %d-%d%s", f.name, text, f.min, f.max, extra)
		}
		return n, nil
	}
	if f.names != nil && len(text) >= 3 {
		lower := strings.ToLower(text)
		for i, name := range f.names {
			if strings.HasPrefix(name, lower) {
				return f.min + i, nil
			}
		}
	}
	if f.names != nil {
		return 0, fmt.Errorf("%s %q is not a number or %s", f.name, text, f.kind)
	}
	return 0, fmt.Errorf("%s %q is not a number", f.name, text)
}

// Next is the first occurrence strictly after t, in the schedule's
// location, or the zero time if the fields can never all match.
//
// Occurrences fall on whole seconds. The search walks the location's zone
// periods (spans of constant UTC offset, from Time.ZoneBounds); within one,
// the wall clock is the instant plus the offset, so finding the next
// occurrence is finding the next matching wall reading, which nextWall does
// by skipping whole months, days, hours and minutes that cannot match.
func (s *Cron) Next(t time.Time) time.Time {
	if s.never {
		return time.Time{}
	}
	after := t.Unix() + 1 // Unix rounds down, so this is the first whole second after t
	var lastFrom, lastWall int64
	searched := false
	for range maxZoneHops {
		at := time.Unix(after, 0).In(s.loc)
		_, offset := at.Zone()
		start, end := at.ZoneBounds()
		off := int64(offset)
		from := after + off
		if !s.repeats && !start.IsZero() {
			// The clock fell back at start: readings below start+before were
			// shown in the previous period and already had their turn.
			_, before := start.Add(-time.Second).In(s.loc).Zone()
			if shown := start.Unix() + int64(before); from < shown {
				from = shown
			}
		}
		wall := lastWall
		if !searched || from < lastFrom || from > lastWall {
			// The last answer is still the first match at or after from
			// when from lies between the last search's start and answer.
			var ok bool
			if wall, ok = s.nextWall(from); !ok {
				return time.Time{}
			}
			lastFrom, lastWall, searched = from, wall, true
		}
		if next := wall - off; end.IsZero() || next < end.Unix() {
			return time.Unix(next, 0).In(s.loc)
		}
		after = end.Unix()
	}
	return time.Time{}
}

const (
	// searchYears bounds nextWall. The Gregorian calendar repeats every 400
	// years, weekdays included, so a day that matches at all matches within
	// that span; Parse has already set aside schedules that never match.
	searchYears = 401
	// maxZoneHops bounds Next's walk over zone periods, of which a zone
	// with daylight saving has two a year.
	maxZoneHops = 4 * searchYears
)

// nextWall is the first wall-clock reading at or after from that the fields
// match. Readings are counted in seconds like Unix time, as if the wall
// clock were UTC.
func (s *Cron) nextWall(from int64) (int64, bool) {
	t := time.Unix(from, 0).UTC()
	y, mon, d := t.Date()
	h, mi, sec := t.Clock()
	mo := int(mon)
	last := y + searchYears

	nextMonth := func() {
		mo, d, h, mi, sec = mo+1, 1, 0, 0, 0
		if mo > 12 {
			y, mo = y+1, 1
		}
	}
	nextDay := func() { d, h, mi, sec = d+1, 0, 0, 0 } // the month check carries
	nextHour := func() {
		h, mi, sec = h+1, 0, 0
		if h > 23 {
			nextDay()
		}
	}
	nextMinute := func() {
		mi, sec = mi+1, 0
		if mi > 59 {
			nextHour()
		}
	}
	for y <= last {
		if !has(s.month, mo) {
			if n, ok := following(s.month, mo); ok {
				mo, d, h, mi, sec = n, 1, 0, 0, 0
			} else {
				y, mo, d, h, mi, sec = y+1, 1, 1, 0, 0, 0
			}
			continue
		}
		if d > daysIn(y, mo) {
			nextMonth()
			continue
		}
		if !has(s.day, d) {
			if n, ok := following(s.day, d); ok {
				d, h, mi, sec = n, 0, 0, 0
			} else {
				nextMonth()
			}
			continue
		}
		if !has(s.weekday, int(time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC).Weekday())) {
			nextDay()
			continue
		}
		if !has(s.hour, h) {
			if n, ok := following(s.hour, h); ok {
				h, mi, sec = n, 0, 0
			} else {
				nextDay()
			}
			continue
		}
		if !has(s.minute, mi) {
			if n, ok := following(s.minute, mi); ok {
				mi, sec = n, 0
			} else {
				nextHour()
			}
			continue
		}
		if !has(s.second, sec) {
			if n, ok := following(s.second, sec); ok {
				sec = n
			} else {
				nextMinute()
			}
			continue
		}
		return time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC).Unix(), true
	}
	return 0, false
}

// MinInterval is the shortest time between two consecutive occurrences of
// s, as far as a sample shows, for defaulting useMonitor (on when
// occurrences are a minute or more apart). Azure's own test is narrower for
// cron: it turns the monitor off only when every field from the minute up
// is * and the schedule fires more than once a minute, so "*/10 * 9 * * *"
// keeps Azure's monitor though its gaps here are 10 seconds.
//
// For an [Interval] it is the interval. For a [Cron], and any other
// Schedule, it is the smallest gap between consecutive occurrences in a
// sample: those from 2024-01-01T00:00:00Z for two years, or more if that
// window holds fewer than two, at most 50,000 of them, stopping early at a
// one-second gap since cron occurrences are never closer. The sample starts
// at a fixed time so that every process reaches the same answer. Gaps are
// real elapsed time, so they include daylight saving jumps in the location
// the two years contain ("0 0,59 1,3 * * *" in New York has a one-minute
// gap from 01:59 EST to 03:00 EDT). It is exact for every gap that recurs
// within two years; a gap that needs a rarer calendar coincidence, such as
// the 28 days between a Friday 13th in February and one in March, can be
// missed, which only makes the answer larger. A schedule that never fires
// gives 0.
func MinInterval(s Schedule) time.Duration {
	if iv, ok := s.(*Interval); ok {
		return iv.every
	}
	_, isCron := s.(*Cron)
	prev := s.Next(sampleStart)
	if prev.IsZero() {
		return 0
	}
	horizon := sampleStart.AddDate(2, 0, 0)
	least := time.Duration(-1)
	for range sampleCount {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		if gap := next.Sub(prev); least < 0 || gap < least {
			least = gap
		}
		if next.After(horizon) || (isCron && least <= time.Second) {
			break
		}
		prev = next
	}
	return max(least, 0)
}

var sampleStart = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

const sampleCount = 50_000

func has(set uint64, v int) bool { return v >= 0 && v < 64 && set&(1<<uint(v)) != 0 }

// following is the smallest value in set that is at least v.
func following(set uint64, v int) (int, bool) {
	if v < 0 || v >= 64 {
		return 0, false
	}
	rest := set >> uint(v) << uint(v)
	if rest == 0 {
		return 0, false
	}
	return bits.TrailingZeros64(rest), true
}

// adjacent says set holds two consecutive values.
func adjacent(set uint64) bool { return set&(set>>1) != 0 }

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
