// Package schedule reads the schedules of timer triggers: six-field
// NCRONTAB expressions with seconds, and .NET TimeSpan intervals, as Azure
// Functions' function.json and host.json write them.
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTimeSpan reads a .NET TimeSpan in its common forms: "hh:mm",
// "hh:mm:ss", "d.hh:mm:ss" and any of them with a fraction of a second
// ("hh:mm:ss.fff"). Hours are 0-23, minutes and seconds 0-59; a negative
// span is refused, since every setting that takes one is a duration.
func ParseTimeSpan(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("%q is not a TimeSpan (%s): write hh:mm:ss, d.hh:mm:ss or hh:mm:ss.fff, like 00:05:00", s, why)
	}
	rest := strings.TrimSpace(s)
	if rest == "" {
		return bad("it is empty")
	}
	if strings.HasPrefix(rest, "-") {
		return bad("it is negative")
	}
	var days int64
	parts := strings.Split(rest, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return bad("it needs two or three parts separated by ':'")
	}
	if d, h, ok := strings.Cut(parts[0], "."); ok {
		n, err := strconv.ParseInt(d, 10, 32)
		if err != nil || n < 0 || !digits(d) {
			return bad("bad days")
		}
		days, parts[0] = n, h
	}
	frac := ""
	if len(parts) == 3 {
		var dot bool
		if parts[2], frac, dot = strings.Cut(parts[2], "."); dot && frac == "" {
			return bad("an empty fraction")
		}
	}
	limits := []int64{23, 59, 59}
	var total time.Duration
	units := []time.Duration{time.Hour, time.Minute, time.Second}
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || !digits(p) || n > limits[i] {
			return bad(fmt.Sprintf("%q is out of range", p))
		}
		total += time.Duration(n) * units[i]
	}
	if frac != "" {
		if !digits(frac) || len(frac) > 7 {
			return bad("the fraction takes 1 to 7 digits")
		}
		n, _ := strconv.ParseInt(frac+strings.Repeat("0", 7-len(frac)), 10, 64)
		total += time.Duration(n) * 100 // ticks of 100 ns
	}
	if days > int64((1<<63-1-total)/(24*time.Hour)) {
		return bad("it is too long")
	}
	return time.Duration(days)*24*time.Hour + total, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
