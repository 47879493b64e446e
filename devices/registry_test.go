package devices_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// TestValidation checks that a bad record is refused with EInvalid naming
// every bad field, in both the message and Fields.
func TestValidation(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ctx := t.Context()
		cases := []struct {
			name   string
			do     func() error
			fields map[string]string // field → part of its message
		}{
			{"device", func() error {
				_, err := s.CreateDevice(ctx, proactive.Device{ID: "bad id!", TimeZone: "Mars/Olympus_Mons",
					Site: proactive.Address{Country: "France"}, Metadata: json.RawMessage(`[1,2]`),
					Installed: time.Now().AddDate(1, 0, 0)})
				return err
			}, map[string]string{
				"id":           `"bad id!" must match [A-Za-z0-9_.-]{1,64}`,
				"model":        "required",
				"site.country": `"FRANCE" is not an ISO 3166-1 alpha-2 code`,
				"time_zone":    `"Mars/Olympus_Mons" is not an IANA time zone`,
				"installed":    "in the future",
				"metadata":     "must be a JSON object",
			}},
			{"device without zone", func() error {
				_, err := s.CreateDevice(ctx, proactive.Device{ID: "d1", Model: "m", Metadata: json.RawMessage(`{`)})
				return err
			}, map[string]string{"time_zone": "required", "metadata": "must be a JSON object"}},
			{"customer", func() error {
				_, err := s.CreateCustomer(ctx, proactive.Customer{ID: "", Phone: "0612345678", Language: "english",
					QuietHours: &proactive.QuietHours{Start: -1, End: 2000}})
				return err
			}, map[string]string{
				"id":                `"" must match`,
				"name":              "required",
				"phone":             `"0612345678" is not in E.164 form, like +14155550123`,
				"language":          `"english" is not a language tag`,
				"quiet_hours.start": "not a time of day",
				"quiet_hours.end":   "not a time of day",
			}},
			{"technician", func() error {
				_, err := s.CreateTechnician(ctx, proactive.Technician{ID: "t1", Name: "Ann", Phone: "+1",
					Skills: []string{"compressor", "Bad Skill"}, ServiceArea: []string{"75", "7-5"},
					Hours: proactive.WeeklyHours{time.Monday: {
						{Start: proactive.MustClock("08:00"), End: proactive.MustClock("12:00")},
						{Start: proactive.MustClock("11:00"), End: proactive.MustClock("17:00")},
					}, time.Tuesday: {{Start: proactive.MustClock("17:00"), End: proactive.MustClock("08:00")}}},
					TimeOff: []proactive.TimeOff{{Start: time.Now(), End: time.Now().Add(-time.Hour)}}})
				return err
			}, map[string]string{
				"phone":           `"+1" is not in E.164 form`,
				"time_zone":       "required",
				"skills[1]":       `"Bad Skill" is not a component name`,
				"service_area[1]": `"7-5" is not a postal code prefix`,
				"hours.mon[1]":    "11:00-17:00 overlaps 08:00-12:00",
				"hours.tue[0]":    "ends at 08:00, not after it starts at 17:00",
				"time_off[0]":     "ends before it starts",
			}},
			{"alert", func() error {
				_, _, err := s.OpenTicket(ctx, proactive.Alert{Device: "", Component: "Compressor", Severity: "bad"})
				return err
			}, map[string]string{
				"device":    "must match",
				"component": `"Compressor" must match [a-z][a-z0-9_]{0,63}`,
				"rule":      "must match",
				"severity":  `"bad" is not info, warning or critical`,
			}},
			{"consent", func() error {
				mustCustomer(t, s, "c-consent", "+33600000001")
				_, err := s.RecordConsent(ctx, "c-consent", proactive.ConsentEvent{Granted: true, Method: "fax"})
				return err
			}, map[string]string{"method": `"fax" is not one of`, "actor": "required"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				err := c.do()
				wantCode(t, err, proactive.EInvalid)
				fe := fieldErrors(t, err)
				if len(fe.Fields) != len(c.fields) {
					t.Errorf("fields %v, want exactly %v", fe.Fields, c.fields)
				}
				msg := proactive.ErrorMessage(err)
				for f, want := range c.fields {
					if got := fe.Fields[f]; !strings.Contains(got, want) {
						t.Errorf("field %s: %q, want it to contain %q", f, got, want)
					}
					if !strings.Contains(msg, f+": "+fe.Fields[f]) {
						t.Errorf("message %q does not mention %s", msg, f)
					}
				}
			})
		}
	})
}

func TestDeviceCRUD(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		mustCustomer(t, s, "cust-1", "+33612345678")

		in := proactive.Device{ID: "fridge-0001", Model: "fridge-a200", Serial: "SN-1", CustomerID: "cust-1",
			Site:     proactive.Address{Line1: "12 rue Oberkampf", City: "Paris", PostalCode: " 75011 ", Country: "fr"},
			TimeZone: "Europe/Paris", Installed: time.Date(2024, 5, 17, 15, 4, 0, 0, time.FixedZone("x", 3600)),
			Firmware: "2.4.1", Metadata: json.RawMessage(`{"z": 1, "a": {"b": [1, 2.50]}, "html": "<b>"}`)}
		created, err := s.CreateDevice(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetDevice(ctx, "fridge-0001")
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.Site.PostalCode, want.Site.Country = "75011", "FR"
		want.Installed = time.Date(2024, 5, 17, 0, 0, 0, 0, time.UTC)
		want.Metadata = json.RawMessage(`{"a":{"b":[1,2.50]},"html":"<b>","z":1}`)
		want.CreatedAt, want.UpdatedAt = clk.Now(), clk.Now()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetDevice:\n got %+v\nwant %+v", got, want)
		}
		if !reflect.DeepEqual(created, want) {
			t.Errorf("CreateDevice returned\n %+v\nwant %+v", created, want)
		}

		_, err = s.CreateDevice(ctx, in)
		wantCode(t, err, proactive.EConflict)
		dup := in
		dup.ID = "fridge-0002"
		_, err = s.CreateDevice(ctx, dup)
		wantCode(t, err, proactive.EConflict)
		if !strings.Contains(proactive.ErrorMessage(err), "serial SN-1 of model fridge-a200 is already device fridge-0001") {
			t.Errorf("serial conflict: %v", err)
		}
		dup.Serial, dup.CustomerID = "SN-2", "nobody"
		_, err = s.CreateDevice(ctx, dup)
		wantCode(t, err, proactive.ENotFound)
		_, err = s.GetDevice(ctx, "fridge-9999")
		wantCode(t, err, proactive.ENotFound)

		clk.Add(time.Hour)
		upd := want
		upd.Firmware, upd.CustomerID, upd.Installed, upd.Metadata = "2.5.0", "", time.Time{}, nil
		got, err = s.UpdateDevice(ctx, upd)
		if err != nil {
			t.Fatal(err)
		}
		if got.Firmware != "2.5.0" || got.CustomerID != "" || !got.Installed.IsZero() || string(got.Metadata) != "{}" ||
			!got.UpdatedAt.Equal(clk.Now()) || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("UpdateDevice = %+v", got)
		}
		upd.ID = "fridge-9999"
		_, err = s.UpdateDevice(ctx, upd)
		wantCode(t, err, proactive.ENotFound)

		for i := 2; i <= 7; i++ {
			c := ""
			if i%2 == 0 {
				c = "cust-1"
			}
			mustDevice(t, s, "fridge-000"+string(rune('0'+i)), c)
		}
		var ids []string
		cursor := ""
		for pages := 0; ; pages++ {
			p, err := s.ListDevices(ctx, devices.DeviceFilter{ListOptions: devices.ListOptions{Limit: 3, Cursor: cursor}})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range p.Items {
				ids = append(ids, string(d.ID))
			}
			if cursor = p.Next; cursor == "" {
				if pages != 2 {
					t.Errorf("%d pages of 3 for 7 devices, want 3", pages+1)
				}
				break
			}
		}
		if want := []string{"fridge-0001", "fridge-0002", "fridge-0003", "fridge-0004", "fridge-0005", "fridge-0006", "fridge-0007"}; !reflect.DeepEqual(ids, want) {
			t.Errorf("ListDevices ids %v, want %v", ids, want)
		}
		p, err := s.ListDevices(ctx, devices.DeviceFilter{CustomerID: "cust-1"})
		if err != nil || len(p.Items) != 3 || p.Next != "" {
			t.Errorf("ListDevices(customer) = %d items, next %q, %v; want 3", len(p.Items), p.Next, err)
		}

		if err := s.DeleteDevice(ctx, "fridge-0001"); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetDevice(ctx, "fridge-0001")
		wantCode(t, err, proactive.ENotFound)
		wantCode(t, s.DeleteDevice(ctx, "fridge-0001"), proactive.ENotFound)
		mustOpenTicket(t, s, alert("fridge-0002", "compressor"))
		err = s.DeleteDevice(ctx, "fridge-0002")
		wantCode(t, err, proactive.EConflict)
	})
}

func TestCustomerCRUD(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		c, err := s.CreateCustomer(ctx, proactive.Customer{ID: "c1", Name: " Ada Lovelace ", Phone: "+44 (20) 7946-0958", Language: "de_ch"})
		if err != nil {
			t.Fatal(err)
		}
		want := proactive.Customer{ID: "c1", Name: "Ada Lovelace", Phone: "+442079460958", Language: "de-CH",
			QuietHours: &proactive.DefaultQuietHours, PreferredChannel: proactive.ChannelSMS, CreatedAt: clk.Now(), UpdatedAt: clk.Now()}
		got, err := s.GetCustomer(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(c, want) {
			t.Errorf("GetCustomer:\n got %+v %+v\nwant %+v %+v", got, *got.QuietHours, want, *want.QuietHours)
		}
		if !got.QuietHours.Contains(proactive.MustClock("23:30")) {
			t.Error("default quiet hours do not cover 23:30")
		}
		if got, err := s.CustomerByPhone(ctx, "+44 20 7946 0958"); err != nil || got.ID != "c1" {
			t.Errorf("CustomerByPhone = %v, %v", got.ID, err)
		}
		_, err = s.CustomerByPhone(ctx, "+15550000000")
		wantCode(t, err, proactive.ENotFound)

		_, err = s.CreateCustomer(ctx, proactive.Customer{ID: "c1", Name: "Other", Phone: "+33612345678"})
		wantCode(t, err, proactive.EConflict)
		_, err = s.CreateCustomer(ctx, proactive.Customer{ID: "c2", Name: "Other", Phone: "+442079460958"})
		wantCode(t, err, proactive.EConflict)
		if msg := proactive.ErrorMessage(err); !strings.Contains(msg, "phone +442079460958 belongs to customer c1") {
			t.Errorf("phone conflict message %q", msg)
		}

		mustCustomer(t, s, "c2", "+33612345678")
		none := &proactive.QuietHours{Start: proactive.MustClock("00:00"), End: proactive.MustClock("00:00")}
		upd, err := s.UpdateCustomer(ctx, proactive.Customer{ID: "c2", Name: "Bob", Phone: "+33612345679", Language: "FR", QuietHours: none})
		if err != nil {
			t.Fatal(err)
		}
		if upd.Name != "Bob" || upd.Language != "fr" || *upd.QuietHours != *none || upd.QuietHours.Contains(proactive.MustClock("03:00")) {
			t.Errorf("UpdateCustomer = %+v", upd)
		}
		_, err = s.UpdateCustomer(ctx, proactive.Customer{ID: "c2", Name: "Bob", Phone: "+442079460958"})
		wantCode(t, err, proactive.EConflict)
		_, err = s.UpdateCustomer(ctx, proactive.Customer{ID: "c3", Name: "Nobody", Phone: "+15550000000"})
		wantCode(t, err, proactive.ENotFound)

		for _, id := range []string{"c3", "c4", "c5"} {
			mustCustomer(t, s, id, "+1555000000"+id[1:])
		}
		p1, err := s.ListCustomers(ctx, devices.ListOptions{Limit: 4})
		if err != nil || len(p1.Items) != 4 || p1.Next != "c4" {
			t.Fatalf("ListCustomers page 1: %d items, next %q, %v", len(p1.Items), p1.Next, err)
		}
		p2, err := s.ListCustomers(ctx, devices.ListOptions{Limit: 4, Cursor: p1.Next})
		if err != nil || len(p2.Items) != 1 || p2.Items[0].ID != "c5" || p2.Next != "" {
			t.Fatalf("ListCustomers page 2: %+v, %v", p2, err)
		}

		mustDevice(t, s, "d1", "c1")
		err = s.DeleteCustomer(ctx, "c1")
		wantCode(t, err, proactive.EConflict)
		if err := s.DeleteCustomer(ctx, "c2"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteCustomer(ctx, "c2"), proactive.ENotFound)
	})
}

// TestConsent checks the consent audit trail: who, when and how, and that
// the latest event decides.
func TestConsent(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		mustCustomer(t, s, "c1", "+33612345678")

		granted, err := s.RecordConsent(ctx, "c1", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWebForm,
			Actor: "signup-form", Note: "ticked the SMS box"})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := s.GetCustomer(ctx, "c1")
		if !c.SMSConsent || !c.ConsentAt.Equal(clk.Now()) {
			t.Errorf("after grant: consent %v at %v", c.SMSConsent, c.ConsentAt)
		}
		clk.Add(24 * time.Hour)
		stop, err := s.RecordConsent(ctx, "c1", proactive.ConsentEvent{Granted: false, Method: proactive.ConsentSMS, Actor: "customer", Note: "STOP"})
		if err != nil {
			t.Fatal(err)
		}
		// A late import of an older paper consent goes on the trail but does
		// not override the STOP.
		old, err := s.RecordConsent(ctx, "c1", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWritten,
			Actor: "import:contracts.csv", At: clk.Now().Add(-48 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		c, _ = s.GetCustomer(ctx, "c1")
		if c.SMSConsent || !c.ConsentAt.Equal(clk.Now()) {
			t.Errorf("after STOP and an older grant: consent %v at %v, want false at %v", c.SMSConsent, c.ConsentAt, clk.Now())
		}
		hist, err := s.ConsentHistory(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		want := []proactive.ConsentEvent{old, granted, stop}
		if !reflect.DeepEqual(hist, want) {
			t.Errorf("history:\n got %+v\nwant %+v", hist, want)
		}
		_, err = s.RecordConsent(ctx, "nobody", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentAPI, Actor: "admin"})
		wantCode(t, err, proactive.ENotFound)
		_, err = s.ConsentHistory(ctx, "nobody")
		wantCode(t, err, proactive.ENotFound)
		_, err = s.RecordConsent(ctx, "c1", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentAPI, Actor: "admin",
			At: clk.Now().Add(time.Hour)})
		wantCode(t, err, proactive.EInvalid)
	})
}

func TestTechnicianCRUD(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		mon := []proactive.Shift{{Start: proactive.MustClock("13:00"), End: proactive.MustClock("17:30")},
			{Start: proactive.MustClock("08:00"), End: proactive.MustClock("12:00")}}
		off := []proactive.TimeOff{
			{Start: time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 8, 15, 0, 0, 0, 0, time.UTC), Reason: "holiday"},
			{Start: time.Date(2026, 4, 2, 8, 0, 0, 0, time.UTC), End: time.Date(2026, 4, 2, 12, 0, 0, 0, time.UTC)},
		}
		in := proactive.Technician{ID: "tech-1", Name: "Camille", Phone: "+33 6 12 34 56 78", TimeZone: "Europe/Paris",
			Skills: []string{"compressor", "fan", "compressor"}, ServiceArea: []string{"75", "92 1", "sw1"},
			Hours: proactive.WeeklyHours{time.Monday: mon, time.Friday: mon[1:]}, TimeOff: off}
		got, err := s.CreateTechnician(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		want := proactive.Technician{ID: "tech-1", Name: "Camille", Phone: "+33612345678", TimeZone: "Europe/Paris",
			Skills: []string{"compressor", "fan"}, ServiceArea: []string{"75", "921", "SW1"},
			Hours:     proactive.WeeklyHours{time.Monday: {mon[1], mon[0]}, time.Friday: mon[1:]},
			TimeOff:   []proactive.TimeOff{off[1], off[0]},
			CreatedAt: clk.Now(), UpdatedAt: clk.Now()}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("CreateTechnician:\n got %+v\nwant %+v", got, want)
		}
		for pc, serves := range map[string]bool{"75011": true, "92100": true, "sw1a 1aa": true, "93000": false, "": false} {
			if got.Serves(pc) != serves {
				t.Errorf("Serves(%q) = %v", pc, !serves)
			}
		}
		if !got.Hours.Works(time.Monday, proactive.MustClock("08:00")) || got.Hours.Works(time.Monday, proactive.MustClock("12:30")) {
			t.Error("Works: wrong on Monday")
		}
		if !got.Away(time.Date(2026, 8, 3, 10, 0, 0, 0, time.UTC)) || got.Away(time.Date(2026, 8, 15, 0, 0, 0, 0, time.UTC)) {
			t.Error("Away: wrong in August")
		}
		b, _ := json.Marshal(got.Hours)
		if string(b) != `{"fri":[{"start":"08:00","end":"12:00"}],"mon":[{"start":"08:00","end":"12:00"},{"start":"13:00","end":"17:30"}]}` {
			t.Errorf("hours JSON %s", b)
		}
		var back proactive.WeeklyHours
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, got.Hours) {
			t.Errorf("hours JSON round trip: %v, %v", back, err)
		}

		_, err = s.CreateTechnician(ctx, in)
		wantCode(t, err, proactive.EConflict)

		clk.Add(time.Minute)
		in.Skills, in.ServiceArea, in.Hours, in.TimeOff = []string{"door_seal"}, []string{"*"}, proactive.WeeklyHours{}, nil
		got, err = s.UpdateTechnician(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Skills, []string{"door_seal"}) || !got.Serves("10115") || got.TimeOff != nil ||
			!reflect.DeepEqual(got.Hours, proactive.WeeklyHours{}) || !got.UpdatedAt.Equal(clk.Now()) {
			t.Errorf("UpdateTechnician = %+v", got)
		}
		in.ID = "tech-9"
		_, err = s.UpdateTechnician(ctx, in)
		wantCode(t, err, proactive.ENotFound)
		_, err = s.GetTechnician(ctx, "tech-9")
		wantCode(t, err, proactive.ENotFound)

		mustTechnician(t, s, "tech-2") // compressor, 75
		if _, err := s.CreateTechnician(ctx, proactive.Technician{ID: "tech-3", Name: "Dee", Phone: "+33612345670",
			TimeZone: "Europe/Paris", Skills: []string{"compressor"}, ServiceArea: []string{"69"}}); err != nil {
			t.Fatal(err)
		}
		list := func(f devices.TechnicianFilter) []string {
			t.Helper()
			p, err := s.ListTechnicians(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, x := range p.Items {
				ids = append(ids, x.ID)
			}
			return ids
		}
		if got := list(devices.TechnicianFilter{Skill: "compressor"}); !reflect.DeepEqual(got, []string{"tech-2", "tech-3"}) {
			t.Errorf("skill compressor: %v", got)
		}
		if got := list(devices.TechnicianFilter{PostalCode: "75 011"}); !reflect.DeepEqual(got, []string{"tech-1", "tech-2"}) {
			t.Errorf("postal 75011: %v", got)
		}
		if got := list(devices.TechnicianFilter{Skill: "compressor", PostalCode: "69003"}); !reflect.DeepEqual(got, []string{"tech-3"}) {
			t.Errorf("compressor in 69003: %v", got)
		}
		if got := list(devices.TechnicianFilter{ListOptions: devices.ListOptions{Limit: 2, Cursor: "tech-1"}}); !reflect.DeepEqual(got, []string{"tech-2", "tech-3"}) {
			t.Errorf("after tech-1: %v", got)
		}

		mustDevice(t, s, "d1", "")
		tk := mustOpenTicket(t, s, alert("d1", "compressor"))
		if _, err := s.Assign(ctx, tk.ID, "tech-2", "dispatcher"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteTechnician(ctx, "tech-2"), proactive.EConflict)
		if err := s.DeleteTechnician(ctx, "tech-3"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteTechnician(ctx, "tech-3"), proactive.ENotFound)
	})
}

// TestDeviceInfo checks the rule engine's lookup: writes through the store
// are in its directory as soon as they commit.
func TestDeviceInfo(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		// A refresh of an hour: what is seen here is the commits' doing.
		s := mustOpen(t, dsn, withClock(clk), func(o *devices.Options) { o.DirectoryRefresh = time.Hour })
		ctx := t.Context()

		if m, age, ok := s.DeviceInfo("d1"); ok || m != "" || !math.IsNaN(age) {
			t.Errorf("unknown device: %q %v %v", m, age, ok)
		}
		d := mustDevice(t, s, "d1", "")
		if m, age, ok := s.DeviceInfo("d1"); !ok || m != "fridge-a200" || !math.IsNaN(age) {
			t.Errorf("no install date: %q %v %v, want fridge-a200 NaN true", m, age, ok)
		}
		d.Installed = clk.Now().AddDate(0, 0, -10)
		d.Model = "fridge-b300"
		if _, err := s.UpdateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		clk.Add(12 * time.Hour)
		// Installed midnight 10 days before 09:30, and 12 h on: 10 days 21.5 h.
		if m, age, ok := s.DeviceInfo("d1"); !ok || m != "fridge-b300" || math.Abs(age-(10+21.5/24)) > 1e-9 {
			t.Errorf("%q age %v %v, want fridge-b300 %v", m, age, ok, 10+21.5/24)
		}
		if _, err := devices.Import(ctx, s, strings.NewReader("device_id,model,time_zone,installed_on\nd2,oven-c1,Europe/Paris,2026-03-01\n"), nil); err != nil {
			t.Fatal(err)
		}
		if m, age, ok := s.DeviceInfo("d2"); !ok || m != "oven-c1" || math.Abs(age-(9+21.5/24)) > 1e-9 {
			t.Errorf("imported: %q %v %v, want oven-c1 %v", m, age, ok, 9+21.5/24)
		}
		if err := s.DeleteDevice(ctx, "d1"); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := s.DeviceInfo("d1"); ok {
			t.Error("deleted device still known")
		}
	})
}

// TestCredentials checks device secrets: shown once, stored hashed, checked
// in constant time, and cached only until rotated.
func TestCredentials(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ctx := t.Context()
		mustDevice(t, s, "d1", "")
		mustDevice(t, s, "d2", "")

		secret, err := s.SetDeviceSecret(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		if len(secret) != 43 {
			t.Errorf("secret %q: %d characters, want 43", secret, len(secret))
		}
		check := func(id proactive.DeviceID, secret string, want bool) {
			t.Helper()
			ok, err := s.CheckDeviceSecret(ctx, id, secret)
			if err != nil || ok != want {
				t.Errorf("CheckDeviceSecret(%s, %.8s…) = %v, %v; want %v", id, secret, ok, err, want)
			}
		}
		check("d1", secret, true)
		check("d1", secret, true) // from the cache
		check("d1", secret+"x", false)
		check("d1", "", false)
		check("d2", secret, false) // no secret
		check("nobody", secret, false)

		var hash string
		err = s.WithTx(ctx, func(tx *devices.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT secret_hash FROM device_credentials WHERE device_id = $1`, "d1").Scan(&hash)
		})
		if err != nil || !strings.HasPrefix(hash, "$2a$") || strings.Contains(hash, secret) {
			t.Errorf("stored %q, %v: want a bcrypt hash", hash, err)
		}

		rotated, err := s.SetDeviceSecret(ctx, "d1")
		if err != nil || rotated == secret {
			t.Fatalf("rotate: %q, %v", rotated, err)
		}
		check("d1", secret, false) // the cached old secret is forgotten
		check("d1", rotated, true)
		if err := s.DeleteDeviceSecret(ctx, "d1"); err != nil {
			t.Fatal(err)
		}
		check("d1", rotated, false)
		wantCode(t, s.DeleteDeviceSecret(ctx, "d1"), proactive.ENotFound)
		_, err = s.SetDeviceSecret(ctx, "nobody")
		wantCode(t, err, proactive.ENotFound)

		// Deleting the device deletes its secret.
		s2, _ := s.SetDeviceSecret(ctx, "d2")
		check("d2", s2, true)
		if err := s.DeleteDevice(ctx, "d2"); err != nil {
			t.Fatal(err)
		}
		check("d2", s2, false)
	})
}
