package devices

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/proactivehq/proactive"
)

// TechnicianColumns are the columns ImportTechnicians understands. skills
// and service_area are lists separated by spaces, commas or semicolons;
// hours is a weekly schedule in the form ParseWeeklyHours reads.
var TechnicianColumns = []string{"technician_id", "name", "phone", "time_zone", "skills", "service_area", "hours"}

// ImportTechnicians upserts the technicians of a CSV file read from r: a
// header naming the columns (TechnicianColumns, any order, all required),
// then one technician a row. A row whose technician exists replaces its
// name, phone, zone, skills, area and hours and keeps its time off. A bad
// row is rejected with its reasons and the others are imported all the
// same; importing a file again changes nothing. The error is for a
// file-level or database failure only.
func ImportTechnicians(ctx context.Context, s *Store, r io.Reader) (ImportReport, error) {
	var rep ImportReport
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return rep, proactive.Errorf(proactive.EInvalid, "empty file: want a header line naming the columns (%s)", strings.Join(TechnicianColumns, ","))
	}
	if err != nil {
		return rep, proactive.Errorf(proactive.EInvalid, "read CSV header: %v", err)
	}
	col, err := csvColumns(header, TechnicianColumns, TechnicianColumns...)
	if err != nil {
		return rep, err
	}
	get := func(rec []string, name string) string {
		if i := col[name]; i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rep, nil
		}
		if err != nil && !errors.Is(err, csv.ErrFieldCount) {
			return rep, proactive.Errorf(proactive.EInvalid, "read CSV: %v", err)
		}
		line, _ := cr.FieldPos(0) // after the error check: it panics after a parse error
		rep.Rows++
		id := get(rec, "technician_id")
		reject := func(reason string) {
			rep.Rejected = append(rep.Rejected, RowError{Line: line, DeviceID: id, Reason: reason})
		}
		if err != nil {
			reject(fmt.Sprintf("has %d fields, the header %d", len(rec), len(header)))
			continue
		}
		hours, err := ParseWeeklyHours(get(rec, "hours"))
		if err != nil {
			reject("hours: " + err.Error())
			continue
		}
		t := proactive.Technician{
			ID: id, Name: get(rec, "name"), Phone: get(rec, "phone"), TimeZone: get(rec, "time_zone"),
			Skills: splitList(get(rec, "skills")), ServiceArea: splitList(get(rec, "service_area")), Hours: hours,
		}
		old, err := s.GetTechnician(ctx, id)
		switch {
		case err == nil:
			t.TimeOff = old.TimeOff
			if sameTechnician(old, t) {
				rep.Unchanged++
				continue
			}
			_, err = s.UpdateTechnician(ctx, t)
			if err == nil {
				rep.Updated++
			}
		case proactive.ErrorCode(err) == proactive.ENotFound || proactive.ErrorCode(err) == proactive.EInvalid:
			_, err = s.CreateTechnician(ctx, t)
			if err == nil {
				rep.Created++
			}
		}
		if err != nil {
			reason, ok := rowReason(err)
			if !ok {
				return rep, fmt.Errorf("line %d: %w", line, err)
			}
			reject(reason)
		}
	}
}

// sameTechnician reports whether writing b over a would change nothing.
func sameTechnician(a, b proactive.Technician) bool {
	if err := validateTechnician(&b); err != nil {
		return false
	}
	return a.Name == b.Name && a.Phone == b.Phone && a.TimeZone == b.TimeZone &&
		slices.Equal(a.Skills, b.Skills) && slices.Equal(a.ServiceArea, b.ServiceArea) &&
		fmt.Sprint(a.Hours) == fmt.Sprint(b.Hours)
}

// splitList splits a cell on spaces, commas and semicolons.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == ';' })
}

// ParseWeeklyHours reads a schedule like "mon-fri 08:00-12:00 13:00-17:00;
// sat 09:00-12:00": groups separated by semicolons, each a day or a range
// of days (sun, mon, ..., sat; a range may wrap, like fri-mon) followed by
// one or more HH:MM-HH:MM shifts. Days not named have no shifts.
func ParseWeeklyHours(s string) (proactive.WeeklyHours, error) {
	var w proactive.WeeklyHours
	for group := range strings.SplitSeq(s, ";") {
		f := strings.Fields(group)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 {
			return w, fmt.Errorf("%q: want days then shifts, like mon-fri 08:00-17:00", strings.TrimSpace(group))
		}
		days, err := parseDays(f[0])
		if err != nil {
			return w, err
		}
		for _, span := range f[1:] {
			a, b, ok := strings.Cut(span, "-")
			if !ok {
				return w, fmt.Errorf("shift %q: want HH:MM-HH:MM", span)
			}
			start, err := proactive.ParseClock(a)
			if err != nil {
				return w, fmt.Errorf("shift %q: %w", span, err)
			}
			end, err := proactive.ParseClock(b)
			if err != nil {
				return w, fmt.Errorf("shift %q: %w", span, err)
			}
			for _, d := range days {
				w[d] = append(w[d], proactive.Shift{Start: start, End: end})
			}
		}
	}
	return w, nil
}

// parseDays reads "mon" or "mon-fri" into weekday indexes.
func parseDays(s string) ([]int, error) {
	a, b, isRange := strings.Cut(strings.ToLower(s), "-")
	from := slices.Index(weekdayKeys[:], a)
	to := from
	if isRange {
		to = slices.Index(weekdayKeys[:], b)
	}
	if from < 0 || to < 0 {
		return nil, fmt.Errorf("%q: want a weekday (sun, mon, ..., sat) or a range like mon-fri", s)
	}
	var days []int
	for d := from; ; d = (d + 1) % 7 {
		days = append(days, d)
		if d == to {
			return days, nil
		}
	}
}
