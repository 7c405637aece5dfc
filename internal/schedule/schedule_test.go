package schedule

import (
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases need zones whatever the machine has installed
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

func TestCronNext(t *testing.T) {
	t.Parallel()
	const (
		ny     = "America/New_York"
		berlin = "Europe/Berlin"
	)
	cases := []struct {
		name, expr, zone, from string
		want                   []string // successive occurrences; "" is the zero time
	}{
		{"every 5 seconds", "*/5 * * * * *", "", "2024-01-01T00:00:00Z",
			[]string{"2024-01-01T00:00:05Z", "2024-01-01T00:00:10Z", "2024-01-01T00:00:15Z"}},
		{"from a fraction of a second", "*/5 * * * * *", "", "2024-01-01T00:00:04.999Z",
			[]string{"2024-01-01T00:00:05Z"}},
		{"seconds into the next minute", "*/5 * * * * *", "", "2024-01-01T00:00:57Z",
			[]string{"2024-01-01T00:01:00Z"}},
		{"every 5 minutes", "0 */5 * * * *", "", "2024-01-01T10:02:30Z",
			[]string{"2024-01-01T10:05:00Z", "2024-01-01T10:10:00Z"}},
		{"every 5 minutes over new year", "0 */5 * * * *", "", "2024-12-31T23:57:00Z",
			[]string{"2025-01-01T00:00:00Z"}},
		{"weekdays at 9:30 from a Friday", "0 30 9 * * 1-5", "", "2024-06-07T10:00:00Z",
			[]string{"2024-06-10T09:30:00Z", "2024-06-11T09:30:00Z"}},
		{"weekdays at 9:30 just before", "0 30 9 * * 1-5", "", "2024-06-10T09:29:59.999Z",
			[]string{"2024-06-10T09:30:00Z"}},
		{"first of the month", "0 0 0 1 * *", "", "2024-01-31T12:00:00Z",
			[]string{"2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"}},
		{"first of the month over new year", "0 0 0 1 * *", "", "2024-12-15T00:00:00Z",
			[]string{"2025-01-01T00:00:00Z"}},
		{"month names and steps", "0 0 12 1 jan-MAR/2,Sept *", "", "2024-01-01T12:00:00Z",
			[]string{"2024-03-01T12:00:00Z", "2024-09-01T12:00:00Z", "2025-01-01T12:00:00Z"}},
		{"list of a stepped range and a value", "10-20/5,45 * * * * *", "", "2024-01-01T00:00:00Z",
			[]string{"2024-01-01T00:00:10Z", "2024-01-01T00:00:15Z", "2024-01-01T00:00:20Z", "2024-01-01T00:00:45Z", "2024-01-01T00:01:10Z"}},
		{"a/n runs to the field's end", "5/20 * * * * *", "", "2024-01-01T00:00:00Z",
			[]string{"2024-01-01T00:00:05Z", "2024-01-01T00:00:25Z", "2024-01-01T00:00:45Z", "2024-01-01T00:01:05Z"}},
		{"day and weekday must both match", "0 0 0 13 * FRI", "", "2024-01-01T00:00:00Z",
			[]string{"2024-09-13T00:00:00Z", "2024-12-13T00:00:00Z", "2025-06-13T00:00:00Z"}},
		{"NCrontab's own AND case", "0 45 16 1 * Mon", "", "2003-01-01T12:00:00Z",
			[]string{"2003-09-01T16:45:00Z", "2003-12-01T16:45:00Z"}},
		{"leap day from a common year", "0 0 0 29 2 *", "", "2025-03-01T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"leap day over 2100, not a leap year", "0 0 0 29 2 *", "", "2096-03-01T00:00:00Z",
			[]string{"2104-02-29T00:00:00Z"}},
		{"leap day on a Monday", "0 0 0 29 2 MON", "", "2024-01-01T00:00:00Z",
			[]string{"2044-02-29T00:00:00Z"}},
		{"31st skips short months", "0 0 0 31 * *", "", "2024-01-31T00:00:00Z",
			[]string{"2024-03-31T00:00:00Z", "2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z", "2024-08-31T00:00:00Z"}},
		{"30th and 31st after February", "0 0 0 30,31 * *", "", "2024-02-01T00:00:00Z",
			[]string{"2024-03-30T00:00:00Z", "2024-03-31T00:00:00Z", "2024-04-30T00:00:00Z"}},
		{"end of February", "0 0 0 28-31 2 *", "", "2023-02-27T00:00:00Z",
			[]string{"2023-02-28T00:00:00Z", "2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z", "2025-02-28T00:00:00Z"}},
		{"last second of the year", "59 59 23 31 12 *", "", "2024-12-31T23:59:59Z",
			[]string{"2025-12-31T23:59:59Z"}},
		{"every second over new year", "* * * * * *", "", "2024-12-31T23:59:59Z",
			[]string{"2025-01-01T00:00:00Z", "2025-01-01T00:00:01Z"}},
		{"new year", "0 0 0 1 1 *", "", "2024-01-01T00:00:00Z",
			[]string{"2025-01-01T00:00:00Z"}},
		{"Sunday as 7", "0 0 0 * * 7", "", "2024-06-03T00:00:00Z", []string{"2024-06-09T00:00:00Z"}},
		{"Sunday as 0", "0 0 0 * * 0", "", "2024-06-03T00:00:00Z", []string{"2024-06-09T00:00:00Z"}},
		{"Sunday by name", "0 0 0 * * sunday", "", "2024-06-03T00:00:00Z", []string{"2024-06-09T00:00:00Z"}},
		{"range up to 7", "0 0 0 * * 5-7", "", "2024-06-03T00:00:00Z",
			[]string{"2024-06-07T00:00:00Z", "2024-06-08T00:00:00Z", "2024-06-09T00:00:00Z", "2024-06-14T00:00:00Z"}},
		{"tabs and runs of spaces", "\t0  0\t12 * * *  ", "", "2024-01-01T00:00:00Z",
			[]string{"2024-01-01T12:00:00Z"}},
		{"February 30th never comes", "0 0 0 30 2 *", "", "2024-01-01T00:00:00Z", []string{""}},
		{"31st of 30-day months never comes", "0 0 0 31 4,6,9,11 *", "", "2024-01-01T00:00:00Z", []string{""}},
		{"fixed offset zone", "0 0 9 * * *", "Asia/Kolkata", "2024-01-01T00:00:00Z",
			[]string{"2024-01-01T09:00:00+05:30", "2024-01-02T09:00:00+05:30"}},

		// America/New_York springs forward at 02:00 EST on 2024-03-10 and
		// falls back at 02:00 EDT on 2024-11-03.
		{"skipped local time does not fire", "0 30 2 * * *", ny, "2024-03-09T12:00:00-05:00",
			[]string{"2024-03-11T02:30:00-04:00"}},
		{"hourly over spring forward", "0 0 * * * *", ny, "2024-03-10T01:30:00-05:00",
			[]string{"2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"}},
		{"a point in time in the repeated hour fires once", "0 30 1 * * *", ny, "2024-11-03T00:00:00-04:00",
			[]string{"2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"}},
		{"from the second pass of the repeated hour", "0 30 1 * * *", ny, "2024-11-03T01:10:00-05:00",
			[]string{"2024-11-04T01:30:00-05:00"}},
		{"two points in the repeated hour fire once each", "0 0,30 1 * * *", ny, "2024-11-03T00:59:00-04:00",
			[]string{"2024-11-03T01:00:00-04:00", "2024-11-03T01:30:00-04:00", "2024-11-04T01:00:00-05:00"}},
		{"a time the clock jumps over", "0 0 2 * * *", ny, "2024-03-09T12:00:00-05:00",
			[]string{"2024-03-11T02:00:00-04:00"}},
		{"a time the clock falls back from", "0 0 2 * * *", ny, "2024-11-03T00:00:00-04:00",
			[]string{"2024-11-03T02:00:00-05:00", "2024-11-04T02:00:00-05:00"}},
		{"a repeating schedule comes back for the second pass", "0-1 10 1 * * *", ny, "2024-11-03T01:30:00-04:00",
			[]string{"2024-11-03T01:10:00-05:00", "2024-11-03T01:10:01-05:00", "2024-11-04T01:10:00-05:00"}},
		{"an interval runs through the repeated hour", "0 */30 * * * *", ny, "2024-11-03T01:00:00-04:00",
			[]string{"2024-11-03T01:30:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T01:30:00-05:00", "2024-11-03T02:00:00-05:00"}},

		// Europe/Berlin, east of Greenwich: spring forward 2024-03-31 02:00
		// CET, fall back 2024-10-27 03:00 CEST.
		{"Berlin skipped time", "0 30 2 * * *", berlin, "2024-03-30T12:00:00+01:00",
			[]string{"2024-04-01T02:30:00+02:00"}},
		{"Berlin repeated time fires once", "0 30 2 * * *", berlin, "2024-10-27T00:00:00+02:00",
			[]string{"2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"}},
		// Australia/Lord_Howe moves its clock by half an hour.
		{"half-hour fall back, a point in time", "0 45 1 * * *", "Australia/Lord_Howe", "2024-04-07T00:00:00+11:00",
			[]string{"2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"}},
		{"half-hour fall back, an interval", "0 44,45 1 * * *", "Australia/Lord_Howe", "2024-04-07T00:00:00+11:00",
			[]string{"2024-04-07T01:44:00+11:00", "2024-04-07T01:45:00+11:00", "2024-04-07T01:44:00+10:30", "2024-04-07T01:45:00+10:30", "2024-04-08T01:44:00+10:30"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			loc := zone(t, c.zone)
			s, err := Parse(c.expr, loc)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.expr, err)
			}
			cur := at(t, c.from)
			for i, w := range c.want {
				got := s.Next(cur)
				if w == "" {
					if !got.IsZero() {
						t.Fatalf("Next #%d of %q = %v, want the zero time", i+1, c.expr, got)
					}
					return
				}
				want := at(t, w)
				if !got.Equal(want) {
					t.Fatalf("Next #%d of %q after %v = %v, want %v", i+1, c.expr, cur, got, want)
				}
				if got.Location() != loc {
					t.Fatalf("Next returned a time in %v, want %v", got.Location(), loc)
				}
				cur = got
			}
		})
	}
}

func TestIntervalNext(t *testing.T) {
	t.Parallel()
	cases := []struct{ expr, from, want string }{
		{"00:05:00", "2024-01-01T00:02:00Z", "2024-01-01T00:05:00Z"},
		{"00:05:00", "2024-01-01T00:05:00Z", "2024-01-01T00:10:00Z"},
		{"00:05:00", "2024-01-01T00:04:59.999999999Z", "2024-01-01T00:05:00Z"},
		{"00:05:00", "1969-12-31T23:58:00Z", "1970-01-01T00:00:00Z"},
		{"00:05:00", "1969-12-31T23:55:00Z", "1970-01-01T00:00:00Z"},
		{"00:05:00", "1969-12-31T23:54:59.5Z", "1969-12-31T23:55:00Z"},
		{"00:07:00", "1970-01-01T00:00:00Z", "1970-01-01T00:07:00Z"},
		{"1.00:00:00", "2024-03-10T12:00:00-04:00", "2024-03-11T00:00:00Z"},
		{"00:00:00.5", "2024-01-01T00:00:00.2Z", "2024-01-01T00:00:00.5Z"},
		{" 01:00:00 ", "2024-01-01T00:30:00+05:30", "2024-01-01T01:30:00+05:30"}, // 19:00Z to 20:00Z
	}
	for _, c := range cases {
		s, err := Parse(c.expr, nil)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.expr, err)
		}
		if s.String() != c.expr {
			t.Errorf("String() = %q, want %q", s.String(), c.expr)
		}
		from := at(t, c.from)
		got := s.Next(from)
		if want := at(t, c.want); !got.Equal(want) {
			t.Errorf("Next of %q after %v = %v, want %v", c.expr, from, got, want)
		}
		if got.Location() != from.Location() {
			t.Errorf("Next returned a time in %v, want the input's %v", got.Location(), from.Location())
		}
	}
}

// TestIntervalNextFarAway checks the epoch alignment where the nanoseconds
// since 1970 overflow an int64, against math/big.
func TestIntervalNextFarAway(t *testing.T) {
	t.Parallel()
	every := 7*time.Minute + 3*time.Millisecond
	s := &Interval{expr: "test", every: every}
	for _, from := range []time.Time{
		time.Date(3000, 5, 6, 7, 8, 9, 10, time.UTC),
		time.Date(-5000, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
		time.Unix(-1, 999_999_999),
	} {
		got := s.Next(from)
		ns := func(t time.Time) *big.Int {
			n := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(1e9))
			return n.Add(n, big.NewInt(int64(t.Nanosecond())))
		}
		if r := new(big.Int).Mod(ns(got), big.NewInt(int64(every))); r.Sign() != 0 {
			t.Errorf("Next(%v) = %v, which is %v past a multiple", from, got, r)
		}
		if d := got.Sub(from); d <= 0 || d > every {
			t.Errorf("Next(%v) = %v, %v later; want within (0, %v]", from, got, d, every)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"*/5 * * * *":                    `schedule "*/5 * * * *" has 5 fields; NCRONTAB needs 6, seconds first: "0 */5 * * * *"`,
		"0 61 * * * *":                   `schedule "0 61 * * * *": minute 61 is out of range 0-59`,
		"60 * * * * *":                   "second 60 is out of range 0-59",
		"0 0 24 * * *":                   "hour 24 is out of range 0-23",
		"0 0 0 0 * *":                    "day 0 is out of range 1-31",
		"0 0 0 32 * *":                   "day 32 is out of range 1-31",
		"0 0 0 * 13 *":                   "month 13 is out of range 1-12",
		"0 0 0 * 0 *":                    "month 0 is out of range 1-12",
		"0 0 0 * * 8":                    "day-of-week 8 is out of range 0-6 (7 is Sunday too)",
		"0 0 5-1 * * *":                  `hour range "5-1" runs backwards`,
		"0 0 0 * * FRI-MON":              `day-of-week range "FRI-MON" runs backwards; ranges do not wrap around, so write it as two (5-7,0-1)`,
		"*/0 * * * * *":                  `second step in "*/0" must be 1 or more`,
		"0 1-5/0 * * * *":                `minute step in "1-5/0" must be 1 or more`,
		"0 1,,2 * * * *":                 `minute list "1,,2" has an empty item`,
		"0 1, * * * *":                   `minute list "1," has an empty item`,
		"0 ,1 * * * *":                   `minute list ",1" has an empty item`,
		"0 0 0 * FOO *":                  `month "FOO" is not a number or a month name (JAN-DEC)`,
		"0 0 0 * JA *":                   `month "JA" is not a number or a month name (JAN-DEC)`,
		"0 0 0 * * XYZ":                  `day-of-week "XYZ" is not a number or a day name (SUN-SAT)`,
		"0 x * * * *":                    `minute "x" is not a number`,
		"0 0 jan * * *":                  `hour "jan" is not a number`,
		"0 +5 * * * *":                   `minute "+5" is not a number`,
		"0 0 0 ? * MON":                  `day "?" is Quartz syntax`,
		"0 0 0 L * *":                    `day "L" is not a number`,
		"1/2/3 * * * * *":                `second "1/2/3" has more than one '/'`,
		"*/x * * * * *":                  `second step in "*/x" is not a number`,
		"*/ * * * * *":                   `second step in "*/" is not a number`,
		"*/99999999999 * * * * *":        `second step in "*/99999999999" is too large`,
		"0 1- * * * *":                   `minute "1-" is missing a number`,
		"0 -1 * * * *":                   `minute "-1" is missing a number`,
		"0 99999999999999999999 * * * *": "minute 99999999999999999999 is out of range 0-59",
		"0 0 0 * * * 2024":               "has 7 fields; NCRONTAB needs 6",
		"0 0 0":                          `schedule "0 0 0" has 3 fields; NCRONTAB needs 6`,
		"":                               `schedule "" is empty`,
		" \t ":                           "is empty",
		"00:00:00":                       `schedule "00:00:00": the interval is zero`,
		"1:2:3:4":                        `schedule: "1:2:3:4" is not a TimeSpan`,
		"24:00:00":                       "is not a TimeSpan",
	}
	for expr, want := range cases {
		s, err := Parse(expr, nil)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error containing %q", expr, s, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error\n\t%v\nwant it to contain\n\t%s", expr, err, want)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{
		"0 0 0 * * 0-7", "0 0 0 * * 6-7", "0 0 0 * * 7/1", "0 0 0 * Sept-dec *",
		"0 0 0 * * Thu,tuesday", "*/60 * * * * *", "0 0 0 1-31/31 * *", "* * * * * *",
		"59 59 23 31 12 6", "0 0 12 * * MON-FRI",
	} {
		s, err := Parse(expr, nil)
		if err != nil {
			t.Errorf("Parse(%q): %v", expr, err)
			continue
		}
		if s.String() != expr {
			t.Errorf("String() = %q, want %q", s.String(), expr)
		}
	}
}

func TestMinInterval(t *testing.T) {
	t.Parallel()
	cases := []struct {
		expr, zone string
		want       time.Duration
	}{
		{"*/5 * * * * *", "", 5 * time.Second},
		{"* * * * * *", "", time.Second},
		{"0,59 * * * * *", "", time.Second},
		{"0,30 * * * * *", "", 30 * time.Second},
		{"0 * * * * *", "", time.Minute},
		{"0 */5 * * * *", "", 5 * time.Minute},
		{"0 0 * * * *", "", time.Hour},
		{"0 0 * * * *", "America/New_York", time.Hour},
		{"0 30 9 * * 1-5", "America/New_York", 24 * time.Hour},
		{"0 0 0 1 * *", "", 28 * 24 * time.Hour},
		{"0 0 0 29 2 *", "", (4*365 + 1) * 24 * time.Hour},
		{"0 0,59 1,3 * * *", "", 59 * time.Minute},
		{"0 0,59 1,3 * * *", "America/New_York", time.Minute}, // 01:59 EST to 03:00 EDT
		{"0 0 0 30 2 *", "", 0},
		{"00:05:00", "", 5 * time.Minute},
		{"00:00:30", "", 30 * time.Second},
	}
	for _, c := range cases {
		s, err := Parse(c.expr, zone(t, c.zone))
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.expr, err)
		}
		if got := MinInterval(s); got != c.want {
			t.Errorf("MinInterval(%q in %q) = %v, want %v", c.expr, c.zone, got, c.want)
		}
	}
}

// TestNextMatchesBruteForce compares Next with a matcher that tries every
// minute and the seconds of those that match, over random expressions,
// zones and start times. It is the test that catches a search skipping an
// occurrence.
func TestNextMatchesBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	// Starts a day or so before the places a search goes wrong: month and
	// year ends, and each zone's clock changes in 2024.
	ends := []string{"2024-02-27T20:00:00Z", "2023-02-27T20:00:00Z", "2024-12-30T20:00:00Z", "2024-04-29T20:00:00Z"}
	zones := []struct {
		name    string
		changes []string
	}{
		{"", nil},
		{"America/New_York", []string{"2024-03-09T20:00:00Z", "2024-11-02T20:00:00Z"}},
		{"Europe/Berlin", []string{"2024-03-30T10:00:00Z", "2024-10-26T10:00:00Z"}},
		{"Australia/Lord_Howe", []string{"2024-04-06T00:00:00Z", "2024-10-05T00:00:00Z"}},
	}
	const (
		horizon = 40 * 24 * 3600 // seconds
		most    = 2000           // occurrences compared per expression
	)
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	for i := range rounds {
		expr := randomExpr(rng)
		z := zones[i%len(zones)]
		loc := zone(t, z.name)
		starts := ends
		if len(z.changes) > 0 && rng.IntN(3) > 0 {
			starts = z.changes
		}
		from := at(t, starts[rng.IntN(len(starts))]).Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
		if i%3 == 0 {
			from = from.Add(time.Duration(rng.IntN(1e9))) // not on a whole second
		}
		s, err := Parse(expr, loc)
		if err != nil {
			t.Fatalf("Parse(%q) of a generated expression: %v", expr, err)
		}
		c := s.(*Cron)
		want := bruteForce(c, from, horizon, most)
		var got []time.Time
		end := time.Unix(from.Unix()+horizon, 0)
		for cur := from; len(got) < most; {
			cur = c.Next(cur)
			if cur.IsZero() || cur.After(end) {
				break
			}
			got = append(got, cur)
		}
		if !sameTimes(got, want) {
			t.Fatalf("%q in %v from %v:\nNext gave   %v\nbrute force %v", expr, loc, from, firstFew(got, want), firstFew(want, got))
		}
	}
}

// bruteForce lists the first most occurrences in (from, from+horizon] by
// testing every minute, then every second of a minute that matches: the
// fields must match the wall clock, and a reading the clock has shown
// before (in a repeated hour) counts only if the schedule has two adjacent
// seconds, minutes or hours. Stepping by minutes is sound because the test
// zones' offsets are whole minutes, so local minutes start on UTC minutes.
func bruteForce(c *Cron, from time.Time, horizon int64, most int) []time.Time {
	wall := func(x int64) (time.Time, int64) {
		lt := time.Unix(x, 0).In(c.loc)
		_, off := lt.Zone()
		return lt, x + int64(off)
	}
	first := from.Unix() - from.Unix()%60 // the minute holding from; from is after 1970
	var shown int64                       // the latest wall reading so far
	for x := first - 4*3600; x < first; x += 60 {
		_, w := wall(x)
		shown = max(shown, w+59)
	}
	repeats := false
	for _, set := range []uint64{c.second, c.minute, c.hour} {
		for v := range 59 {
			repeats = repeats || has(set, v) && has(set, v+1)
		}
	}
	var out []time.Time
	for x := first; x <= from.Unix()+horizon && len(out) < most; x += 60 {
		lt, w := wall(x)
		again := w <= shown
		shown = max(shown, w+59)
		if again && !repeats {
			continue
		}
		_, mo, d := lt.Date()
		h, mi, _ := lt.Clock()
		if !has(c.minute, mi) || !has(c.hour, h) || !has(c.day, d) ||
			!has(c.month, int(mo)) || !has(c.weekday, int(lt.Weekday())) {
			continue
		}
		for sec := range 60 {
			y := time.Unix(x+int64(sec), 0).In(c.loc)
			if has(c.second, sec) && y.After(from) && y.Unix() <= from.Unix()+horizon && len(out) < most {
				out = append(out, y)
			}
		}
	}
	return out
}

// randomExpr writes a valid expression dense enough to fire within two
// days now and then.
func randomExpr(rng *rand.Rand) string {
	type spec struct {
		min, max int
		names    []string
	}
	specs := []spec{
		{0, 59, nil}, {0, 59, nil}, {0, 23, nil}, {1, 31, nil},
		{1, 12, []string{"JAN", "feb", "Mar", "APR", "May", "jun", "JUL", "aug", "Sep", "oct", "NOV", "dec"}},
		{0, 6, []string{"SUN", "mon", "Tue", "WED", "thu", "Fri", "sat"}},
	}
	val := func(s spec, v int, single bool) string {
		if s.names != nil && rng.IntN(3) == 0 {
			return s.names[v-s.min]
		}
		if single && s.max == 6 && v == 0 && rng.IntN(2) == 0 {
			return "7"
		}
		return strconv.Itoa(v)
	}
	item := func(s spec) string {
		span := s.max - s.min + 1
		switch rng.IntN(6) {
		case 0:
			return "*"
		case 1:
			return "*/" + strconv.Itoa(1+rng.IntN(span/2+1))
		case 2:
			return val(s, s.min+rng.IntN(span), true)
		case 3:
			a := s.min + rng.IntN(span)
			b := a + rng.IntN(s.max-a+1)
			return val(s, a, false) + "-" + val(s, b, false)
		case 4:
			a := s.min + rng.IntN(span)
			b := a + rng.IntN(s.max-a+1)
			return val(s, a, false) + "-" + val(s, b, false) + "/" + strconv.Itoa(1+rng.IntN(5))
		default:
			return strconv.Itoa(s.min+rng.IntN(span)) + "/" + strconv.Itoa(1+rng.IntN(span))
		}
	}
	parts := make([]string, 6)
	// A third of the expressions fire at points in time: no two adjacent
	// seconds, minutes or hours, so a repeated hour fires once.
	points := rng.IntN(3) == 0
	for i, s := range specs {
		if points && i < 3 {
			span := s.max - s.min + 1
			parts[i] = strconv.Itoa(rng.IntN(span/2)) + "/" + strconv.Itoa(2+rng.IntN(span/4))
			continue
		}
		if i >= 3 && rng.IntN(2) == 0 {
			parts[i] = "*" // keep the calendar fields loose, or nothing fires in two days
			continue
		}
		n := 1 + rng.IntN(3)
		items := make([]string, n)
		for j := range items {
			items[j] = item(s)
		}
		parts[i] = strings.Join(items, ",")
	}
	return strings.Join(parts, " ")
}

func sameTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// firstFew writes a few of ts from where it first differs from other.
func firstFew(ts, other []time.Time) string {
	i := 0
	for i < len(ts) && i < len(other) && ts[i].Equal(other[i]) {
		i++
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(ts)) + " times; from #" + strconv.Itoa(i) + ":")
	for _, t := range ts[max(i-2, 0):min(i+4, len(ts))] {
		b.WriteString(" " + t.Format(time.RFC3339))
	}
	return b.String()
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0 */5 * * * *", "*/5 * * * *", "0 30 9 * * 1-5", "0 0 0 13 * FRI", "0 0 0 29 2 MON",
		"0 0 0 30 2 *", "5/20 10-20/5,45 * * JAN-mar/2 sun,7", "00:05:00", "1.00:00:00.5",
		"0 0,30 1 * * *", "* * * * * *", "0 0 0 ? * *", "1-,/ * * * * *",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	zones := []*time.Location{time.UTC, zone(f, "America/New_York"), zone(f, "Australia/Lord_Howe")}
	froms := []time.Time{
		time.Date(2024, 3, 10, 6, 59, 59, 0, time.UTC),
		time.Date(2024, 11, 3, 5, 30, 0, 500, time.UTC),
		time.Date(2000, 2, 28, 23, 59, 59, 0, time.UTC),
		time.Unix(0, 0),
	}
	f.Fuzz(func(t *testing.T, expr string, z uint8) {
		s, err := Parse(expr, zones[int(z)%len(zones)])
		if err != nil {
			return
		}
		if s.String() != expr {
			t.Fatalf("String() = %q, want %q", s.String(), expr)
		}
		for _, from := range froms {
			cur := from
			for range 4 {
				next := s.Next(cur)
				if next.IsZero() {
					break
				}
				if !next.After(cur) {
					t.Fatalf("%q: Next(%v) = %v, not after it", expr, cur, next)
				}
				cur = next
			}
		}
	})
}

func BenchmarkNext(b *testing.B) {
	ny := zone(b, "America/New_York")
	for _, expr := range []string{"0 */5 * * * *", "0 30 9 * * 1-5", "0 0 0 29 2 MON", "0 0 0 30 2 *"} {
		b.Run(expr, func(b *testing.B) {
			s, err := Parse(expr, ny)
			if err != nil {
				b.Fatal(err)
			}
			from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			for b.Loop() {
				s.Next(from)
			}
		})
	}
	b.Run("MinInterval", func(b *testing.B) {
		s, _ := Parse("*/2 * * * * *", ny)
		for b.Loop() {
			MinInterval(s)
		}
	})
}
