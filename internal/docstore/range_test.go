package docstore

import (
	"fmt"
	"testing"
)

func TestFeedRangeBounds(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64, MaxFeedRanges} {
		prev := int64(0)
		for i := range n {
			lo, hi := FeedRange{Count: n, Index: i}.Bounds()
			if lo != prev || hi <= lo {
				t.Fatalf("range %d of %d is [%d, %d); want it to start at %d and not be empty", i, n, lo, hi, prev)
			}
			prev = hi
		}
		if prev != 1<<32 {
			t.Fatalf("%d ranges end at %d, not 2^32", n, prev)
		}
	}
	// Range i of n is ranges 2i and 2i+1 of 2n.
	for i := range 5 {
		lo, hi := FeedRange{Count: 5, Index: i}.Bounds()
		lo2, _ := FeedRange{Count: 10, Index: 2 * i}.Bounds()
		_, hi2 := FeedRange{Count: 10, Index: 2*i + 1}.Bounds()
		if lo != lo2 || hi != hi2 {
			t.Fatalf("range %d of 5 is [%d, %d), ranges %d-%d of 10 are [%d, %d)", i, lo, hi, 2*i, 2*i+1, lo2, hi2)
		}
	}
	// Each key is in exactly one range, and keys spread over the ranges.
	counts := make([]int, 4)
	for k := range 4000 {
		pk := fmt.Sprintf("device-%d", k)
		in := 0
		for i := range 4 {
			if (FeedRange{Count: 4, Index: i}).Contains(pk) {
				in++
				counts[i]++
			}
		}
		if in != 1 {
			t.Fatalf("%q is in %d ranges", pk, in)
		}
	}
	for i, c := range counts {
		if c < 800 || c > 1200 {
			t.Fatalf("range %d of 4 holds %d of 4000 keys: %v", i, c, counts)
		}
	}
}
