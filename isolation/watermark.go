package isolation

import (
	"fmt"
	"time"
)

// watermarkSchedule is the batch watermark in force at each time of day:
// batch.watermark, overridden by the first batch.schedule window that
// contains the time (in batch.timeZone). It is resolved once from a valid
// configuration.
type watermarkSchedule struct {
	loc     *time.Location
	base    quantity
	windows []window
}

type window struct {
	from, to int // minutes after midnight
	q        quantity
	index    int
}

func newWatermarkSchedule(b *BatchConfig) watermarkSchedule {
	loc, _ := time.LoadLocation(b.TimeZone)
	base, _ := b.Watermark.parse()
	ws := watermarkSchedule{loc: loc, base: base}
	for i, w := range b.Schedule {
		from, _ := parseClock(w.From)
		to, _ := parseClock(w.To)
		q, _ := w.Watermark.parse()
		ws.windows = append(ws.windows, window{from: from, to: to, q: q, index: i})
	}
	return ws
}

// at returns the watermark in force at t and where it came from.
func (ws *watermarkSchedule) at(t time.Time) (quantity, string) {
	lt := t.In(ws.loc)
	m := lt.Hour()*60 + lt.Minute()
	for _, w := range ws.windows {
		in := m >= w.from && m < w.to
		if w.from > w.to { // wraps midnight
			in = m >= w.from || m < w.to
		}
		if in {
			return w.q, scheduleNames[min(w.index, len(scheduleNames)-1)]
		}
	}
	return ws.base, "batch.watermark"
}

// Preformatted so the view does not allocate per period.
var scheduleNames = func() []string {
	s := make([]string, 16)
	for i := range s {
		s[i] = fmt.Sprintf("batch.schedule[%d]", i)
	}
	s[15] = "batch.schedule[15+]"
	return s
}()
