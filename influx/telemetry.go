package influx

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// MetricValue is a metric's value at a time.
type MetricValue struct {
	Metric string    `json:"metric"`
	Value  float64   `json:"value"`
	Time   time.Time `json:"time"`
}

// SeriesPoint is one value of a series.
type SeriesPoint struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// MetricSeries is one metric's points, oldest first.
type MetricSeries struct {
	Metric string        `json:"metric"`
	Points []SeriesPoint `json:"points"`
}

// Latest returns the last value of every metric device sent within the
// lookback, by metric name. A device with no telemetry gets an empty slice.
//
// InfluxQL gives a selector's own time only when it is the one selector of
// its statement, so it asks for the field keys of the measurement and then
// sends one statement per numeric field. Without a GROUP BY each statement
// merges the series of the device that differ in their model tag (a
// device re-registered under another model).
func (s *Store) Latest(ctx context.Context, device proactive.DeviceID) ([]MetricValue, error) {
	if !proactive.ValidDeviceID(string(device)) {
		return nil, proactive.Errorf(proactive.EInvalid, "device %q is not a device id ([A-Za-z0-9_.-]{1,64})", device)
	}
	metrics, err := s.numericFields(ctx)
	if err != nil {
		return nil, err
	}
	if len(metrics) == 0 {
		return []MetricValue{}, nil
	}
	// Points stamped in the future (a device's clock ahead) are not latest.
	where := " WHERE " + quoteIdent("device_id") + " = " + quoteString(string(device)) +
		" AND time >= now() - " + strconv.FormatInt(int64(s.lookback/time.Second), 10) + "s AND time <= now()"
	stmts := make([]string, len(metrics))
	for i, m := range metrics {
		stmts[i] = "SELECT last(" + quoteIdent(m) + ") FROM " + quoteIdent(MeasurementTelemetry) + where
	}
	out := []MetricValue{}
	err = s.influxQL(ctx, strings.Join(stmts, "; "), func(stmt int, sr *resultSeries) error {
		if stmt < 0 || stmt >= len(metrics) || len(sr.Columns) < 2 || sr.Columns[0] != "time" {
			return nil
		}
		for _, row := range sr.Values {
			t, ok := epochTime(row[0])
			if v, isNum := value(row[1]); ok && isNum {
				out = append(out, MetricValue{Metric: metrics[stmt], Value: v, Time: t})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b MetricValue) int { return strings.Compare(a.Metric, b.Metric) })
	return out, nil
}

// numericFields returns the numeric fields of the telemetry measurement
// that are metric names, sorted.
func (s *Store) numericFields(ctx context.Context) ([]string, error) {
	var out []string
	err := s.influxQL(ctx, "SHOW FIELD KEYS FROM "+quoteIdent(MeasurementTelemetry), func(_ int, sr *resultSeries) error {
		keyCol, typeCol := sr.column("fieldKey"), sr.column("fieldType")
		if keyCol < 0 {
			return fmt.Errorf("query influxdb: field keys without a fieldKey column: %v", sr.Columns)
		}
		for _, row := range sr.Values {
			k := text(row[keyCol])
			if typeCol >= 0 {
				switch text(row[typeCol]) {
				case "float", "integer", "unsigned", "":
				default:
					continue // string and boolean fields hold no metric Write stores
				}
			}
			if proactive.ValidMetricName(k) {
				out = append(out, k)
			}
		}
		return nil
	})
	slices.Sort(out)
	return slices.Compact(out), err
}

// Range returns device's metrics (all of them when metrics is empty) in
// [from, to), at most maxPoints per metric: the span is cut into equal
// windows of every (a whole number of seconds, at least 1s), and each point
// is the mean of one window, stamped with the window's start. Windows
// without data give no point. Metrics without data in the range are left out.
func (s *Store) Range(ctx context.Context, device proactive.DeviceID, metrics []string, from, to time.Time, maxPoints int) (series []MetricSeries, every time.Duration, err error) {
	if !proactive.ValidDeviceID(string(device)) {
		return nil, 0, proactive.Errorf(proactive.EInvalid, "device %q is not a device id ([A-Za-z0-9_.-]{1,64})", device)
	}
	for _, m := range metrics {
		if !proactive.ValidMetricName(m) {
			return nil, 0, proactive.Errorf(proactive.EInvalid, "metric %q is not a metric name ([a-z][a-z0-9_]{0,63})", m)
		}
	}
	if !from.Before(to) {
		return nil, 0, proactive.Errorf(proactive.EInvalid, "from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if maxPoints <= 0 {
		return nil, 0, proactive.Errorf(proactive.EInvalid, "maxPoints must be positive")
	}
	every = RangeEvery(to.Sub(from), maxPoints)
	if len(metrics) == 0 {
		if metrics, err = s.numericFields(ctx); err != nil {
			return nil, 0, err
		}
		if len(metrics) == 0 {
			return []MetricSeries{}, every, nil
		}
	} else {
		metrics = slices.Clone(metrics)
		slices.Sort(metrics)
		metrics = slices.Compact(metrics)
	}
	sel := make([]string, len(metrics))
	for i, m := range metrics {
		sel[i] = "mean(" + quoteIdent(m) + ") AS " + quoteIdent(m)
	}
	// Windows are aligned to the epoch plus an offset: from's offset into
	// its window makes the first window start at from, so that there are
	// no more windows than maxPoints.
	offset := time.Duration(from.UnixNano() % int64(every))
	if offset < 0 {
		offset += every
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + quoteIdent(MeasurementTelemetry) +
		" WHERE " + quoteIdent("device_id") + " = " + quoteString(string(device)) + " AND " + timeRange(from, to) +
		" GROUP BY time(" + strconv.FormatInt(int64(every/time.Second), 10) + "s, " + strconv.FormatInt(int64(offset/time.Microsecond), 10) + "u) fill(none)"
	byMetric := map[string]*MetricSeries{}
	err = s.influxQL(ctx, q, func(_ int, sr *resultSeries) error {
		timeCol := sr.column("time")
		if timeCol < 0 {
			return nil
		}
		for _, m := range metrics {
			c := sr.column(m)
			if c < 0 {
				continue
			}
			for _, row := range sr.Values {
				t, ok := epochTime(row[timeCol])
				v, isNum := value(row[c])
				if !ok || !isNum {
					continue
				}
				ms := byMetric[m]
				if ms == nil {
					ms = &MetricSeries{Metric: m}
					byMetric[m] = ms
				}
				ms.Points = append(ms.Points, SeriesPoint{Time: t, Value: v})
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	series = make([]MetricSeries, 0, len(byMetric))
	for _, ms := range byMetric {
		slices.SortFunc(ms.Points, func(a, b SeriesPoint) int { return a.Time.Compare(b.Time) })
		series = append(series, *ms)
	}
	slices.SortFunc(series, func(a, b MetricSeries) int { return strings.Compare(a.Metric, b.Metric) })
	return series, every, nil
}

// RangeEvery returns the window that splits span into at most maxPoints windows:
// span/maxPoints rounded up to a whole second, and at least one second.
func RangeEvery(span time.Duration, maxPoints int) time.Duration {
	if maxPoints <= 0 {
		maxPoints = 1
	}
	every := (span + time.Duration(maxPoints) - 1) / time.Duration(maxPoints)
	return max(time.Second, (every + time.Second - 1).Truncate(time.Second))
}

// value reads a metric's value: a number, or a bool as 1 or 0.
func value(v any) (float64, bool) {
	if b, ok := v.(bool); ok {
		if b {
			return 1, true
		}
		return 0, true
	}
	return number(v)
}
