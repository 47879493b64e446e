package devices

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// MaintenanceColumns are the columns ImportMaintenance understands; all but
// notes are required.
var MaintenanceColumns = []string{"device_id", "time", "component", "kind", "notes"}

// maintRow is a valid row waiting for its batch.
type maintRow struct {
	line int
	m    proactive.Maintenance
}

// ImportMaintenance adds the maintenance records of a CSV file read from r:
// a header naming the columns (MaintenanceColumns, any order,
// case-insensitive), then one record a row. time is RFC 3339 (2026-03-10T09:30:00Z)
// or Unix milliseconds; kind is replaced, repaired or inspected; component
// is a name like compressor.
//
// A record equal to a stored one on device_id, time, component and kind is
// counted unchanged and not written again, so importing a file again adds
// nothing; the report's Updated is always 0. A bad row, or one naming a
// device not registered, is rejected with its reasons and the others are
// imported all the same. Rows are written in transactions of 500. The error
// is for a file-level or database failure only; the batches committed
// before it stay, which is harmless since importing is idempotent.
func ImportMaintenance(ctx context.Context, s *Store, r io.Reader) (ImportReport, error) {
	var rep ImportReport
	var batch []maintRow
	// known holds the devices found so far, checked once per import: one
	// deleted meanwhile fails its batch on the foreign key instead.
	known := map[proactive.DeviceID]bool{}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var created, unchanged int
		var rejected []RowError
		err := s.WithTx(ctx, func(tx *Tx) error {
			created, unchanged, rejected = 0, 0, nil
			if err := tx.lockMaintenance(ctx); err != nil {
				return err
			}
			for _, row := range batch {
				if !known[row.m.Device] {
					err := tx.deviceExists(ctx, row.m.Device)
					if proactive.ErrorCode(err) == proactive.ENotFound {
						rejected = append(rejected, RowError{Line: row.line, DeviceID: string(row.m.Device),
							Reason: fmt.Sprintf("device_id: %q is not a registered device", row.m.Device)})
						continue
					}
					if err != nil {
						return fmt.Errorf("line %d: %w", row.line, err)
					}
					known[row.m.Device] = true
				}
				_, isNew, err := tx.insertMaintenance(ctx, row.m, maintenanceFromImport, 0)
				switch {
				case err != nil:
					return fmt.Errorf("line %d: %w", row.line, err)
				case isNew:
					created++
				default:
					unchanged++
				}
			}
			return nil
		})
		batch = batch[:0]
		if err != nil {
			return wrapOp("import maintenance", err)
		}
		rep.Created += created
		rep.Unchanged += unchanged
		rep.Rejected = append(rep.Rejected, rejected...)
		return nil
	}
	var flushErr error
	err := eachMaintenanceRow(r, func(row maintRow, reason string) error {
		rep.Rows++
		if reason != "" {
			rep.Rejected = append(rep.Rejected, RowError{Line: row.line, DeviceID: string(row.m.Device), Reason: reason})
			return nil
		}
		batch = append(batch, row)
		if len(batch) == importBatch {
			flushErr = flush()
		}
		return flushErr
	})
	if flushErr == nil {
		// What was read before a bad CSV line is imported all the same.
		err = errors.Join(flush(), err)
	}
	return sortRejected(rep), err
}

// ReadMaintenance reads a maintenance CSV file as ImportMaintenance does,
// into memory and without a database (for a backtest's --maintenance): any
// bad row fails the read with its line and reasons.
func ReadMaintenance(r io.Reader) ([]proactive.Maintenance, error) {
	var out []proactive.Maintenance
	err := eachMaintenanceRow(r, func(row maintRow, reason string) error {
		if reason != "" {
			return proactive.Errorf(proactive.EInvalid, "line %d: %s", row.line, reason)
		}
		out = append(out, row.m)
		return nil
	})
	return out, err
}

// eachMaintenanceRow reads the header and then calls fn with each row and,
// for a bad one, the reason (row.m then holds what was read of it). It
// stops at the first error fn returns, or at a line that is not CSV.
func eachMaintenanceRow(r io.Reader, fn func(row maintRow, reason string) error) error {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return proactive.Errorf(proactive.EInvalid, "empty file: want a header line naming the columns (%s)", strings.Join(MaintenanceColumns, ","))
	}
	if err != nil {
		return proactive.Errorf(proactive.EInvalid, "read CSV header: %v", err)
	}
	col, err := csvColumns(header, MaintenanceColumns, MaintenanceColumns[:4]...)
	if err != nil {
		return err
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, csv.ErrFieldCount) {
			return proactive.Errorf(proactive.EInvalid, "read CSV: %v", err)
		}
		line, _ := cr.FieldPos(0) // after the error check: it panics after a parse error
		if err != nil {
			err = fn(maintRow{line: line, m: proactive.Maintenance{Device: proactive.DeviceID(get(rec, "device_id"))}},
				fmt.Sprintf("has %d fields, the header %d", len(rec), len(header)))
		} else {
			m, reason := parseMaintenanceRow(get, rec)
			err = fn(maintRow{line: line, m: m}, reason)
		}
		if err != nil {
			return err
		}
	}
}

// sortRejected puts the rejected rows in file order: a row is rejected
// when read, or when its batch is written.
func sortRejected(rep ImportReport) ImportReport {
	sort.SliceStable(rep.Rejected, func(i, j int) bool { return rep.Rejected[i].Line < rep.Rejected[j].Line })
	return rep
}

// parseMaintenanceRow reads and validates one row. A bad row has a reason
// naming each bad column, like `time: required; kind: "swapped" is not
// replaced, repaired or inspected`.
func parseMaintenanceRow(get func([]string, string) string, rec []string) (proactive.Maintenance, string) {
	v := newValidator("row")
	m := proactive.Maintenance{
		Device:    proactive.DeviceID(get(rec, "device_id")),
		Component: get(rec, "component"),
		Kind:      proactive.MaintenanceKind(strings.ToLower(get(rec, "kind"))),
		Notes:     get(rec, "notes"),
	}
	raw := get(rec, "time")
	at, err := ParseMaintenanceTime(raw)
	if err != nil {
		v.addf("time", "%v", err)
	}
	m.Time = at
	if m.Device == "" {
		v.addf("device_id", "required")
	}
	if m.Component == "" {
		v.addf("component", "required")
	}
	validateMaintenance(v, "", m)
	if len(v.order) > 0 {
		parts := make([]string, len(v.order))
		for i, f := range v.order {
			parts[i] = f + ": " + v.fields[f]
		}
		return m, strings.Join(parts, "; ")
	}
	if err := m.Validate(); err != nil {
		return m, proactive.ErrorMessage(err)
	}
	return m, ""
}

// ParseMaintenanceTime reads a maintenance record's time: RFC 3339, like
// 2026-03-10T09:30:00Z or 2026-03-10T10:30:00+01:00, or Unix milliseconds,
// like 1773135000000. The time is returned in UTC.
func ParseMaintenanceTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("required")
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		// Beyond ±10^14 ms (year ~5138) a number is surely not milliseconds.
		if ms < -1e14 || ms > 1e14 {
			return time.Time{}, fmt.Errorf("%s is out of range for Unix milliseconds", s)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (like 2026-03-10T09:30:00Z) nor Unix milliseconds", s)
	}
	return t.UTC(), nil
}
