package query

import (
	"strings"
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
		spans         string // the runs of hours holding events within
	}{
		{true, 0, 10, 5, 6, 0, "05-06"},         // newest 10: inside the last hour
		{true, 15, 10, 2, 6, 15, "02-03 05-06"}, // ranks 15-24: hours 2-5, 15 of them first
		{true, 20, 3, 2, 3, 0, "02-03"},         // ranks 20-22: hour 2 alone
		{true, 24, 5, 0, 3, 4, "00-01 02-03"},   // ranks 24-28: hours 0-2, 4 before (hour 1 is empty)
		{false, 0, 10, 0, 1, 0, "00-01"},        // oldest 10: hour 0
		{false, 9, 2, 0, 3, 9, "00-01 02-03"},   // ranks 9-10: hours 0-2
		{false, 34, 5, 5, 6, 19, "05-06"},       // the last one
		{false, 12, 20, 2, 6, 2, "02-03 05-06"}, // ranks 12-31: hours 2-5, hours 3 and 4 absent
	} {
		w := window(hours, tc.desc, tc.offset, tc.limit)
		var spans []string
		for _, s := range w.spans {
			spans = append(spans, s.From.Format("15")+"-"+s.To.Format("15"))
		}
		if !w.from.Equal(h0.Add(time.Duration(tc.from)*time.Hour)) || !w.to.Equal(h0.Add(time.Duration(tc.to)*time.Hour)) ||
			w.skip != tc.skip || strings.Join(spans, " ") != tc.spans {
			t.Errorf("desc=%v offset=%d limit=%d: [%s, %s) skip %d spans %v, want hours [%d, %d) skip %d spans %s", tc.desc, tc.offset, tc.limit,
				w.from.Format("15h"), w.to.Format("15h"), w.skip, spans, tc.from, tc.to, tc.skip, tc.spans)
		}
	}
}
