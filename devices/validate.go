package devices

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/proactivehq/proactive"
)

// FieldErrors is a validation failure that names every invalid field. It
// wraps a *proactive.Error with code EInvalid whose message lists them all,
// so proactive.ErrorCode and errors.As(err, **proactive.Error) see it as any
// other user-facing error; an API can add Fields to its JSON answer.
type FieldErrors struct {
	// Err has Code proactive.EInvalid and a message such as
	// `invalid customer: phone: "0612" is not in E.164 form, like +14155550123; language: ...`.
	Err *proactive.Error
	// Fields maps each invalid field, by its JSON name (nested ones dotted,
	// like site.country or hours.mon[0]), to what is wrong with it.
	Fields map[string]string
}

// Error implements the error interface.
func (e *FieldErrors) Error() string { return e.Err.Error() }

// Unwrap returns the *proactive.Error.
func (e *FieldErrors) Unwrap() error { return e.Err }

// validator collects the problems of one value, in the order found.
type validator struct {
	what   string
	order  []string
	fields map[string]string
}

func newValidator(what string) *validator {
	return &validator{what: what, fields: map[string]string{}}
}

// addf records a problem with field; the first one per field counts.
func (v *validator) addf(field, format string, args ...any) {
	if _, dup := v.fields[field]; dup {
		return
	}
	v.order = append(v.order, field)
	v.fields[field] = fmt.Sprintf(format, args...)
}

// check records the problem when ok is false.
func (v *validator) check(ok bool, field, format string, args ...any) {
	if !ok {
		v.addf(field, format, args...)
	}
}

// text checks a free-text field: valid UTF-8, no control characters, at most
// max characters, and present when required.
func (v *validator) text(field, s string, max int, required bool) {
	switch {
	case s == "" && required:
		v.addf(field, "required")
	case !utf8.ValidString(s):
		v.addf(field, "not valid UTF-8")
	case utf8.RuneCountInString(s) > max:
		v.addf(field, "longer than %d characters", max)
	case strings.ContainsFunc(s, unicode.IsControl):
		v.addf(field, "contains control characters")
	}
}

// err returns the collected problems as *FieldErrors, or nil.
func (v *validator) err() error {
	if len(v.order) == 0 {
		return nil
	}
	parts := make([]string, len(v.order))
	for i, f := range v.order {
		parts[i] = f + ": " + v.fields[f]
	}
	return &FieldErrors{
		Err:    proactive.Errorf(proactive.EInvalid, "invalid %s: %s", v.what, strings.Join(parts, "; ")),
		Fields: v.fields,
	}
}

// ValidID reports whether s may identify a customer or a technician: the
// same pattern as device ids, [A-Za-z0-9_.-]{1,64}.
func ValidID(s string) bool { return proactive.ValidDeviceID(s) }

// NormalizePhone removes the spaces, dots, dashes and parentheses people
// write in phone numbers and reports whether the rest is in E.164 form
// (^\+[1-9]\d{6,14}$), like +14155550123.
func NormalizePhone(s string) (string, bool) {
	n := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '.', '-', '(', ')', '\u00a0':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	return n, proactive.ValidE164(n)
}

// PhoneIn returns phone number s in E.164 form, read as numbers are written
// in country (ISO 3166-1 alpha-2, such as FR) when it is not in
// international form already, and reports whether it is a valid number
// (libphonenumber's metadata, through github.com/nyaruka/phonenumbers).
func PhoneIn(s, country string) (string, bool) {
	if n, ok := NormalizePhone(s); ok {
		return n, true
	}
	if country == "" {
		return s, false
	}
	num, err := phonenumbers.Parse(s, strings.ToUpper(strings.TrimSpace(country)))
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return s, false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}

// NormalizeLanguage returns a language tag in canonical case and reports
// whether it has the shape this platform supports: a 2–3 letter language,
// optionally a 4-letter script and a 2-letter or 3-digit region, as in en,
// fr, de-CH, sr-Latn-RS or es-419 (BCP 47 without variants or extensions).
// An underscore is taken for a hyphen.
func NormalizeLanguage(s string) (string, bool) {
	parts := strings.Split(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"), "-")
	if len(parts) > 3 || !isAlpha(parts[0]) || len(parts[0]) < 2 || len(parts[0]) > 3 {
		return s, false
	}
	out := []string{strings.ToLower(parts[0])}
	rest := parts[1:]
	if len(rest) > 0 && len(rest[0]) == 4 && isAlpha(rest[0]) {
		out = append(out, strings.ToUpper(rest[0][:1])+strings.ToLower(rest[0][1:]))
		rest = rest[1:]
	}
	if len(rest) > 0 {
		r := rest[0]
		switch {
		case len(r) == 2 && isAlpha(r):
			out = append(out, strings.ToUpper(r))
		case len(r) == 3 && isDigits(r):
			out = append(out, r)
		default:
			return s, false
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return s, false
	}
	return strings.Join(out, "-"), true
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validZone reports whether name is an IANA time zone time.LoadLocation
// knows. "Local" is refused: it means different things on different hosts.
func validZone(name string) (string, bool) {
	if name == "" || name == "Local" {
		return "", false
	}
	if _, err := time.LoadLocation(name); err != nil {
		return "", false
	}
	return name, true
}

// maxMetadata bounds a device's metadata document.
const maxMetadata = 16 << 10

// object validates an optional JSON object field and returns it in
// canonical form ({} when empty).
func (v *validator) object(field string, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(`{}`)
	}
	if len(raw) > maxMetadata {
		v.addf(field, "larger than %d bytes", maxMetadata)
		return nil
	}
	c, err := canonicalJSON(raw)
	if err != nil || c[0] != '{' {
		v.addf(field, "must be a JSON object")
		return nil
	}
	return c
}
