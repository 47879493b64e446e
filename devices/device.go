package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// validateDevice checks d and normalises it for storage.
func validateDevice(d *proactive.Device, now time.Time) error {
	v := newValidator("device")
	v.check(proactive.ValidDeviceID(string(d.ID)), "id", "%q must match [A-Za-z0-9_.-]{1,64}", d.ID)
	d.Model = strings.TrimSpace(d.Model)
	v.text("model", d.Model, 100, true)
	d.Serial = strings.TrimSpace(d.Serial)
	v.text("serial", d.Serial, 100, false)
	d.Name = strings.TrimSpace(d.Name)
	v.text("name", d.Name, 60, false)
	if d.CustomerID != "" {
		v.check(ValidID(d.CustomerID), "customer_id", "%q must match [A-Za-z0-9_.-]{1,64}", d.CustomerID)
	}
	v.text("site.line1", d.Site.Line1, 200, false)
	v.text("site.line2", d.Site.Line2, 200, false)
	v.text("site.city", d.Site.City, 100, false)
	d.Site.PostalCode = strings.ToUpper(strings.TrimSpace(d.Site.PostalCode))
	v.text("site.postal_code", d.Site.PostalCode, 16, false)
	d.Site.Country = strings.ToUpper(strings.TrimSpace(d.Site.Country))
	if d.Site.Country != "" {
		v.check(len(d.Site.Country) == 2 && isAlpha(d.Site.Country), "site.country",
			"%q is not an ISO 3166-1 alpha-2 code like FR", d.Site.Country)
	}
	if d.TimeZone == "" {
		v.addf("time_zone", "required: an IANA zone such as Europe/Paris")
	} else if _, ok := validZone(d.TimeZone); !ok {
		v.addf("time_zone", "%q is not an IANA time zone such as Europe/Paris", d.TimeZone)
	}
	if !d.Installed.IsZero() {
		y, m, day := d.Installed.Date()
		d.Installed = time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
		v.check(y >= 1900, "installed", "before 1900")
		v.check(!d.Installed.After(now.Add(24*time.Hour)), "installed", "in the future")
	}
	d.Firmware = strings.TrimSpace(d.Firmware)
	v.text("firmware", d.Firmware, 64, false)
	d.Metadata = v.object("metadata", d.Metadata)
	return v.err()
}

const deviceColumns = `id, model, serial, customer_id, site_line1, site_line2, site_city, site_postal_code, site_country,
	time_zone, installed_on, firmware, metadata, created_at, updated_at, name`

func scanDevice(row interface{ Scan(...any) error }) (proactive.Device, error) {
	var d proactive.Device
	var customer sql.NullString
	var installed sql.NullTime
	var meta []byte
	err := row.Scan(&d.ID, &d.Model, &d.Serial, &customer, &d.Site.Line1, &d.Site.Line2, &d.Site.City,
		&d.Site.PostalCode, &d.Site.Country, &d.TimeZone, &installed, &d.Firmware, &meta, &d.CreatedAt, &d.UpdatedAt, &d.Name)
	if err != nil {
		return proactive.Device{}, err
	}
	d.CustomerID = customer.String
	if installed.Valid {
		y, m, day := installed.Time.Date()
		d.Installed = time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
	}
	d.Metadata = mustCanonical(meta)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return d, nil
}

// deviceArgs are d's columns after id, in deviceColumns order, up to firmware
// and metadata.
func deviceArgs(d proactive.Device) []any {
	var customer sql.NullString
	if d.CustomerID != "" {
		customer = sql.NullString{String: d.CustomerID, Valid: true}
	}
	return []any{d.Model, d.Serial, customer, d.Site.Line1, d.Site.Line2, d.Site.City, d.Site.PostalCode,
		d.Site.Country, d.TimeZone, nullTime(d.Installed), d.Firmware, string(d.Metadata)}
}

// checkDeviceRefs fails with ENotFound when d names a customer that does not
// exist, and EConflict when its model and serial are another device's.
func checkDeviceRefs(ctx context.Context, q querier, d proactive.Device) error {
	if d.CustomerID != "" {
		var one int
		err := q.QueryRowContext(ctx, `SELECT 1 FROM customers WHERE id = $1`, d.CustomerID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return proactive.Errorf(proactive.ENotFound, "customer %s not found", d.CustomerID)
		} else if err != nil {
			return err
		}
	}
	if d.Serial != "" {
		var other string
		err := q.QueryRowContext(ctx, `SELECT id FROM devices WHERE model = $1 AND serial = $2 AND serial <> '' AND id <> $3`,
			d.Model, d.Serial, string(d.ID)).Scan(&other)
		if err == nil {
			return proactive.Errorf(proactive.EConflict, "serial %s of model %s is already device %s", d.Serial, d.Model, other)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	return nil
}

// CreateDevice registers a device. It fails with EInvalid (*FieldErrors) for
// bad fields, ENotFound for an unknown customer, and EConflict when the id,
// or the serial for the model, is taken.
func (s *Store) CreateDevice(ctx context.Context, d proactive.Device) (proactive.Device, error) {
	now := s.clock()
	if err := validateDevice(&d, now); err != nil {
		return proactive.Device{}, err
	}
	d.CreatedAt, d.UpdatedAt = now, now
	err := s.WithTx(ctx, func(tx *Tx) error {
		if err := checkDeviceRefs(ctx, tx.tx, d); err != nil {
			return err
		}
		args := append([]any{string(d.ID)}, deviceArgs(d)...)
		args = append(args, now, now, d.Name)
		_, err := tx.tx.ExecContext(ctx, `INSERT INTO devices (`+deviceColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`, args...)
		if isUniqueViolation(err) {
			return proactive.Errorf(proactive.EConflict, "device %s already exists", d.ID)
		}
		tx.onCommit(func() { s.dir.put(d.ID, d.Model, d.Installed) })
		return err
	})
	if err != nil {
		return proactive.Device{}, wrapOp("create device", err)
	}
	return d, nil
}

// UpdateDevice replaces a device's fields (all but its creation time).
// ENotFound if there is no such device; other errors as CreateDevice.
func (s *Store) UpdateDevice(ctx context.Context, d proactive.Device) (proactive.Device, error) {
	now := s.clock()
	if err := validateDevice(&d, now); err != nil {
		return proactive.Device{}, err
	}
	var out proactive.Device
	err := s.WithTx(ctx, func(tx *Tx) error {
		var one int
		err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE id = $1`, string(d.ID)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("device", d.ID)
		} else if err != nil {
			return err
		}
		if err := checkDeviceRefs(ctx, tx.tx, d); err != nil {
			return err
		}
		args := append([]any{string(d.ID)}, deviceArgs(d)...)
		args = append(args, now, d.Name)
		row := tx.tx.QueryRowContext(ctx, `UPDATE devices SET model = $2, serial = $3, customer_id = $4,
			site_line1 = $5, site_line2 = $6, site_city = $7, site_postal_code = $8, site_country = $9,
			time_zone = $10, installed_on = $11, firmware = $12, metadata = $13, updated_at = $14, name = $15
			WHERE id = $1 RETURNING `+deviceColumns, args...)
		out, err = scanDevice(row)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("device", d.ID)
		}
		if isUniqueViolation(err) {
			return proactive.Errorf(proactive.EConflict, "serial %s of model %s is already another device's", d.Serial, d.Model)
		}
		tx.onCommit(func() { s.dir.put(out.ID, out.Model, out.Installed) })
		return err
	})
	if err != nil {
		return proactive.Device{}, wrapOp("update device", err)
	}
	return out, nil
}

// GetDevice returns a device; ENotFound if there is none.
func (s *Store) GetDevice(ctx context.Context, id proactive.DeviceID) (proactive.Device, error) {
	d, err := scanDevice(s.read.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`, string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Device{}, notFound("device", id)
	}
	if err != nil {
		return proactive.Device{}, fmt.Errorf("get device: %w", err)
	}
	return d, nil
}

// DeleteDevice removes a device and its credentials. ENotFound if there is
// none; EConflict once it has tickets, which keep their history.
func (s *Store) DeleteDevice(ctx context.Context, id proactive.DeviceID) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tickets WHERE device_id = $1`, string(id)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return proactive.Errorf(proactive.EConflict, "device %s has %d ticket(s): it cannot be deleted", id, n)
		}
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM devices WHERE id = $1`, string(id))
		if isForeignKeyViolation(err) {
			return proactive.Errorf(proactive.EConflict, "device %s is still referenced", id)
		}
		tx.onCommit(func() {
			s.dir.remove(id)
			s.secrets.invalidate(id)
		})
		return rowsAffected(res, err, "device", id)
	})
	return wrapOp("delete device", err)
}

// DeviceFilter narrows ListDevices; zero fields match everything.
type DeviceFilter struct {
	CustomerID string
	Model      string
	ListOptions
}

// ListDevices returns devices in id order.
func (s *Store) ListDevices(ctx context.Context, f DeviceFilter) (Page[proactive.Device], error) {
	limit := f.limit()
	q := `SELECT ` + deviceColumns + ` FROM devices WHERE id > $1`
	args := []any{f.Cursor}
	if f.CustomerID != "" {
		args = append(args, f.CustomerID)
		q += fmt.Sprintf(" AND customer_id = $%d", len(args))
	}
	if f.Model != "" {
		args = append(args, f.Model)
		q += fmt.Sprintf(" AND model = $%d", len(args))
	}
	args = append(args, limit+1)
	q += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return Page[proactive.Device]{}, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var page Page[proactive.Device]
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return Page[proactive.Device]{}, fmt.Errorf("list devices: %w", err)
		}
		page.Items = append(page.Items, d)
	}
	if err := rows.Err(); err != nil {
		return Page[proactive.Device]{}, fmt.Errorf("list devices: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = string(page.Items[limit-1].ID)
	}
	return page, nil
}
