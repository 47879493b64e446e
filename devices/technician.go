package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// weekdayKeys are the keys of WeeklyHours' JSON form, indexed by
// time.Weekday.
var weekdayKeys = func() (k [7]string) {
	for d := range k {
		k[d] = proactive.WeekdayKey(time.Weekday(d))
	}
	return k
}()

// normalizePostal upper-cases a postal code and removes its spaces.
var normalizePostal = proactive.NormalizePostalCode

// maxShiftsPerDay and maxTimeOff bound a technician's calendar.
const (
	maxShiftsPerDay = 6
	maxTimeOff      = 200
)

// validateTechnician checks t and normalises it for storage.
func validateTechnician(t *proactive.Technician) error {
	v := newValidator("technician")
	v.check(ValidID(t.ID), "id", "%q must match [A-Za-z0-9_.-]{1,64}", t.ID)
	t.Name = strings.TrimSpace(t.Name)
	v.text("name", t.Name, 200, true)
	if t.Phone == "" {
		v.addf("phone", "required")
	} else if p, ok := NormalizePhone(t.Phone); ok {
		t.Phone = p
	} else {
		v.addf("phone", "%q is not in E.164 form, like +14155550123", t.Phone)
	}
	if t.TimeZone == "" {
		v.addf("time_zone", "required: an IANA zone such as Europe/Paris")
	} else if _, ok := validZone(t.TimeZone); !ok {
		v.addf("time_zone", "%q is not an IANA time zone such as Europe/Paris", t.TimeZone)
	}
	skills := make([]string, 0, len(t.Skills))
	for i, s := range t.Skills {
		s = strings.TrimSpace(s)
		if !proactive.ValidMetricName(s) {
			v.addf(fmt.Sprintf("skills[%d]", i), "%q is not a component name ([a-z][a-z0-9_]{0,63})", s)
			continue
		}
		skills = append(skills, s)
	}
	slices.Sort(skills)
	t.Skills = slices.Compact(skills)
	area := make([]string, 0, len(t.ServiceArea))
	for i, p := range t.ServiceArea {
		p = normalizePostal(p)
		if p != "*" && (len(p) == 0 || len(p) > 10 || !isAlnum(p)) {
			v.addf(fmt.Sprintf("service_area[%d]", i), "%q is not a postal code prefix (1-10 letters and digits) or *", p)
			continue
		}
		area = append(area, p)
	}
	slices.Sort(area)
	t.ServiceArea = slices.Compact(area)
	for d, shifts := range t.Hours {
		field := "hours." + weekdayKeys[d]
		v.check(len(shifts) <= maxShiftsPerDay, field, "more than %d shifts", maxShiftsPerDay)
		sorted := slices.Clone(shifts)
		slices.SortFunc(sorted, func(a, b proactive.Shift) int { return int(a.Start - b.Start) })
		for i, s := range sorted {
			f := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case !s.Start.Valid() || !s.End.Valid():
				v.addf(f, "times must be within 00:00-23:59")
			case s.End <= s.Start:
				v.addf(f, "ends at %s, not after it starts at %s (shifts do not cross midnight)", s.End, s.Start)
			case i > 0 && s.Start < sorted[i-1].End:
				v.addf(f, "%s-%s overlaps %s-%s", s.Start, s.End, sorted[i-1].Start, sorted[i-1].End)
			}
		}
		t.Hours[d] = sorted
	}
	v.check(len(t.TimeOff) <= maxTimeOff, "time_off", "more than %d periods", maxTimeOff)
	t.TimeOff = slices.Clone(t.TimeOff) // sorted below: leave the caller's slice alone
	for i := range t.TimeOff {
		o := &t.TimeOff[i]
		f := fmt.Sprintf("time_off[%d]", i)
		o.Start, o.End = dbTime(o.Start), dbTime(o.End)
		v.check(!o.Start.IsZero() && !o.End.IsZero(), f, "start and end are required")
		v.check(o.End.After(o.Start), f, "ends before it starts")
		v.text(f+".reason", o.Reason, 200, false)
	}
	slices.SortFunc(t.TimeOff, func(a, b proactive.TimeOff) int { return a.Start.Compare(b.Start) })
	return v.err()
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

const technicianColumns = `id, name, phone, time_zone, created_at, updated_at`

// writeTechnicianDetails replaces t's skills, area, hours and time off.
func writeTechnicianDetails(ctx context.Context, q querier, t proactive.Technician) error {
	for _, table := range []string{"technician_skills", "technician_areas", "technician_hours", "technician_time_off"} {
		if _, err := q.ExecContext(ctx, `DELETE FROM `+table+` WHERE technician_id = $1`, t.ID); err != nil {
			return err
		}
	}
	for _, s := range t.Skills {
		if _, err := q.ExecContext(ctx, `INSERT INTO technician_skills (technician_id, component) VALUES ($1, $2)`, t.ID, s); err != nil {
			return err
		}
	}
	for _, p := range t.ServiceArea {
		if _, err := q.ExecContext(ctx, `INSERT INTO technician_areas (technician_id, postal_prefix) VALUES ($1, $2)`, t.ID, p); err != nil {
			return err
		}
	}
	for d, shifts := range t.Hours {
		for _, s := range shifts {
			if _, err := q.ExecContext(ctx, `INSERT INTO technician_hours (technician_id, weekday, start_min, end_min)
				VALUES ($1, $2, $3, $4)`, t.ID, d, int(s.Start), int(s.End)); err != nil {
				return err
			}
		}
	}
	for _, o := range t.TimeOff {
		if _, err := q.ExecContext(ctx, `INSERT INTO technician_time_off (technician_id, starts_at, ends_at, reason)
			VALUES ($1, $2, $3, $4)`, t.ID, o.Start, o.End, o.Reason); err != nil {
			return err
		}
	}
	return nil
}

// readTechnicianDetails fills t's skills, area, hours and time off.
func readTechnicianDetails(ctx context.Context, q querier, t *proactive.Technician) error {
	t.Skills, t.ServiceArea, t.Hours, t.TimeOff = []string{}, []string{}, proactive.WeeklyHours{}, nil
	rows, err := q.QueryContext(ctx, `SELECT component FROM technician_skills WHERE technician_id = $1 ORDER BY component`, t.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		t.Skills = append(t.Skills, s)
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT postal_prefix FROM technician_areas WHERE technician_id = $1 ORDER BY postal_prefix`, t.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return err
		}
		t.ServiceArea = append(t.ServiceArea, p)
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT weekday, start_min, end_min FROM technician_hours
		WHERE technician_id = $1 ORDER BY weekday, start_min`, t.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var d, start, end int
		if err := rows.Scan(&d, &start, &end); err != nil {
			rows.Close()
			return err
		}
		if d >= 0 && d < 7 {
			t.Hours[d] = append(t.Hours[d], proactive.Shift{Start: proactive.Clock(start), End: proactive.Clock(end)})
		}
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT starts_at, ends_at, reason FROM technician_time_off
		WHERE technician_id = $1 ORDER BY starts_at, id`, t.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var o proactive.TimeOff
		if err := rows.Scan(&o.Start, &o.End, &o.Reason); err != nil {
			rows.Close()
			return err
		}
		o.Start, o.End = o.Start.UTC(), o.End.UTC()
		t.TimeOff = append(t.TimeOff, o)
	}
	return closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	return errors.Join(err, rows.Close())
}

// CreateTechnician adds a technician. EInvalid (*FieldErrors) for bad fields,
// EConflict when the id is taken.
func (s *Store) CreateTechnician(ctx context.Context, t proactive.Technician) (proactive.Technician, error) {
	if err := validateTechnician(&t); err != nil {
		return proactive.Technician{}, err
	}
	now := s.clock()
	t.CreatedAt, t.UpdatedAt = now, now
	err := s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `INSERT INTO technicians (`+technicianColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			t.ID, t.Name, t.Phone, t.TimeZone, now, now)
		if isUniqueViolation(err) {
			return proactive.Errorf(proactive.EConflict, "technician %s already exists", t.ID)
		}
		if err != nil {
			return err
		}
		return writeTechnicianDetails(ctx, tx.tx, t)
	})
	if err != nil {
		return proactive.Technician{}, wrapOp("create technician", err)
	}
	return s.GetTechnician(ctx, t.ID)
}

// UpdateTechnician replaces a technician's fields, calendar included.
// ENotFound if there is no such technician.
func (s *Store) UpdateTechnician(ctx context.Context, t proactive.Technician) (proactive.Technician, error) {
	if err := validateTechnician(&t); err != nil {
		return proactive.Technician{}, err
	}
	err := s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `UPDATE technicians SET name = $2, phone = $3, time_zone = $4, updated_at = $5
			WHERE id = $1`, t.ID, t.Name, t.Phone, t.TimeZone, s.clock())
		if err := rowsAffected(res, err, "technician", t.ID); err != nil {
			return err
		}
		return writeTechnicianDetails(ctx, tx.tx, t)
	})
	if err != nil {
		return proactive.Technician{}, wrapOp("update technician", err)
	}
	return s.GetTechnician(ctx, t.ID)
}

// GetTechnician returns a technician with their calendar; ENotFound if there
// is none.
func (s *Store) GetTechnician(ctx context.Context, id string) (proactive.Technician, error) {
	var t proactive.Technician
	err := s.read.QueryRowContext(ctx, `SELECT `+technicianColumns+` FROM technicians WHERE id = $1`, id).
		Scan(&t.ID, &t.Name, &t.Phone, &t.TimeZone, &t.CreatedAt, &t.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Technician{}, notFound("technician", id)
	}
	if err == nil {
		err = readTechnicianDetails(ctx, s.read, &t)
	}
	if err != nil {
		return proactive.Technician{}, fmt.Errorf("get technician: %w", err)
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return t, nil
}

// DeleteTechnician removes a technician. ENotFound if there is none;
// EConflict while tickets are assigned to them.
func (s *Store) DeleteTechnician(ctx context.Context, id string) error {
	return s.deleteUnreferenced(ctx, "technician", "technicians", id, `SELECT COUNT(*) FROM tickets WHERE technician_id = $1`, "technician %s is assigned to %d ticket(s)")
}

// TechnicianFilter narrows ListTechnicians; zero fields match everything.
type TechnicianFilter struct {
	// Skill keeps technicians who repair this component.
	Skill string
	// PostalCode keeps technicians whose service area covers it.
	PostalCode string
	ListOptions
}

// ListTechnicians returns technicians, with their calendars, in id order.
func (s *Store) ListTechnicians(ctx context.Context, f TechnicianFilter) (Page[proactive.Technician], error) {
	limit := f.limit()
	q := `SELECT ` + technicianColumns + ` FROM technicians t WHERE id > $1`
	args := []any{f.Cursor}
	if f.Skill != "" {
		args = append(args, f.Skill)
		q += fmt.Sprintf(` AND EXISTS (SELECT 1 FROM technician_skills k WHERE k.technician_id = t.id AND k.component = $%d)`, len(args))
	}
	if f.PostalCode != "" {
		args = append(args, normalizePostal(f.PostalCode))
		// Prefixes are letters and digits only, so LIKE needs no escaping.
		q += fmt.Sprintf(` AND EXISTS (SELECT 1 FROM technician_areas a WHERE a.technician_id = t.id
			AND (a.postal_prefix = '*' OR CAST($%d AS TEXT) LIKE a.postal_prefix || '%%'))`, len(args))
	}
	args = append(args, limit+1)
	q += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return Page[proactive.Technician]{}, fmt.Errorf("list technicians: %w", err)
	}
	var page Page[proactive.Technician]
	for rows.Next() {
		var t proactive.Technician
		if err := rows.Scan(&t.ID, &t.Name, &t.Phone, &t.TimeZone, &t.CreatedAt, &t.UpdatedAt); err != nil {
			rows.Close()
			return Page[proactive.Technician]{}, fmt.Errorf("list technicians: %w", err)
		}
		t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
		page.Items = append(page.Items, t)
	}
	if err := closeRows(rows); err != nil {
		return Page[proactive.Technician]{}, fmt.Errorf("list technicians: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = page.Items[limit-1].ID
	}
	for i := range page.Items {
		if err := readTechnicianDetails(ctx, s.read, &page.Items[i]); err != nil {
			return Page[proactive.Technician]{}, fmt.Errorf("list technicians: %w", err)
		}
	}
	return page, nil
}
