package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/proactivehq/proactive"
)

// Where a maintenance record came from, as the maintenance table's source
// column keeps it.
const (
	maintenanceFromImport = "import"
	maintenanceFromAPI    = "api"
	maintenanceFromTicket = "ticket"
)

// maintenanceLock is the PostgreSQL advisory lock key that serialises the
// writers of maintenance records. An identity value is taken at INSERT
// time, not at commit, so without it a record could commit after one with
// a higher id and a reader following ids (MaintenanceAfter) would skip it.
// SQLite has one writer and needs none.
const maintenanceLock = 0x6d61696e74 // "maint"

// DefaultMaintenanceLimit is how many records MaintenanceAfter returns when
// the caller gives no limit; MaxMaintenanceLimit is the most it returns.
const (
	DefaultMaintenanceLimit = 1000
	MaxMaintenanceLimit     = 10000
)

const maintenanceColumns = `id, device_id, time, component, kind, notes`

func scanMaintenance(row interface{ Scan(...any) error }) (proactive.Maintenance, error) {
	var m proactive.Maintenance
	err := row.Scan(&m.ID, &m.Device, &m.Time, &m.Component, &m.Kind, &m.Notes)
	m.Time = m.Time.UTC()
	return m, err
}

// validateMaintenance checks m as proactive.Maintenance.Validate does, with
// each problem under its JSON field name prefixed by prefix.
func validateMaintenance(v *validator, prefix string, m proactive.Maintenance) {
	v.check(proactive.ValidDeviceID(string(m.Device)), prefix+"device_id", "%q must match [A-Za-z0-9_.-]{1,64}", m.Device)
	v.check(!m.Time.IsZero(), prefix+"time", "required")
	v.check(proactive.ValidMetricName(m.Component), prefix+"component", "%q must match [a-z][a-z0-9_]{0,63}", m.Component)
	v.check(m.Kind.Valid(), prefix+"kind", "%q is not replaced, repaired or inspected", m.Kind)
	// Notes may hold the newlines and tabs of a technician's report.
	switch n := m.Notes; {
	case !utf8.ValidString(n):
		v.addf(prefix+"notes", "not valid UTF-8")
	case utf8.RuneCountInString(n) > proactive.MaxMaintenanceNotesLen:
		v.addf(prefix+"notes", "longer than %d characters", proactive.MaxMaintenanceNotesLen)
	case strings.ContainsFunc(n, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		v.addf(prefix+"notes", "contains control characters")
	}
}

// checkMaintenance validates records for AddMaintenance: *FieldErrors
// keyed by field (device_id, time, ...) for one record, by index and field
// ([2].kind) for several.
func checkMaintenance(ms []proactive.Maintenance) error {
	v := newValidator("maintenance")
	for i, m := range ms {
		prefix := ""
		if len(ms) > 1 {
			prefix = fmt.Sprintf("[%d].", i)
		}
		validateMaintenance(v, prefix, m)
		if err := v.err(); err == nil {
			// The root's rules are the contract; this keeps a drift
			// between the two from letting a bad record through.
			if err := m.Validate(); err != nil {
				return err
			}
		}
	}
	return v.err()
}

// AddMaintenance records maintenance done on devices, all in one
// transaction, and returns each record's id in order. Records are
// validated first, all of them: a bad one is EInvalid as *FieldErrors and
// nothing is written. A record of an unknown device is ENotFound. A record
// equal to a stored one on its natural key (device, time, component, kind)
// is not written again: its id is the stored one's, so adding is
// idempotent.
func (c *conn) AddMaintenance(ctx context.Context, ms []proactive.Maintenance) ([]int64, error) {
	if err := checkMaintenance(ms); err != nil {
		return nil, err
	}
	ids := make([]int64, len(ms))
	err := c.inTx(ctx, func(tx *Tx) error {
		for i, m := range ms {
			var err error
			if ids[i], _, err = tx.addMaintenance(ctx, m, maintenanceFromAPI, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrapOp("add maintenance", err)
	}
	return ids, nil
}

// addMaintenance writes one valid record from source (and ticket, when not
// 0) and returns its id, and whether it is new: a record with the same
// natural key keeps its id and is not written again. ENotFound for an
// unknown device.
func (tx *Tx) addMaintenance(ctx context.Context, m proactive.Maintenance, source string, ticket int64) (int64, bool, error) {
	if err := tx.deviceExists(ctx, m.Device); err != nil {
		return 0, false, err
	}
	if err := tx.lockMaintenance(ctx); err != nil {
		return 0, false, err
	}
	return tx.insertMaintenance(ctx, m, source, ticket)
}

// deviceExists is ENotFound when device is not registered. Writers check
// it before inserting so that a PostgreSQL transaction is not aborted by a
// foreign key violation.
func (tx *Tx) deviceExists(ctx context.Context, device proactive.DeviceID) error {
	var one int
	err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE id = $1`, string(device)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("device", device)
	}
	return err
}

// lockMaintenance takes, on PostgreSQL, the lock that orders the writers
// of maintenance records (see maintenanceLock) until the transaction ends.
// Taking it again in the same transaction is harmless.
func (tx *Tx) lockMaintenance(ctx context.Context) error {
	if tx.s.dialect != Postgres {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(maintenanceLock)); err != nil {
		return fmt.Errorf("lock maintenance: %w", err)
	}
	return nil
}

// insertMaintenance is addMaintenance once the device is known to exist
// and the lock is held.
func (tx *Tx) insertMaintenance(ctx context.Context, m proactive.Maintenance, source string, ticket int64) (int64, bool, error) {
	at := dbTime(m.Time)
	ticketID := sql.NullInt64{Int64: ticket, Valid: ticket != 0}
	var id int64
	err := tx.tx.QueryRowContext(ctx, `INSERT INTO maintenance
			(device_id, time, component, kind, notes, source, ticket_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (device_id, time, component, kind) DO NOTHING
		RETURNING id`,
		string(m.Device), at, m.Component, string(m.Kind), m.Notes, source, ticketID, tx.s.clock()).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, err
	}
	err = tx.tx.QueryRowContext(ctx, `SELECT id FROM maintenance
		WHERE device_id = $1 AND time = $2 AND component = $3 AND kind = $4`,
		string(m.Device), at, m.Component, string(m.Kind)).Scan(&id)
	return id, false, err
}

// MaintenanceAfter returns up to limit maintenance records with an id
// greater than afterID, in id order (the order they were written), their
// IDs set: a reader that has seen id n calls it with n to get what is new.
// A limit of 0 or less means DefaultMaintenanceLimit; more than
// MaxMaintenanceLimit means that.
func (c *conn) MaintenanceAfter(ctx context.Context, afterID int64, limit int) ([]proactive.Maintenance, error) {
	if limit <= 0 {
		limit = DefaultMaintenanceLimit
	}
	limit = min(limit, MaxMaintenanceLimit)
	rows, err := c.read.QueryContext(ctx, `SELECT `+maintenanceColumns+` FROM maintenance
		WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("read maintenance: %w", err)
	}
	return collectMaintenance(rows)
}

// DeviceMaintenance returns a device's maintenance history, oldest first
// (by time, then id). ENotFound when the device is not registered.
func (c *conn) DeviceMaintenance(ctx context.Context, device proactive.DeviceID) ([]proactive.Maintenance, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT `+maintenanceColumns+` FROM maintenance
		WHERE device_id = $1 ORDER BY time, id`, string(device))
	if err != nil {
		return nil, fmt.Errorf("read maintenance: %w", err)
	}
	ms, err := collectMaintenance(rows)
	if err != nil || len(ms) > 0 {
		return ms, err
	}
	var one int
	err = c.read.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE id = $1`, string(device)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("device", device)
	}
	if err != nil {
		return nil, fmt.Errorf("read device: %w", err)
	}
	return ms, nil
}

func collectMaintenance(rows *sql.Rows) ([]proactive.Maintenance, error) {
	defer rows.Close()
	var out []proactive.Maintenance
	for rows.Next() {
		m, err := scanMaintenance(rows)
		if err != nil {
			return nil, fmt.Errorf("read maintenance: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read maintenance: %w", err)
	}
	return out, nil
}

// recordReplacement records, for a ticket closed with part_replaced, that
// its component was replaced at the visit's time: when its last completed
// appointment was done, or closedAt when it has none (a visit reported
// outside the SMS outreach).
func (tx *Tx) recordReplacement(ctx context.Context, t proactive.Ticket, closedAt time.Time) error {
	at := closedAt
	var done sql.NullTime
	err := tx.tx.QueryRowContext(ctx, `SELECT done_at FROM appointments
		WHERE ticket_id = $1 AND status = 'done' AND done_at IS NOT NULL
		ORDER BY done_at DESC LIMIT 1`, t.ID).Scan(&done)
	switch {
	case err == nil && done.Valid:
		at = done.Time
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("read the visit: %w", err)
	}
	m := proactive.Maintenance{Device: t.Device, Time: at, Component: t.Component,
		Kind: proactive.MaintenanceReplaced, Notes: t.OutcomeNotes}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("record the replacement of ticket %d: %w", t.ID, err)
	}
	_, _, err = tx.addMaintenance(ctx, m, maintenanceFromTicket, t.ID)
	return err
}
