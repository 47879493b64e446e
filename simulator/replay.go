package simulator

import (
	"bufio"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// ReplayOptions say how a CSV file of recorded telemetry maps to devices,
// times and metrics.
type ReplayOptions struct {
	// Sep separates the columns: "comma" (the default), "space" (any run of
	// spaces and tabs), "tab", "semicolon", or a single character.
	Sep string
	// Columns names the columns of a file without a header line; without
	// it the first line is the header.
	Columns []string
	// DeviceCol and TimeCol are the columns of the device and of the time
	// (names, or 1-based numbers).
	DeviceCol, TimeCol string
	// DeviceID is a printf pattern that makes the device id from the
	// device column: "%s" (the default) takes it as it is, a number verb
	// such as "engine-%03d" takes it as a whole number.
	DeviceID string
	// TimeFormat is unix-ms, unix-s, rfc3339 or cycle (a count of steps:
	// cycle c is at Start + (c-1)·CycleStep). Default rfc3339.
	TimeFormat string
	// CycleStep is the time of one cycle, default 1h; Start is the time of
	// cycle 1, default 2026-01-01T00:00:00Z.
	CycleStep time.Duration
	Start     time.Time
	// Metrics maps columns to metric names. Empty: every column other than
	// the device and the time is a metric of its own name.
	Metrics []MetricColumn
}

// MetricColumn maps a column (name or 1-based number) to a metric name.
type MetricColumn struct {
	Column, Name string
}

// cmapssSensors names C-MAPSS's 21 sensors by what they measure, as the
// backtest of rules/cmapss_test.go and rules/examples/turbofan.yaml do.
var cmapssSensors = [21]string{
	"t2", "t24", "t30", "t50", "p2", "p15", "p30", "nf", "nc", "epr", "ps30",
	"phi", "nrf", "nrc", "bpr", "farb", "htbleed", "nf_dmd", "pcnfr_dmd", "w31", "w32",
}

// CMAPSS returns the options that replay NASA's C-MAPSS turbofan files
// (train_FD001.txt and the like: space separated, no header; unit, cycle,
// three settings, 21 sensors): unit u is device engine-00u, cycle c is at
// 2026-01-01 + (c-1) hours, and the sensors are sent under the names the
// example rules use (ps30, phi, t50, p30, bpr, w32, ...).
func CMAPSS() ReplayOptions {
	o := ReplayOptions{
		Sep:        "space",
		Columns:    []string{"unit", "cycle", "setting1", "setting2", "setting3"},
		DeviceCol:  "unit",
		TimeCol:    "cycle",
		DeviceID:   "engine-%03d",
		TimeFormat: "cycle",
		CycleStep:  time.Hour,
	}
	for i, name := range cmapssSensors {
		col := fmt.Sprintf("s%d", i+1)
		o.Columns = append(o.Columns, col)
		o.Metrics = append(o.Metrics, MetricColumn{Column: col, Name: name})
	}
	return o
}

// DefaultReplayStart is the time of cycle 1 when ReplayOptions.Start is
// zero: that of the C-MAPSS backtest.
var DefaultReplayStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Replay is recorded telemetry loaded for publishing: every device's
// readings in time order.
type Replay struct {
	ids      []string
	readings [][]Reading // by device
	next     []int       // by device, the next reading to publish
	rows     int
	skipped  int
	first    time.Time
	last     time.Time
	h        replayHeap
	built    bool
}

// LoadReplay reads a CSV file for Replay.
func LoadReplay(file string, o ReplayOptions) (*Replay, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	return ReadReplay(f, file, o)
}

// ReadReplay reads recorded telemetry from r (named name in errors). Rows
// whose metric cells are all empty are skipped; a bad number or time is an
// error with its line.
func ReadReplay(r io.Reader, name string, o ReplayOptions) (*Replay, error) {
	if o.DeviceID == "" {
		o.DeviceID = "%s"
	}
	if o.TimeFormat == "" {
		o.TimeFormat = "rfc3339"
	}
	if o.CycleStep <= 0 {
		o.CycleStep = time.Hour
	}
	if o.Start.IsZero() {
		o.Start = DefaultReplayStart
	}
	switch o.TimeFormat {
	case "unix-ms", "unix-s", "rfc3339", "cycle":
	default:
		return nil, fmt.Errorf("replay: time format %q is not one of unix-ms, unix-s, rfc3339, cycle", o.TimeFormat)
	}
	verb := patternVerb(o.DeviceID)
	numeric := verb == 'd' || verb == 'x' || verb == 'X'
	if !numeric && verb != 's' && verb != 'v' {
		return nil, fmt.Errorf("replay: device id pattern %q must hold one verb, like %%s or engine-%%03d", o.DeviceID)
	}
	split, err := splitter(o.Sep)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	line := 0
	header := o.Columns
	if len(header) == 0 {
		for sc.Scan() {
			line++
			if strings.TrimSpace(sc.Text()) != "" {
				header = split(sc.Text())
				break
			}
		}
		if len(header) == 0 {
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("replay %s: %w", name, err)
			}
			return nil, fmt.Errorf("replay %s: empty file", name)
		}
	}
	col := func(what, c string) (int, error) {
		if n, err := strconv.Atoi(c); err == nil && n >= 1 {
			return n - 1, nil
		}
		for i, h := range header {
			if strings.TrimSpace(h) == c {
				return i, nil
			}
		}
		return 0, fmt.Errorf("replay %s: %s column %q is not among the columns %s", name, what, c, strings.Join(header, ","))
	}
	var errs []error
	devCol, err := col("device", o.DeviceCol)
	errs = append(errs, err)
	timeCol, err := col("time", o.TimeCol)
	errs = append(errs, err)
	type mcol struct {
		idx  int
		name string
	}
	var mcols []mcol
	if len(o.Metrics) == 0 {
		for i, h := range header {
			if i != devCol && i != timeCol {
				mcols = append(mcols, mcol{i, strings.TrimSpace(h)})
			}
		}
	}
	for _, m := range o.Metrics {
		i, err := col("metric", m.Column)
		errs = append(errs, err)
		mcols = append(mcols, mcol{i, m.Name})
	}
	for _, m := range mcols {
		if !proactive.ValidMetricName(m.name) {
			errs = append(errs, fmt.Errorf("replay %s: metric name %q does not match [a-z][a-z0-9_]{0,63} (map it with --metrics COLUMN=name)", name, m.name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(mcols) == 0 {
		return nil, fmt.Errorf("replay %s: no metric columns", name)
	}

	rp := &Replay{}
	byID := map[string]int{}
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		cells := split(text)
		need := max(devCol, timeCol) + 1
		if len(cells) < need {
			return nil, fmt.Errorf("replay %s:%d: %d columns, want at least %d", name, line, len(cells), need)
		}
		raw := strings.TrimSpace(cells[devCol])
		var id string
		if numeric {
			n, err := strconv.ParseFloat(raw, 64)
			if err != nil || n != math.Trunc(n) {
				return nil, fmt.Errorf("replay %s:%d: device %q is not a whole number, which the id pattern %q needs", name, line, raw, o.DeviceID)
			}
			id = fmt.Sprintf(o.DeviceID, int64(n))
		} else {
			id = fmt.Sprintf(o.DeviceID, raw)
		}
		if !proactive.ValidDeviceID(id) {
			return nil, fmt.Errorf("replay %s:%d: device id %q does not match [A-Za-z0-9_.-]{1,64}", name, line, id)
		}
		ts, err := parseTime(strings.TrimSpace(cells[timeCol]), o)
		if err != nil {
			return nil, fmt.Errorf("replay %s:%d: time: %w", name, line, err)
		}
		rd := Reading{Time: ts}
		for _, m := range mcols {
			if m.idx >= len(cells) {
				continue
			}
			c := strings.TrimSpace(cells[m.idx])
			if c == "" || strings.EqualFold(c, "nan") || strings.EqualFold(c, "na") || strings.EqualFold(c, "null") {
				continue
			}
			v, err := strconv.ParseFloat(c, 64)
			if err != nil || math.IsInf(v, 0) {
				return nil, fmt.Errorf("replay %s:%d: column %s: %q is not a number", name, line, header[m.idx], c)
			}
			rd.Metrics = append(rd.Metrics, Value{Name: m.name, V: v})
		}
		rp.rows++
		if len(rd.Metrics) == 0 {
			rp.skipped++
			continue
		}
		i, ok := byID[id]
		if !ok {
			i = len(rp.ids)
			byID[id] = i
			rp.ids = append(rp.ids, id)
			rp.readings = append(rp.readings, nil)
		}
		rp.readings[i] = append(rp.readings[i], rd)
		if rp.first.IsZero() || ts.Before(rp.first) {
			rp.first = ts
		}
		if ts.After(rp.last) {
			rp.last = ts
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("replay %s: %w", name, err)
	}
	for _, rs := range rp.readings {
		slices.SortStableFunc(rs, func(a, b Reading) int { return a.Time.Compare(b.Time) })
	}
	rp.next = make([]int, len(rp.ids))
	return rp, nil
}

func splitter(sep string) (func(string) []string, error) {
	switch sep {
	case "", "comma", ",":
		return func(s string) []string { return strings.Split(s, ",") }, nil
	case "space", "whitespace":
		return strings.Fields, nil
	case "tab", "\t":
		return func(s string) []string { return strings.Split(s, "\t") }, nil
	case "semicolon", ";":
		return func(s string) []string { return strings.Split(s, ";") }, nil
	}
	if len(sep) == 1 {
		return func(s string) []string { return strings.Split(s, sep) }, nil
	}
	return nil, fmt.Errorf("replay: separator %q is not comma, space, tab, semicolon or one character", sep)
}

func parseTime(s string, o ReplayOptions) (time.Time, error) {
	switch o.TimeFormat {
	case "rfc3339":
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
		}
		return t, nil
	case "unix-ms", "unix-s":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return time.Time{}, fmt.Errorf("%q is not a Unix time", s)
		}
		if o.TimeFormat == "unix-s" {
			f *= 1000
		}
		return time.UnixMilli(int64(math.Round(f))).UTC(), nil
	default: // cycle
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return time.Time{}, fmt.Errorf("%q is not a cycle number", s)
		}
		return o.Start.Add(time.Duration((f - 1) * float64(o.CycleStep))), nil
	}
}

// Devices returns the replayed devices' ids, in order of first appearance.
func (rp *Replay) Devices() []string { return rp.ids }

// Rows returns how many data rows the file had, and how many of them were
// skipped for having no metric.
func (rp *Replay) Rows() (rows, skipped int) { return rp.rows, rp.skipped }

// Span returns the first and the last reading's time.
func (rp *Replay) Span() (first, last time.Time) { return rp.first, rp.last }

// Next returns the next reading of all devices in time order (devices in
// order of first appearance at the same instant) as a message published at
// its time, and false at the end.
func (rp *Replay) Next() (Message, bool) {
	if !rp.built {
		rp.h = rp.h[:0]
		for i := range rp.ids {
			if rp.next[i] < len(rp.readings[i]) {
				rp.h = append(rp.h, replayItem{rp, i})
			}
		}
		heap.Init(&rp.h)
		rp.built = true
	}
	if len(rp.h) == 0 {
		return Message{}, false
	}
	i := rp.h[0].dev
	m := rp.take(i)
	if rp.next[i] < len(rp.readings[i]) {
		heap.Fix(&rp.h, 0)
	} else {
		heap.Pop(&rp.h)
	}
	return m, true
}

func (rp *Replay) take(i int) Message {
	r := rp.readings[i][rp.next[i]]
	rp.next[i]++
	return Message{Device: rp.ids[i], At: r.Time, Readings: []Reading{r}, dev: i}
}

// nextOf returns device i's next reading if it is before t.
func (rp *Replay) nextOf(i int, t time.Time) (Message, bool) {
	rp.built = false
	if rp.next[i] >= len(rp.readings[i]) || !rp.readings[i][rp.next[i]].Time.Before(t) {
		return Message{}, false
	}
	return rp.take(i), true
}

type replayItem struct {
	rp  *Replay
	dev int
}

type replayHeap []replayItem

func (h replayHeap) Len() int { return len(h) }
func (h replayHeap) Less(i, j int) bool {
	a := h[i].rp.readings[h[i].dev][h[i].rp.next[h[i].dev]].Time
	b := h[j].rp.readings[h[j].dev][h[j].rp.next[h[j].dev]].Time
	if !a.Equal(b) {
		return a.Before(b)
	}
	return h[i].dev < h[j].dev
}
func (h replayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *replayHeap) Push(x any)   { *h = append(*h, x.(replayItem)) }
func (h *replayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// patternVerb returns the verb of a printf pattern with exactly one verb
// (such as 'd' for "engine-%03d"), or 0.
func patternVerb(p string) byte {
	var verb byte
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		if verb != 0 || i+1 >= len(p) {
			return 0
		}
		i++
		for i < len(p) && strings.IndexByte("+-# 0123456789", p[i]) >= 0 {
			i++
		}
		if i >= len(p) || p[i] == '%' {
			return 0
		}
		verb = p[i]
	}
	return verb
}
