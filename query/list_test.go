package query

import (
	"testing"
	"time"
)

func TestWindowFindsTheHoursOfAPage(t *testing.T) {
	h0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	hours := []hourCount{{h0, 10}, {h0.Add(time.Hour), 0}, {h0.Add(2 * time.Hour), 5}, {h0.Add(5 * time.Hour), 20}}
	for _, tc := range []struct {
		desc          bool
		offset, limit uint64
		from, to      int // hours after h0
		skip          uint64
	}{
		{true, 0, 10, 5, 6, 0},   // newest 10: inside the last hour
		{true, 15, 10, 2, 6, 15}, // ranks 15-24: hours 2-5, 15 of them first
		{true, 20, 3, 2, 3, 0},   // ranks 20-22: hour 2 alone
		{true, 24, 5, 0, 3, 4},   // ranks 24-28: hours 0-2, 4 before
		{false, 0, 10, 0, 1, 0},  // oldest 10: hour 0
		{false, 9, 2, 0, 3, 9},   // ranks 9-10: hours 0-2
		{false, 34, 5, 5, 6, 19}, // the last one
	} {
		from, to, skip := window(hours, tc.desc, tc.offset, tc.limit)
		if !from.Equal(h0.Add(time.Duration(tc.from)*time.Hour)) || !to.Equal(h0.Add(time.Duration(tc.to)*time.Hour)) || skip != tc.skip {
			t.Errorf("desc=%v offset=%d limit=%d: [%s, %s) skip %d, want hours [%d, %d) skip %d", tc.desc, tc.offset, tc.limit,
				from.Format("15h"), to.Format("15h"), skip, tc.from, tc.to, tc.skip)
		}
	}
}
