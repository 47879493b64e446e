package simulator

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/proactivehq/proactive"
)

// LoadCredentials reads a credentials file (ReadCredentials).
func LoadCredentials(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	return ReadCredentials(f, file)
}

// ReadCredentials reads devices' MQTT secrets from CSV: one device_id,secret
// a line (spaces around a field are dropped), with an optional header line
// device_id,secret, and # comments. It
// returns the secret by device id, and reports every bad line (up to 20)
// with its number; a secret never appears in an error.
func ReadCredentials(r io.Reader, name string) (map[string]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	out := map[string]string{}
	var errs []error
	for first := true; len(errs) < 20; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err)) // a csv.ParseError has the line
			continue
		}
		line, _ := cr.FieldPos(0)
		id := strings.TrimSpace(rec[0])
		secret := ""
		if len(rec) > 1 {
			secret = strings.TrimSpace(rec[1])
		}
		if first && (strings.EqualFold(id, "device_id") || strings.EqualFold(id, "device")) {
			continue
		}
		switch {
		case len(rec) != 2:
			errs = append(errs, fmt.Errorf("%s:%d: %d fields, want device_id,secret", name, line, len(rec)))
		case !proactive.ValidDeviceID(id):
			errs = append(errs, fmt.Errorf("%s:%d: %q is not a device id ([A-Za-z0-9_.-]{1,64})", name, line, id))
		case secret == "":
			errs = append(errs, fmt.Errorf("%s:%d: device %s has an empty secret", name, line, id))
		case out[id] != "":
			errs = append(errs, fmt.Errorf("%s:%d: device %s is listed twice", name, line, id))
		default:
			out[id] = secret
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
