package rules

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// ReadFailures reads a CSV of known failures for a backtest's scoring: a
// header naming the columns device (or device_id), time and component, in
// any order, then one failure a line, its time in RFC 3339 or Unix
// milliseconds; lines starting with # are comments. An optional kind column
// marks rows that are no failure: a row of kind decoy (a drift with no
// failure behind it, as in the simulator's ground truth) is skipped, so the
// simulator's truth CSV serves as it is. name is the file's name for the
// errors, which report every bad line (up to 20 CSV errors).
func ReadFailures(name string, r io.Reader) ([]Failure, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty: want a header device,time,component", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if h == "device_id" {
			h = "device"
		}
		col[h] = i
	}
	var errs []error
	for _, c := range []string{"device", "time", "component"} {
		if _, ok := col[c]; !ok {
			errs = append(errs, fmt.Errorf("%s:1: no %s column in the header %q (want device,time,component)", name, c, strings.Join(header, ",")))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var out []Failure
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil { // FieldPos panics after a parse error: the error names the line
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			if len(errs) >= 20 {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		get := func(c string) string {
			if i := col[c]; i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if _, ok := col["kind"]; ok && strings.EqualFold(get("kind"), "decoy") {
			continue
		}
		fl := Failure{Device: proactive.DeviceID(get("device")), Component: get("component")}
		if !proactive.ValidDeviceID(string(fl.Device)) {
			errs = append(errs, fmt.Errorf("%s:%d: device %q is not a device id", name, line, fl.Device))
		}
		if fl.Component == "" {
			errs = append(errs, fmt.Errorf("%s:%d: component is empty", name, line))
		}
		ts := get("time")
		if ms, err := strconv.ParseInt(ts, 10, 64); err == nil {
			fl.Time = time.UnixMilli(ms).UTC()
		} else if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			fl.Time = t.UTC()
		} else {
			errs = append(errs, fmt.Errorf("%s:%d: time %q: want RFC 3339 or Unix milliseconds", name, line, ts))
		}
		out = append(out, fl)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
