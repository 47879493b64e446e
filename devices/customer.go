package devices

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// validateCustomer checks c and normalises its phone, language and quiet
// hours.
func validateCustomer(c *proactive.Customer) error {
	v := newValidator("customer")
	v.check(ValidID(c.ID), "id", "%q must match [A-Za-z0-9_.-]{1,64}", c.ID)
	c.Name = strings.TrimSpace(c.Name)
	v.text("name", c.Name, 200, true)
	if c.Phone == "" {
		v.addf("phone", "required")
	} else if p, ok := NormalizePhone(c.Phone); ok {
		c.Phone = p
	} else {
		v.addf("phone", "%q is not in E.164 form, like +14155550123", c.Phone)
	}
	if c.Language == "" {
		c.Language = "en"
	} else if l, ok := NormalizeLanguage(c.Language); ok {
		c.Language = l
	} else {
		v.addf("language", "%q is not a language tag like en, fr or de-CH", c.Language)
	}
	c.Email = strings.TrimSpace(c.Email)
	if c.Email != "" {
		if e, ok := NormalizeEmail(c.Email); ok {
			c.Email = e
		} else {
			v.addf("email", "%q is not an email address like name@example.com", c.Email)
		}
	}
	c.PreferredChannel = proactive.Channel(strings.ToLower(strings.TrimSpace(string(c.PreferredChannel)))).OrSMS()
	if !c.PreferredChannel.Valid() {
		v.addf("preferred_channel", "%q is not one of sms, whatsapp, email", c.PreferredChannel)
	} else if c.PreferredChannel == proactive.ChannelEmail && c.Email == "" {
		v.addf("email", "required when preferred_channel is email")
	}
	if c.QuietHours == nil {
		q := proactive.DefaultQuietHours
		c.QuietHours = &q
	} else {
		v.check(c.QuietHours.Start.Valid(), "quiet_hours.start", "not a time of day")
		v.check(c.QuietHours.End.Valid(), "quiet_hours.end", "not a time of day")
	}
	return v.err()
}

// NormalizeEmail returns a bare email address (name@example.com, without a
// display name or angle brackets) with its domain in lower case, and
// whether s is one.
func NormalizeEmail(s string) (string, bool) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || len(s) > 254 {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	return s[:at] + strings.ToLower(s[at:]), true
}

const customerColumns = `id, name, phone, language, quiet_start, quiet_end, sms_consent, consent_at, created_at, updated_at,
	preferred_channel, email, whatsapp_consent, whatsapp_consent_at, email_consent, email_consent_at`

// newCustomerArgs are the values of customerColumns for a new customer c
// at now, without consent.
func newCustomerArgs(c proactive.Customer, now time.Time) []any {
	return []any{c.ID, c.Name, c.Phone, c.Language, int(c.QuietHours.Start), int(c.QuietHours.End), false, nil, now, now,
		string(c.PreferredChannel.OrSMS()), c.Email, false, nil, false, nil}
}

// insertCustomer is the INSERT of newCustomerArgs.
const insertCustomer = `INSERT INTO customers (` + customerColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

func scanCustomer(row interface{ Scan(...any) error }) (proactive.Customer, error) {
	var c proactive.Customer
	var q proactive.QuietHours
	var consentAt, waAt, emailAt sql.NullTime
	var ch string
	err := row.Scan(&c.ID, &c.Name, &c.Phone, &c.Language, &q.Start, &q.End, &c.SMSConsent, &consentAt,
		&c.CreatedAt, &c.UpdatedAt, &ch, &c.Email, &c.WhatsAppConsent, &waAt, &c.EmailConsent, &emailAt)
	c.QuietHours = &q
	c.PreferredChannel = proactive.Channel(ch)
	c.ConsentAt, c.WhatsAppConsentAt, c.EmailConsentAt = fromNull(consentAt), fromNull(waAt), fromNull(emailAt)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

// CreateCustomer adds a customer, without consent (see RecordConsent). It
// fails with EInvalid (*FieldErrors) for bad fields and EConflict when the
// id or the phone number is taken.
func (s *Store) CreateCustomer(ctx context.Context, c proactive.Customer) (proactive.Customer, error) {
	if err := validateCustomer(&c); err != nil {
		return proactive.Customer{}, err
	}
	now := s.clock()
	c.CreatedAt, c.UpdatedAt, c.SMSConsent, c.ConsentAt = now, now, false, time.Time{}
	c.WhatsAppConsent, c.WhatsAppConsentAt, c.EmailConsent, c.EmailConsentAt = false, time.Time{}, false, time.Time{}
	err := s.WithTx(ctx, func(tx *Tx) error {
		if err := phoneFree(ctx, tx.tx, c.Phone, c.ID); err != nil {
			return err
		}
		_, err := tx.tx.ExecContext(ctx, insertCustomer, newCustomerArgs(c, now)...)
		if isUniqueViolation(err) {
			return proactive.Errorf(proactive.EConflict, "customer %s already exists", c.ID)
		}
		return err
	})
	if err != nil {
		return proactive.Customer{}, wrapOp("create customer", err)
	}
	return c, nil
}

// phoneFree fails with EConflict when another customer has phone.
func phoneFree(ctx context.Context, q querier, phone, id string) error {
	var other string
	err := q.QueryRowContext(ctx, `SELECT id FROM customers WHERE phone = $1 AND id <> $2`, phone, id).Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return proactive.Errorf(proactive.EConflict, "phone %s belongs to customer %s", phone, other)
}

// UpdateCustomer replaces a customer's name, phone, language, quiet hours,
// preferred channel and email; consent and creation time are kept. ENotFound if there is no such
// customer.
func (s *Store) UpdateCustomer(ctx context.Context, c proactive.Customer) (proactive.Customer, error) {
	if err := validateCustomer(&c); err != nil {
		return proactive.Customer{}, err
	}
	var out proactive.Customer
	err := s.WithTx(ctx, func(tx *Tx) error {
		if err := phoneFree(ctx, tx.tx, c.Phone, c.ID); err != nil {
			return err
		}
		row := tx.tx.QueryRowContext(ctx, `UPDATE customers
			SET name = $2, phone = $3, language = $4, quiet_start = $5, quiet_end = $6, updated_at = $7,
			preferred_channel = $8, email = $9
			WHERE id = $1 RETURNING `+customerColumns,
			c.ID, c.Name, c.Phone, c.Language, int(c.QuietHours.Start), int(c.QuietHours.End), s.clock(),
			string(c.PreferredChannel), c.Email)
		var err error
		out, err = scanCustomer(row)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("customer", c.ID)
		}
		if isUniqueViolation(err) {
			return proactive.Errorf(proactive.EConflict, "phone %s belongs to another customer", c.Phone)
		}
		return err
	})
	if err != nil {
		return proactive.Customer{}, wrapOp("update customer", err)
	}
	return out, nil
}

// GetCustomer returns a customer; ENotFound if there is none.
func (s *Store) GetCustomer(ctx context.Context, id string) (proactive.Customer, error) {
	c, err := scanCustomer(s.read.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Customer{}, notFound("customer", id)
	}
	if err != nil {
		return proactive.Customer{}, fmt.Errorf("get customer: %w", err)
	}
	return c, nil
}

// CustomerByPhone returns the customer with this phone number (normalised
// as on write), for inbound SMS; ENotFound if there is none.
func (s *Store) CustomerByPhone(ctx context.Context, phone string) (proactive.Customer, error) {
	p, _ := NormalizePhone(phone)
	c, err := scanCustomer(s.read.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM customers WHERE phone = $1`, p))
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Customer{}, proactive.Errorf(proactive.ENotFound, "no customer has phone %s", p)
	}
	if err != nil {
		return proactive.Customer{}, fmt.Errorf("get customer by phone: %w", err)
	}
	return c, nil
}

// DeleteCustomer removes a customer and their consent trail. ENotFound if
// there is none; EConflict while devices still name them.
func (s *Store) DeleteCustomer(ctx context.Context, id string) error {
	return s.deleteUnreferenced(ctx, "customer", "customers", id, `SELECT COUNT(*) FROM devices WHERE customer_id = $1`, "customer %s still owns %d device(s): reassign or delete them first")
}

// Page is one page of a listing: Items, and the cursor of the next page,
// empty on the last.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// ListOptions pages through a listing ordered by id.
type ListOptions struct {
	// Limit is the page size: default 50, at most 500.
	Limit int
	// Cursor is the Next of the previous page; empty for the first.
	Cursor string
}

func (o ListOptions) limit() int {
	switch {
	case o.Limit <= 0:
		return 50
	case o.Limit > 500:
		return 500
	}
	return o.Limit
}

// ListCustomers returns customers in id order.
func (s *Store) ListCustomers(ctx context.Context, opt ListOptions) (Page[proactive.Customer], error) {
	limit := opt.limit()
	rows, err := s.read.QueryContext(ctx, `SELECT `+customerColumns+` FROM customers WHERE id > $1 ORDER BY id LIMIT $2`,
		opt.Cursor, limit+1)
	if err != nil {
		return Page[proactive.Customer]{}, fmt.Errorf("list customers: %w", err)
	}
	defer rows.Close()
	var page Page[proactive.Customer]
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return Page[proactive.Customer]{}, fmt.Errorf("list customers: %w", err)
		}
		page.Items = append(page.Items, c)
	}
	if err := rows.Err(); err != nil {
		return Page[proactive.Customer]{}, fmt.Errorf("list customers: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = page.Items[limit-1].ID
	}
	return page, nil
}

// RecordConsent appends ev to the customer's consent audit trail and, unless
// a later event is already recorded, sets the customer's current consent to
// ev.Granted. It returns the stored event. ENotFound if there is no such
// customer; EInvalid for a bad method, a missing actor or a time in the
// future.
func (s *Store) RecordConsent(ctx context.Context, customerID string, ev proactive.ConsentEvent) (proactive.ConsentEvent, error) {
	var out proactive.ConsentEvent
	err := s.WithTx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.RecordConsent(ctx, customerID, ev)
		return err
	})
	return out, err
}

// RecordConsent is Store.RecordConsent in this transaction.
func (tx *Tx) RecordConsent(ctx context.Context, customerID string, ev proactive.ConsentEvent) (proactive.ConsentEvent, error) {
	now := tx.s.clock()
	if ev.At.IsZero() {
		ev.At = now
	}
	ev.At = dbTime(ev.At)
	ev.CustomerID = customerID
	ev.Channel = ev.Channel.OrSMS()
	v := newValidator("consent event")
	v.check(ev.Channel.Valid(), "channel", "%q is not one of sms, whatsapp, email", ev.Channel)
	v.check(ev.Method.Valid(), "method", "%q is not one of web_form, sms, phone_call, written, import, api, whatsapp, email_link", ev.Method)
	ev.Actor = strings.TrimSpace(ev.Actor)
	v.text("actor", ev.Actor, 200, true)
	v.text("note", ev.Note, 1000, false)
	v.check(!ev.At.After(now.Add(time.Minute)), "at", "in the future")
	if err := v.err(); err != nil {
		return proactive.ConsentEvent{}, err
	}
	var optedOut bool
	err := func() error {
		// The columns of ev's channel; each channel keeps its own latest.
		consent, at := consentColumns(ev.Channel)
		// Whether this withdraws a consent in force: what customer.opted_out
		// reports, once per withdrawal and channel.
		var was bool
		if err := tx.tx.QueryRowContext(ctx, `SELECT `+consent+` FROM customers WHERE id = $1`, customerID).Scan(&was); err != nil &&
			!errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.tx.ExecContext(ctx, `UPDATE customers SET `+consent+` = $2, `+at+` = $3, updated_at = $4
			WHERE id = $1 AND (`+at+` IS NULL OR `+at+` <= $3)`, customerID, ev.Granted, ev.At, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			optedOut = was && !ev.Granted
		} else {
			// Either no such customer, or a later event already decided.
			var one int
			err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM customers WHERE id = $1`, customerID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("customer", customerID)
			} else if err != nil {
				return err
			}
		}
		if err := tx.tx.QueryRowContext(ctx, `INSERT INTO consent_events (customer_id, at, granted, method, actor, note, channel)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			customerID, ev.At, ev.Granted, string(ev.Method), ev.Actor, ev.Note, string(ev.Channel)).Scan(&ev.ID); err != nil {
			return err
		}
		if !optedOut {
			return nil
		}
		return tx.emit(ctx, proactive.EventCustomerOptedOut, customerKey(customerID),
			proactive.CustomerEvent{CustomerID: customerID, Method: ev.Method, Channel: ev.Channel, Reason: ev.Note})
	}()
	if err != nil {
		return proactive.ConsentEvent{}, wrapOp("record consent", err)
	}
	return ev, nil
}

// consentColumns names the customers columns of a channel's consent and
// its time.
func consentColumns(ch proactive.Channel) (consent, at string) {
	switch ch {
	case proactive.ChannelWhatsApp:
		return "whatsapp_consent", "whatsapp_consent_at"
	case proactive.ChannelEmail:
		return "email_consent", "email_consent_at"
	}
	return "sms_consent", "consent_at"
}

// UnsubscribeToken returns the secret of the customer's unsubscribe link,
// making it (128 random bits) the first time. ENotFound for no such
// customer.
func (s *Store) UnsubscribeToken(ctx context.Context, customerID string) (string, error) {
	var tok sql.NullString
	err := s.read.QueryRowContext(ctx, `SELECT unsubscribe_token FROM customers WHERE id = $1`, customerID).Scan(&tok)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("customer", customerID)
	} else if err != nil {
		return "", fmt.Errorf("read unsubscribe token: %w", err)
	}
	if tok.Valid {
		return tok.String, nil
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	// Another process may have made one meanwhile: the first one stays.
	if _, err := s.write.ExecContext(ctx, `UPDATE customers SET unsubscribe_token = $2 WHERE id = $1 AND unsubscribe_token IS NULL`,
		customerID, base64.RawURLEncoding.EncodeToString(b)); err != nil {
		return "", fmt.Errorf("make unsubscribe token: %w", err)
	}
	if err := s.write.QueryRowContext(ctx, `SELECT unsubscribe_token FROM customers WHERE id = $1`, customerID).Scan(&tok); err != nil {
		return "", fmt.Errorf("read unsubscribe token: %w", err)
	}
	return tok.String, nil
}

// CustomerByUnsubscribeToken returns the customer whose unsubscribe link
// carries token; ENotFound if there is none.
func (s *Store) CustomerByUnsubscribeToken(ctx context.Context, token string) (proactive.Customer, error) {
	if token == "" {
		return proactive.Customer{}, proactive.Errorf(proactive.ENotFound, "unknown unsubscribe link")
	}
	c, err := scanCustomer(s.read.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM customers WHERE unsubscribe_token = $1`, token))
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Customer{}, proactive.Errorf(proactive.ENotFound, "unknown unsubscribe link")
	}
	if err != nil {
		return proactive.Customer{}, fmt.Errorf("get customer by unsubscribe token: %w", err)
	}
	return c, nil
}

// ConsentHistory returns a customer's consent audit trail, oldest first.
// ENotFound if there is no such customer.
func (s *Store) ConsentHistory(ctx context.Context, customerID string) ([]proactive.ConsentEvent, error) {
	if _, err := s.GetCustomer(ctx, customerID); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT id, customer_id, at, granted, method, actor, note, channel
		FROM consent_events WHERE customer_id = $1 ORDER BY at, id`, customerID)
	if err != nil {
		return nil, fmt.Errorf("consent history: %w", err)
	}
	defer rows.Close()
	var out []proactive.ConsentEvent
	for rows.Next() {
		var e proactive.ConsentEvent
		if err := rows.Scan(&e.ID, &e.CustomerID, &e.At, &e.Granted, &e.Method, &e.Actor, &e.Note, &e.Channel); err != nil {
			return nil, fmt.Errorf("consent history: %w", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("consent history: %w", err)
	}
	return out, nil
}

// rowsAffected turns an UPDATE or DELETE that touched no row into ENotFound.
func rowsAffected(res sql.Result, err error, what string, id any) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound(what, id)
	}
	return nil
}

// wrapOp adds the operation to an internal error; user-facing errors
// (*proactive.Error, *FieldErrors) pass unchanged.
func wrapOp(op string, err error) error {
	var pe *proactive.Error
	if err == nil || errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// deleteUnreferenced deletes the row id of table (its kind named in messages)
// unless refs, a count of the rows that still refer to it, finds any: then
// EConflict with busy, formatted with the id and the count.
func (s *Store) deleteUnreferenced(ctx context.Context, kind, table, id, refs, busy string) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.tx.QueryRowContext(ctx, refs, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return proactive.Errorf(proactive.EConflict, busy, id, n)
		}
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = $1`, id)
		if isForeignKeyViolation(err) {
			return proactive.Errorf(proactive.EConflict, "%s %s is still referenced", kind, id)
		}
		return rowsAffected(res, err, kind, id)
	})
	return wrapOp("delete "+kind, err)
}
