package simulator

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// RegistryColumns are the columns Registry writes: a subset of those
// `proactive devices import` reads.
var RegistryColumns = []string{
	"device_id", "model", "customer_id", "customer_name", "customer_phone",
	"customer_language", "customer_quiet_hours", "sms_consent", "time_zone", "installed_on",
}

// Registry writes the fleet as a CSV file for `proactive devices import`,
// so that the platform knows the simulated devices: one row per device,
// in fleet order, with its model and time zone and a fake customer of its
// own (customer_id cust-DEVICE, name "Test customer DEVICE", the E.164
// number +4915550NNNNNN where NNNNNN is the device's place in the fleet
// from 000001, language en, no quiet hours so that a demo texts at any
// hour, SMS consent given). installed_on is between 30
// days and 5 years before the first simulated sample (start minus
// backfill), drawn from the seed, so that device.age_days varies. start is
// the live start as for NewGenerator: zero means s.Start, or today when
// that is zero too. The same scenario, seed and start give the same file.
func (s *Scenario) Registry(w io.Writer, start time.Time) error {
	if start.IsZero() {
		start = s.Start
	}
	if start.IsZero() {
		start = time.Now()
	}
	dataStart := start.Add(-s.Backfill).UTC()
	if len(s.devices) > 999_999 {
		return fmt.Errorf("registry: %d devices, more than the 999999 test phone numbers", len(s.devices))
	}
	cw := csv.NewWriter(w)
	cw.Write(RegistryColumns)
	for i, d := range s.devices {
		r := rand.New(rand.NewPCG(s.Seed, hash(d.ID, "installed", "", 0)))
		installed := dataStart.AddDate(0, 0, -(30 + r.IntN(5*365-30)))
		cw.Write([]string{
			d.ID, d.Model, "cust-" + d.ID, "Test customer " + d.ID, fmt.Sprintf("+4915550%06d", i+1),
			"en", "none", "true", d.TimeZone, installed.Format(time.DateOnly),
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}
