package devices

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// ImportColumns are the columns Import understands, in the order an export
// writes them. A file may give them in any order and leave out all but
// device_id and model.
var ImportColumns = []string{
	"device_id", "model", "serial", "device_name",
	"customer_id", "customer_name", "customer_phone", "customer_language", "customer_quiet_hours", "sms_consent",
	"customer_email", "preferred_channel", "whatsapp_consent", "email_consent",
	"site_street", "site_postal_code", "site_city", "site_country",
	"time_zone", "installed_on", "firmware",
}

// ImportActor is the actor of the consent events an import records.
const ImportActor = "devices import"

// importBatch is how many rows share one write transaction.
const importBatch = 500

// ImportReport is what Import did, row by row.
type ImportReport struct {
	// Rows is the number of data rows read (the header excluded).
	Rows int
	// Created counts rows whose device was new; Updated rows that changed an
	// existing device, its customer or the customer's consent; Unchanged
	// rows that matched the registry already.
	Created, Updated, Unchanged int
	// Rejected lists the rows not imported, in file order.
	Rejected []RowError
}

// RowError is a row Import rejected and why.
type RowError struct {
	// Line is the row's line in the file, the header being line 1.
	Line int
	// DeviceID is the row's device_id as written, possibly empty or invalid.
	DeviceID string
	// Reason names each bad column and what is wrong with it, such as
	// `customer_phone: "0612" is not in E.164 form, like +14155550123; time_zone: required`.
	Reason string
}

// String returns the error as "line L: device D: reason".
func (e RowError) String() string {
	return fmt.Sprintf("line %d: device %s: %s", e.Line, e.DeviceID, e.Reason)
}

// Import upserts the devices and customers of a CSV file read from r into s.
//
// The first line is a header naming the columns (ImportColumns, in any
// order, case-insensitive); device_id and model are required, an unknown or
// repeated column makes the whole file invalid. Each row then describes one
// device and, optionally, its owner:
//
//   - device_id, model, serial, site_street, site_postal_code, site_city,
//     site_country (ISO 3166-1 alpha-2), time_zone (IANA, required for a new
//     device), installed_on (YYYY-MM-DD) and firmware set the device;
//   - device_name names the device as its customer knows it ("kitchen
//     fridge"), which the SMS use instead of the model;
//   - customer_id, customer_name, customer_phone (E.164, or as the
//     site_country writes numbers: 06 12 34 56 78 in FR), customer_language
//     set its owner, who is created when new and updated otherwise; with no
//     customer_id, an existing customer is found by customer_phone;
//   - customer_email and preferred_channel (sms, whatsapp or email) set
//     where the customer's messages go;
//   - sms_consent, whatsapp_consent and email_consent (true or false) record
//     the customer's consent to that channel with RecordConsent (method
//     import, actor ImportActor) when it differs from the recorded one or
//     none was ever recorded.
//
// An empty cell leaves the stored value as it is (a new record gets none),
// so a file that lists only some columns updates only those. Rows are
// upserts: importing the same file again changes nothing and counts its rows
// unchanged.
//
// A row that fails validation or conflicts with another record (a phone or
// serial already taken) is rejected, with every problem, and the other rows
// are imported all the same. Rows are written in transactions of 500;
// progress, when not nil, is called after each with the number of rows done.
//
// Import returns an error only for a file-level failure (no header, unknown
// columns, malformed CSV) or a database failure; the batches committed
// before it stay, which is harmless since importing is idempotent.
func Import(ctx context.Context, s *Store, r io.Reader, progress func(done int)) (ImportReport, error) {
	var rep ImportReport
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return rep, proactive.Errorf(proactive.EInvalid, "empty file: want a header line naming the columns (%s)", strings.Join(ImportColumns, ","))
	}
	if err != nil {
		return rep, proactive.Errorf(proactive.EInvalid, "read CSV header: %v", err)
	}
	im, err := newImporter(s, header)
	if err != nil {
		return rep, err
	}
	var batch []csvRow
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := im.batch(ctx, batch, &rep)
		batch = batch[:0]
		if err == nil && progress != nil {
			progress(rep.Rows)
		}
		return err
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, csv.ErrFieldCount) {
			return rep, errors.Join(flush(), proactive.Errorf(proactive.EInvalid, "read CSV: %v", err))
		}
		line, _ := cr.FieldPos(0)
		row := csvRow{line: line, rec: rec}
		if err != nil {
			row.reject = fmt.Sprintf("has %d fields, the header %d", len(rec), len(header))
		}
		batch = append(batch, row)
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return rep, err
			}
		}
	}
	return rep, flush()
}

// csvRow is one data row of the file.
type csvRow struct {
	line   int
	rec    []string
	reject string // a problem found while reading
}

// importer applies rows to the store.
type importer struct {
	s   *Store
	col map[string]int
	// consent is the consent each customer will have once the batch's
	// pending events are recorded.
	consent map[consentKey]bool
}

func newImporter(s *Store, header []string) (*importer, error) {
	col, err := csvColumns(header, ImportColumns, "device_id", "model")
	if err != nil {
		return nil, err
	}
	return &importer{s: s, col: col}, nil
}

// csvColumns maps the columns a CSV header names to their positions. Every
// problem is reported at once: a column outside known, a repeated one, a
// required one missing.
func csvColumns(header, known []string, required ...string) (map[string]int, error) {
	col := map[string]int{}
	var unknown, dup []string
	for i, h := range header {
		name := normColumn(h)
		if !slices.Contains(known, name) {
			unknown = append(unknown, fmt.Sprintf("%q", h))
			continue
		}
		if _, seen := col[name]; seen {
			dup = append(dup, name)
			continue
		}
		col[name] = i
	}
	var problems []string
	if len(unknown) > 0 {
		problems = append(problems, fmt.Sprintf("unknown column(s) %s (the columns are %s)",
			strings.Join(unknown, ", "), strings.Join(known, ", ")))
	}
	if len(dup) > 0 {
		problems = append(problems, "repeated column(s) "+strings.Join(dup, ", "))
	}
	for _, c := range required {
		if _, ok := col[c]; !ok {
			problems = append(problems, "missing required column "+c)
		}
	}
	if len(problems) > 0 {
		return nil, proactive.Errorf(proactive.EInvalid, "CSV header: %s", strings.Join(problems, "; "))
	}
	return col, nil
}

// normColumn is a header cell as a column name: trimmed, lower case, without
// the byte order mark spreadsheets write at the start of a file.
func normColumn(h string) string {
	return strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
}

// pendingConsent is a consent event to record once its batch is committed.
type pendingConsent struct {
	customer string
	channel  proactive.Channel
	granted  bool
}

// consentColumnsOf are the import's consent columns by channel.
var consentColumnsOf = map[proactive.Channel]string{
	proactive.ChannelSMS: "sms_consent", proactive.ChannelWhatsApp: "whatsapp_consent", proactive.ChannelEmail: "email_consent",
}

// consentKey keys the consent a batch will leave, per customer and channel.
type consentKey struct {
	customer string
	channel  proactive.Channel
}

type outcome int

const (
	created outcome = iota
	updated
	unchanged
)

// batch applies rows in one transaction, each under a savepoint so that a
// rejected row leaves no trace, then records the consent they changed.
func (im *importer) batch(ctx context.Context, rows []csvRow, rep *ImportReport) error {
	var counts [3]int
	var rejected []RowError
	var consents []pendingConsent
	im.consent = map[consentKey]bool{}
	err := im.s.WithTx(ctx, func(tx *Tx) error {
		counts, rejected, consents = [3]int{}, nil, nil
		clear(im.consent)
		for _, row := range rows {
			if err := ctx.Err(); err != nil {
				return err
			}
			id := im.get(row.rec, "device_id")
			if row.reject != "" {
				rejected = append(rejected, RowError{Line: row.line, DeviceID: id, Reason: row.reject})
				continue
			}
			if _, err := tx.tx.ExecContext(ctx, `SAVEPOINT import_row`); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			out, rowConsents, err := im.row(ctx, tx, row.rec)
			if err != nil {
				if _, rerr := tx.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT import_row`); rerr != nil {
					return fmt.Errorf("rollback to savepoint: %w", rerr)
				}
				reason, ok := rowReason(err)
				if !ok {
					return fmt.Errorf("line %d: %w", row.line, err)
				}
				rejected = append(rejected, RowError{Line: row.line, DeviceID: id, Reason: reason})
			} else {
				counts[out]++
				for _, c := range rowConsents {
					consents = append(consents, c)
					im.consent[consentKey{c.customer, c.channel}] = c.granted
				}
			}
			if _, err := tx.tx.ExecContext(ctx, `RELEASE SAVEPOINT import_row`); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import rows %d to %d: %w", rows[0].line, rows[len(rows)-1].line, err)
	}
	for _, c := range consents {
		ev := proactive.ConsentEvent{Channel: c.channel, Granted: c.granted, Method: proactive.ConsentImport, Actor: ImportActor}
		if _, err := im.s.RecordConsent(ctx, c.customer, ev); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	rep.Rows += len(rows)
	rep.Created += counts[created]
	rep.Updated += counts[updated]
	rep.Unchanged += counts[unchanged]
	rep.Rejected = append(rep.Rejected, rejected...)
	return nil
}

// rowReason turns a user-facing error into a row's reason; ok is false for
// an internal error, which ends the import.
func rowReason(err error) (string, bool) {
	var re *rowProblems
	if errors.As(err, &re) {
		return re.Error(), true
	}
	var pe *proactive.Error
	if errors.As(err, &pe) {
		return pe.Message, true
	}
	return "", false
}

// get returns the trimmed cell of column name, or "" when the file has no
// such column.
func (im *importer) get(rec []string, name string) string {
	if i, ok := im.col[name]; ok && i < len(rec) {
		return strings.TrimSpace(rec[i])
	}
	return ""
}

// rowProblems are the problems of one row, by CSV column.
type rowProblems struct{ byCol map[string]string }

func (p *rowProblems) add(col, msg string) {
	if p.byCol == nil {
		p.byCol = map[string]string{}
	}
	if _, dup := p.byCol[col]; !dup {
		p.byCol[col] = msg
	}
}

// addFields adds a validation failure, its fields renamed to columns.
func (p *rowProblems) addFields(err error, rename map[string]string) error {
	var fe *FieldErrors
	if !errors.As(err, &fe) {
		return err
	}
	for f, msg := range fe.Fields {
		if c, ok := rename[f]; ok {
			f = c
		}
		p.add(f, msg)
	}
	return nil
}

// Error lists the problems in ImportColumns order, then any others.
func (p *rowProblems) Error() string {
	var parts []string
	seen := map[string]bool{}
	for _, c := range ImportColumns {
		if msg, ok := p.byCol[c]; ok {
			parts = append(parts, c+": "+msg)
			seen[c] = true
		}
	}
	var rest []string
	for c := range p.byCol {
		if !seen[c] {
			rest = append(rest, c)
		}
	}
	sort.Strings(rest)
	for _, c := range rest {
		parts = append(parts, c+": "+p.byCol[c])
	}
	return strings.Join(parts, "; ")
}

var (
	deviceFieldColumns = map[string]string{
		"id": "device_id", "site.line1": "site_street", "site.city": "site_city",
		"site.postal_code": "site_postal_code", "site.country": "site_country", "installed": "installed_on",
		"name": "device_name",
	}
	customerFieldColumns = map[string]string{
		"id": "customer_id", "name": "customer_name", "phone": "customer_phone", "language": "customer_language",
		"email": "customer_email", "preferred_channel": "preferred_channel",
	}
)

// row upserts one row's customer and device. It returns a *rowProblems or
// *proactive.Error for a row to reject, and any other error for a failure.
func (im *importer) row(ctx context.Context, tx *Tx, rec []string) (outcome, []pendingConsent, error) {
	q := tx.tx
	now := im.s.clock()
	get := func(c string) string { return im.get(rec, c) }
	set := func(dst *string, c string) {
		if v := get(c); v != "" {
			*dst = v
		}
	}
	var p rowProblems

	id := get("device_id")
	old, err := scanDevice(q.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`, id))
	isNew := errors.Is(err, sql.ErrNoRows)
	if err != nil && !isNew {
		return 0, nil, err
	}
	dev := old
	if isNew {
		dev = proactive.Device{ID: proactive.DeviceID(id), CreatedAt: now}
	}
	dev.Model = get("model")
	set(&dev.Serial, "serial")
	set(&dev.Name, "device_name")
	set(&dev.Site.Line1, "site_street")
	set(&dev.Site.PostalCode, "site_postal_code")
	set(&dev.Site.City, "site_city")
	set(&dev.Site.Country, "site_country")
	set(&dev.TimeZone, "time_zone")
	set(&dev.Firmware, "firmware")
	if v := get("installed_on"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			p.add("installed_on", fmt.Sprintf("%q is not a date like 2024-05-31", v))
		} else {
			dev.Installed = t
		}
	}

	// The owner.
	custID, name, phone, lang := get("customer_id"), get("customer_name"), get("customer_phone"), get("customer_language")
	if phone != "" {
		// A number written as the site's country writes it (06 12 34 56 78
		// in France) is taken in E.164 form; any other is left for
		// validation to report.
		if n, ok := PhoneIn(phone, dev.Site.Country); ok {
			phone = n
		}
	}
	// The consent cells, by channel: those the row gives.
	granted := map[proactive.Channel]bool{}
	var consentText string
	for _, ch := range proactive.Channels {
		col := consentColumnsOf[ch]
		text := get(col)
		if text == "" {
			continue
		}
		consentText += text
		switch strings.ToLower(text) {
		case "true", "yes", "1":
			granted[ch] = true
		case "false", "no", "0":
			granted[ch] = false
		default:
			p.add(col, fmt.Sprintf("%q is not true or false", text))
		}
	}
	if custID == "" && phone != "" {
		if n, ok := NormalizePhone(phone); ok {
			err := q.QueryRowContext(ctx, `SELECT id FROM customers WHERE phone = $1`, n).Scan(&custID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, nil, err
			}
		}
	}
	if custID == "" && (name != "" || phone != "" || lang != "" || consentText != "" || get("customer_quiet_hours") != "" ||
		get("customer_email") != "" || get("preferred_channel") != "") {
		p.add("customer_id", "required for a new customer")
	}
	var cust, oldCust proactive.Customer
	custNew := false
	if custID != "" {
		oldCust, err = scanCustomer(q.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = $1`, custID))
		custNew = errors.Is(err, sql.ErrNoRows)
		if err != nil && !custNew {
			return 0, nil, err
		}
		cust = oldCust
		if custNew {
			cust = proactive.Customer{ID: custID}
		} else {
			qh := *oldCust.QuietHours
			cust.QuietHours = &qh
		}
		set(&cust.Name, "customer_name")
		if phone != "" {
			cust.Phone = phone
		}
		set(&cust.Language, "customer_language")
		set(&cust.Email, "customer_email")
		if v := get("preferred_channel"); v != "" {
			cust.PreferredChannel = proactive.Channel(v)
		}
		if v := get("customer_quiet_hours"); v != "" {
			if qh, err := proactive.ParseQuietHours(v); err != nil {
				p.add("customer_quiet_hours", err.Error())
			} else {
				cust.QuietHours = &qh
			}
		}
		if err := p.addFields(validateCustomer(&cust), customerFieldColumns); err != nil {
			return 0, nil, err
		}
		dev.CustomerID = custID
	}
	if err := p.addFields(validateDevice(&dev, now), deviceFieldColumns); err != nil {
		return 0, nil, err
	}
	if len(p.byCol) > 0 {
		return 0, nil, &p
	}

	changed := false
	if custID != "" {
		custChanged := custNew || cust.Name != oldCust.Name || cust.Phone != oldCust.Phone || cust.Language != oldCust.Language ||
			*cust.QuietHours != *oldCust.QuietHours || cust.Email != oldCust.Email || cust.PreferredChannel != oldCust.PreferredChannel
		if custChanged {
			if err := phoneFree(ctx, q, cust.Phone, cust.ID); err != nil {
				return 0, nil, err
			}
			if custNew {
				_, err = q.ExecContext(ctx, insertCustomer, newCustomerArgs(cust, now)...)
			} else {
				_, err = q.ExecContext(ctx, `UPDATE customers SET name = $2, phone = $3, language = $4, quiet_start = $5, quiet_end = $6,
					updated_at = $7, email = $8, preferred_channel = $9 WHERE id = $1`,
					cust.ID, cust.Name, cust.Phone, cust.Language, int(cust.QuietHours.Start), int(cust.QuietHours.End), now,
					cust.Email, string(cust.PreferredChannel))
			}
			if isUniqueViolation(err) {
				return 0, nil, proactive.Errorf(proactive.EConflict, "customer %s: id or phone %s taken meanwhile", cust.ID, cust.Phone)
			} else if err != nil {
				return 0, nil, err
			}
			changed = true
		}
	}

	devChanged := isNew || dev.Model != old.Model || dev.Serial != old.Serial || dev.CustomerID != old.CustomerID ||
		dev.Site != old.Site || dev.TimeZone != old.TimeZone || !dev.Installed.Equal(old.Installed) ||
		dev.Firmware != old.Firmware || !bytes.Equal(dev.Metadata, old.Metadata) || dev.Name != old.Name
	if devChanged {
		if err := serialFree(ctx, q, dev); err != nil {
			return 0, nil, err
		}
		args := append([]any{string(dev.ID)}, deviceArgs(dev)...)
		if isNew {
			_, err = q.ExecContext(ctx, `INSERT INTO devices (`+deviceColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`, append(args, now, now, dev.Name)...)
		} else {
			_, err = q.ExecContext(ctx, `UPDATE devices SET model = $2, serial = $3, customer_id = $4,
				site_line1 = $5, site_line2 = $6, site_city = $7, site_postal_code = $8, site_country = $9,
				time_zone = $10, installed_on = $11, firmware = $12, metadata = $13, updated_at = $14, name = $15
				WHERE id = $1`, append(args, now, dev.Name)...)
		}
		if isUniqueViolation(err) {
			return 0, nil, proactive.Errorf(proactive.EConflict, "device %s or serial %s of model %s taken meanwhile", dev.ID, dev.Serial, dev.Model)
		} else if err != nil {
			return 0, nil, err
		}
		tx.onCommit(func() { im.s.dir.put(dev.ID, dev.Model, dev.Installed) })
		changed = true
	}

	var consent []pendingConsent
	for _, ch := range proactive.Channels {
		g, given := granted[ch]
		if custID == "" || !given {
			continue
		}
		// Consents reads email's as false without an address: the flag itself
		// is what is compared.
		current := oldCust.SMSConsent
		switch ch {
		case proactive.ChannelWhatsApp:
			current = oldCust.WhatsAppConsent
		case proactive.ChannelEmail:
			current = oldCust.EmailConsent
		}
		recorded := !custNew && !oldCust.ConsentTime(ch).IsZero()
		if prev, ok := im.consent[consentKey{custID, ch}]; ok {
			current, recorded = prev, true
		}
		if !recorded || current != g {
			consent = append(consent, pendingConsent{customer: custID, channel: ch, granted: g})
			changed = true
		}
	}

	switch {
	case isNew:
		return created, consent, nil
	case changed:
		return updated, consent, nil
	}
	return unchanged, consent, nil
}

// serialFree fails with EConflict when d's model and serial are another
// device's. Unlike checkDeviceRefs's query, its query repeats the condition
// of the partial index devices_model_serial, so that both dialects use the
// index instead of scanning the table once per row. (The customer, the
// other half of checkDeviceRefs, is known to exist here.)
func serialFree(ctx context.Context, q querier, d proactive.Device) error {
	if d.Serial == "" {
		return nil
	}
	var other string
	err := q.QueryRowContext(ctx, `SELECT id FROM devices WHERE model = $1 AND serial = $2 AND serial <> '' AND id <> $3`,
		d.Model, d.Serial, string(d.ID)).Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return proactive.Errorf(proactive.EConflict, "serial %s of model %s is already device %s", d.Serial, d.Model, other)
}
