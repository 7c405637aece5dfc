package xslt

import "testing"

// TestNumberString: numbers as xsltproc (libxml2) writes them, the values
// taken from xsltproc's output.
func TestNumberString(t *testing.T) {
	t.Parallel()
	cases := map[float64]string{
		0.1 + 0.2: "0.3", 1.0 / 3: "0.333333333333333", 1e23: "1e+23", 123456789012345678: "1.23456789012346e+17",
		0.000001: "1e-06", 0.00000015: "1.5e-07", -1.0 / 3: "-0.333333333333333", 2.995 * 40: "119.8",
		1e10: "1e+10", 1e9: "1000000000", 2147483647: "2.147483647e+09", -2147483648: "-2.147483648e+09",
		0.5: "0.5", 99.99 * 3: "299.97", 1.0 / 7 * 1e6: "142857.142857143", -0.00001: "-0.00001",
		123456.789: "123456.789", 999999999.5: "999999999.5", 42: "42", -7: "-7",
	}
	for f, want := range cases {
		if got := numberString(f); got != want {
			t.Errorf("numberString(%v) = %q, want %q", f, got, want)
		}
	}
}
