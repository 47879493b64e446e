package influx

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// Events calls fn with the device events (as Write stores them in the
// events measurement) of [from, to), of one device or, when device is
// empty, all of them, in time order and then by device, code and
// component, the same order every time. A zero to means the time of the
// call. It stops at the first error fn returns and returns it, and once ctx
// is done returns ctx's error. It is what rules.EventStore asks for, so
// that rebuilds and backtests see the events the live engine saw.
//
// Like Samples it queries one time chunk at a time, sized to hold about
// 50,000 rows, and streams each response's rows into fn, holding only the
// events of one timestamp to sort them.
func (s *Store) Events(ctx context.Context, from, to time.Time, device proactive.DeviceID, fn func(proactive.Event) error) error {
	return s.chunked(from, to, device, func(start, end time.Time) (int, error) {
		q := "SELECT * FROM " + quoteIdent(MeasurementEvents) + " WHERE " + timeRange(start, end) + deviceCond(device)
		var rows int
		tied := sameTime[proactive.Event]{less: func(a, b proactive.Event) int {
			return cmp.Or(strings.Compare(string(a.Device), string(b.Device)), strings.Compare(a.Code, b.Code),
				strings.Compare(a.Component, b.Component), strings.Compare(a.Model, b.Model), strings.Compare(a.Text, b.Text))
		}}
		err := s.influxQL(ctx, q, func(_ int, sr *resultSeries) error {
			col := func(name string) func(row []any) string {
				i := sr.column(name)
				return func(row []any) string {
					if i < 0 {
						return ""
					}
					return text(row[i])
				}
			}
			timeCol := sr.column("time")
			if timeCol < 0 {
				return fmt.Errorf("query influxdb: events result without a time column: %v", sr.Columns)
			}
			dev, code, component, model, txt, sev := col("device_id"), col("code"), col("component"), col("model"), col("text"), col("severity")
			for _, row := range sr.Values {
				rows++
				t, ok := epochTime(row[timeCol])
				ev := proactive.Event{Device: proactive.DeviceID(dev(row)), Time: t, Code: code(row), Component: component(row),
					Model: model(row), Text: txt(row), Severity: proactive.Severity(sev(row))}
				if !ok || ev.Device == "" || ev.Code == "" || !t.Before(end) {
					continue
				}
				if err := tied.add(t, ev, fn); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return rows, err
		}
		return rows, tied.flush(fn)
	})
}
