package devices_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

const importFile = `device_id,model,customer_id,customer_name,customer_phone,sms_consent,time_zone,installed_on,site_postal_code,site_country,serial
fr-001,fridge-a200,c1,Ann Martin,+33 6 12 34 56 78,true,Europe/Paris,2024-05-31,75011,fr,S1
fr-002,fridge-a200,c1,,,,Europe/Paris,,,,S2
bad id!,fridge-a200,,,,,Europe/Paris,,,,
fr-003,,c2,Bob,0612,maybe,Mars/Base,2024-13-01,,France,
fr-004,fridge-a200,,,,,Europe/Paris,,,,S1
fr-005,fridge-a200,c3,Cy,+33612345678,,Europe/Paris,,,,
fr-006,fridge-a200
`

// TestImport imports good rows, reports each bad one with its line and
// every reason, and changes nothing when the same file comes again.
func TestImport(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ctx := t.Context()
		var progress []int
		rep, err := devices.Import(ctx, s, strings.NewReader(importFile), func(n int) { progress = append(progress, n) })
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rows != 7 || rep.Created != 2 || rep.Updated != 0 || rep.Unchanged != 0 || len(rep.Rejected) != 5 {
			t.Fatalf("report %+v", rep)
		}
		if len(progress) != 1 || progress[0] != 7 {
			t.Errorf("progress %v, want [7]", progress)
		}
		want := []struct {
			line    int
			device  string
			reasons []string
		}{
			{4, "bad id!", []string{`device_id: "bad id!" must match`}},
			{5, "fr-003", []string{"model: required", `customer_phone: "0612" is not in E.164 form`,
				`sms_consent: "maybe" is not true or false`, `site_country: "FRANCE" is not an ISO 3166-1`,
				`time_zone: "Mars/Base" is not an IANA time zone`, `installed_on: "2024-13-01" is not a date`}},
			{6, "fr-004", []string{"serial S1 of model fridge-a200 is already device fr-001"}},
			{7, "fr-005", []string{"phone +33612345678 belongs to customer c1"}},
			{8, "fr-006", []string{"has 2 fields, the header 11"}},
		}
		for i, w := range want {
			got := rep.Rejected[i]
			if got.Line != w.line || got.DeviceID != w.device {
				t.Errorf("rejected[%d] = %v, want line %d device %s", i, got, w.line, w.device)
			}
			for _, r := range w.reasons {
				if !strings.Contains(got.Reason, r) {
					t.Errorf("line %d: reason %q lacks %q", w.line, got.Reason, r)
				}
			}
		}

		d, err := s.GetDevice(ctx, "fr-001")
		if err != nil {
			t.Fatal(err)
		}
		if d.CustomerID != "c1" || d.TimeZone != "Europe/Paris" || d.Serial != "S1" || d.Site.Country != "FR" ||
			d.Site.PostalCode != "75011" || !d.Installed.Equal(time.Date(2024, 5, 31, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("fr-001 = %+v", d)
		}
		if d2, err := s.GetDevice(ctx, "fr-002"); err != nil || d2.CustomerID != "c1" {
			t.Errorf("fr-002 = %+v, %v", d2, err)
		}
		c, err := s.CustomerByPhone(ctx, "+33612345678")
		if err != nil || c.ID != "c1" || c.Name != "Ann Martin" || !c.SMSConsent {
			t.Fatalf("customer = %+v, %v", c, err)
		}
		for _, id := range []string{"c2", "c3"} {
			if _, err := s.GetCustomer(ctx, id); proactive.ErrorCode(err) != proactive.ENotFound {
				t.Errorf("customer %s of a rejected row: %v, want not found", id, err)
			}
		}
		checkConsent := func() {
			t.Helper()
			h, err := s.ConsentHistory(ctx, "c1")
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != 1 || !h[0].Granted || h[0].Method != proactive.ConsentImport || h[0].Actor != devices.ImportActor {
				t.Errorf("consent history %+v, want one import grant", h)
			}
		}
		checkConsent()

		// The same file again changes nothing.
		rep, err = devices.Import(ctx, s, strings.NewReader(importFile), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rows != 7 || rep.Created != 0 || rep.Updated != 0 || rep.Unchanged != 2 || len(rep.Rejected) != 5 {
			t.Errorf("second import: %+v", rep)
		}
		checkConsent()
		if d2, _ := s.GetDevice(ctx, "fr-001"); !d2.UpdatedAt.Equal(d.UpdatedAt) {
			t.Errorf("unchanged device rewritten: updated_at %v, was %v", d2.UpdatedAt, d.UpdatedAt)
		}

		// Only the columns given change; a consent withdrawal is recorded.
		rep, err = devices.Import(ctx, s, strings.NewReader("model,device_id,firmware,customer_id,sms_consent\n"+
			"fridge-a200,fr-001,1.2.3,,\nfridge-a200,fr-002,,c1,false\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Updated != 2 || rep.Unchanged != 0 || len(rep.Rejected) != 0 {
			t.Errorf("partial import: %+v", rep)
		}
		d, _ = s.GetDevice(ctx, "fr-001")
		if d.Firmware != "1.2.3" || d.CustomerID != "c1" || d.Serial != "S1" {
			t.Errorf("after partial import fr-001 = %+v", d)
		}
		if c, _ := s.GetCustomer(ctx, "c1"); c.SMSConsent {
			t.Errorf("consent not withdrawn: %+v", c)
		}
	})
}

// TestImportHeader refuses a file whose header is wrong, naming the
// columns, and imports nothing.
func TestImportHeader(t *testing.T) {
	s := mustOpen(t, sqliteDSN(t))
	for _, tc := range []struct{ name, file, want string }{
		{"unknown", "device_id,model,colour,Size\nd1,m,red,XL\n", `unknown column(s) "colour", "Size"`},
		{"missing", "device_id,time_zone\nd1,UTC\n", "missing required column model"},
		{"repeated", "device_id,model,model\nd1,m,m\n", "repeated column(s) model"},
		{"empty", "", "empty file"},
		{"malformed", "device_id,model\n\"d1,m\n", "read CSV"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := devices.Import(t.Context(), s, strings.NewReader(tc.file), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			wantCode(t, err, proactive.EInvalid)
			if p, _ := s.ListDevices(t.Context(), devices.DeviceFilter{}); len(p.Items) != 0 {
				t.Errorf("devices imported: %v", p.Items)
			}
		})
	}
	// A byte order mark and odd case in the header are fine.
	rep, err := devices.Import(t.Context(), s, strings.NewReader("\ufeffDevice_ID, Model ,time_zone\nd1,m,UTC\n"), nil)
	if err != nil || rep.Created != 1 {
		t.Fatalf("import with BOM: %+v, %v", rep, err)
	}
}

// TestImport10k imports 10,000 devices, each with its own
// customer and consent, and runs it again idempotently; the time is logged,
// not asserted (a loaded CI machine took two minutes on PostgreSQL).
func TestImport10k(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 rows")
	}
	const n = 10_000
	var b strings.Builder
	b.WriteString("device_id,model,serial,customer_id,customer_name,customer_phone,customer_language,sms_consent,site_street,site_postal_code,site_city,site_country,time_zone,installed_on,firmware\n")
	for i := range n {
		fmt.Fprintf(&b, "dev-%05d,fridge-a200,SN%05d,cust-%05d,Customer %d,+4915550%06d,de,true,Hauptstr. %d,10115,Berlin,DE,Europe/Berlin,2023-01-%02d,1.0.%d\n",
			i, i, i, i, i+1, i%100+1, i%28+1, i%7)
	}
	file := b.String()
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		var calls int
		start := time.Now()
		rep, err := devices.Import(t.Context(), s, strings.NewReader(file), func(int) { calls++ })
		first := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rows != n || rep.Created != n || len(rep.Rejected) != 0 {
			t.Fatalf("report: rows %d created %d rejected %v", rep.Rows, rep.Created, rep.Rejected[:min(3, len(rep.Rejected))])
		}
		start = time.Now()
		rep, err = devices.Import(t.Context(), s, strings.NewReader(file), nil)
		second := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Unchanged != n {
			t.Fatalf("second import: %+v", rep)
		}
		t.Logf("%d rows: first import %v (%.0f rows/s, %d progress calls), unchanged re-import %v (%.0f rows/s)",
			n, first.Round(time.Millisecond), n/first.Seconds(), calls, second.Round(time.Millisecond), n/second.Seconds())
	})
}

// TestImportQuietHours checks the customer_quiet_hours column sets, changes
// and rejects quiet hours.
func TestImportQuietHours(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		file := "device_id,model,time_zone,customer_id,customer_name,customer_phone,customer_quiet_hours\n" +
			"d1,m,UTC,c1,Ann,+4915550000001,none\n" +
			"d2,m,UTC,c2,Bob,+4915550000002,22:00-07:30\n" +
			"d3,m,UTC,c3,Cy,+4915550000003,late\n"
		rep, err := devices.Import(t.Context(), s, strings.NewReader(file), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Created != 2 || len(rep.Rejected) != 1 || !strings.Contains(rep.Rejected[0].Reason, "customer_quiet_hours") {
			t.Fatalf("report %+v", rep)
		}
		c1, _ := s.GetCustomer(t.Context(), "c1")
		c2, _ := s.GetCustomer(t.Context(), "c2")
		if *c1.QuietHours != (proactive.QuietHours{}) || *c2.QuietHours != (proactive.QuietHours{Start: 22 * 60, End: 7*60 + 30}) {
			t.Errorf("quiet hours c1 %+v, c2 %+v", *c1.QuietHours, *c2.QuietHours)
		}
		rep, err = devices.Import(t.Context(), s, strings.NewReader(strings.Replace(file, "none", "21:00-08:00", 1)), nil)
		if err != nil || rep.Updated != 1 || rep.Unchanged != 1 {
			t.Fatalf("second import %+v, %v: want 1 updated, 1 unchanged", rep, err)
		}
		if c1, _ = s.GetCustomer(t.Context(), "c1"); *c1.QuietHours != proactive.DefaultQuietHours {
			t.Errorf("c1 quiet hours after update %+v", *c1.QuietHours)
		}
	})
}

// TestImportNameAndLocalPhones: device_name names the device; a phone
// number written as the site's country writes it is stored in E.164, and
// one that is no number there is rejected.
func TestImportNameAndLocalPhones(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		file := "device_id,model,device_name,site_country,time_zone,customer_id,customer_name,customer_phone\n" +
			"d1,fridge-a200,Kitchen fridge,FR,Europe/Paris,c1,Ann,06 12 34 56 78\n" +
			"d2,fridge-a200,,GB,Europe/London,c2,Bob,07911 123456\n" +
			"d3,fridge-a200,,FR,Europe/Paris,c3,Cy,+44 7700 900124\n" +
			"d4,fridge-a200,,FR,Europe/Paris,c4,Di,12 34\n"
		rep, err := devices.Import(t.Context(), s, strings.NewReader(file), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Created != 3 || len(rep.Rejected) != 1 || !strings.Contains(rep.Rejected[0].Reason, "customer_phone") {
			t.Fatalf("report %+v", rep)
		}
		for id, want := range map[string]string{"c1": "+33612345678", "c2": "+447911123456", "c3": "+447700900124"} {
			if c, err := s.GetCustomer(t.Context(), id); err != nil || c.Phone != want {
				t.Errorf("customer %s phone %q (%v), want %s", id, c.Phone, err, want)
			}
		}
		if d, _ := s.GetDevice(t.Context(), "d1"); d.Name != "Kitchen fridge" {
			t.Errorf("d1 name %q", d.Name)
		}
		if d, _ := s.GetDevice(t.Context(), "d2"); d.Name != "" {
			t.Errorf("d2 name %q, want none", d.Name)
		}
		// The same file again changes nothing.
		rep, err = devices.Import(t.Context(), s, strings.NewReader(file), nil)
		if err != nil || rep.Unchanged != 3 {
			t.Errorf("second import %+v, %v: want 3 unchanged", rep, err)
		}
	})
}

func TestPhoneIn(t *testing.T) {
	for _, c := range []struct {
		in, country, want string
		ok                bool
	}{
		{"+33 6 12 34 56 78", "", "+33612345678", true},
		{"06 12 34 56 78", "FR", "+33612345678", true},
		{"06.12.34.56.78", "fr", "+33612345678", true},
		{"(415) 555-2671", "US", "+14155552671", true},
		{"06 12 34 56 78", "", "06 12 34 56 78", false},
		{"12", "FR", "12", false},
		{"not a number", "DE", "not a number", false},
	} {
		if got, ok := devices.PhoneIn(c.in, c.country); got != c.want || ok != c.ok {
			t.Errorf("PhoneIn(%q, %q) = %q, %v; want %q, %v", c.in, c.country, got, ok, c.want, c.ok)
		}
	}
}

// FuzzPhoneIn: any cell and country either gives an E.164 number or is
// refused, and never panics.
func FuzzPhoneIn(f *testing.F) {
	f.Add("06 12 34 56 78", "FR")
	f.Add("+1 (415) 555-2671", "")
	f.Add("\x00+", "ZZ")
	f.Fuzz(func(t *testing.T, s, country string) {
		if n, ok := devices.PhoneIn(s, country); ok {
			if n2, ok2 := devices.NormalizePhone(n); !ok2 || n2 != n {
				t.Fatalf("PhoneIn(%q, %q) = %q, not E.164", s, country, n)
			}
		}
	})
}
