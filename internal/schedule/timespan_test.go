package schedule

import (
	"testing"
	"time"
)

func TestParseTimeSpan(t *testing.T) {
	good := map[string]time.Duration{
		"00:05:00":     5 * time.Minute,
		"00:00:01.5":   1500 * time.Millisecond,
		"1.02:03:04":   26*time.Hour + 3*time.Minute + 4*time.Second,
		"12:30":        12*time.Hour + 30*time.Minute,
		"00:00:00.001": time.Millisecond,
		" 00:01:00 ":   time.Minute,
	}
	for in, want := range good {
		got, err := ParseTimeSpan(in)
		if err != nil || got != want {
			t.Errorf("ParseTimeSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5", "-00:01:00", "24:00:00", "00:60:00", "00:00:60", "a:b:c", "00:00:01.", "00:00:01.12345678", "1.:00:00", "+1:00:00", "00:00:00:00", "99999999999.00:00:00"} {
		if d, err := ParseTimeSpan(in); err == nil {
			t.Errorf("ParseTimeSpan(%q) = %v, want an error", in, d)
		}
	}
}

func FuzzParseTimeSpan(f *testing.F) {
	for _, s := range []string{"00:05:00", "1.02:03:04.5", "12:30", "-1:00", "99999.23:59:59.9999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTimeSpan(s)
		if err == nil && d < 0 {
			t.Fatalf("%q gave a negative %v", s, d)
		}
	})
}
