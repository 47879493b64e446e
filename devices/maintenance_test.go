package devices_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The rules' poller reads new records through exactly this method.
var _ interface {
	MaintenanceAfter(ctx context.Context, afterID int64, limit int) ([]proactive.Maintenance, error)
} = (*devices.Store)(nil)

func maint(dev, component string, kind proactive.MaintenanceKind, at time.Time) proactive.Maintenance {
	return proactive.Maintenance{Device: proactive.DeviceID(dev), Time: at, Component: component, Kind: kind}
}

// A database at the schema before maintenance, with a device, comes up
// with the maintenance table, and the device's history starts empty.
func TestMaintenanceMigration(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		names, err := devices.MigrationNames(devices.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		v := slices.Index(names, "0006_maintenance") + 1
		if v == 0 {
			t.Fatalf("no 0006_maintenance migration in %v", names)
		}
		if err := devices.MigrateTo(ctx, dsn, v-1); err != nil {
			t.Fatal(err)
		}
		raw, err := devices.RawDB(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.ExecContext(ctx, `INSERT INTO devices (id, model, time_zone, created_at, updated_at)
			VALUES ('old-1', 'fridge-a200', 'Europe/Paris', $1, $1)`, newClock().Now()); err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, dsn)
		if got, err := s.DeviceMaintenance(ctx, "old-1"); err != nil || len(got) != 0 {
			t.Fatalf("history of a migrated device: %v, %v", got, err)
		}
		at := newClock().Now()
		ids, err := s.AddMaintenance(ctx, []proactive.Maintenance{maint("old-1", "compressor", proactive.MaintenanceRepaired, at)})
		if err != nil || len(ids) != 1 || ids[0] <= 0 {
			t.Fatalf("AddMaintenance = %v, %v", ids, err)
		}
	})
}

// The maintenance table has the same columns, in the same order, in both
// dialects.
func TestMaintenanceColumns(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		q := `SELECT name FROM pragma_table_info('maintenance') ORDER BY cid`
		if s.Dialect() == devices.Postgres {
			q = `SELECT column_name FROM information_schema.columns
				WHERE table_schema = current_schema() AND table_name = 'maintenance' ORDER BY ordinal_position`
		}
		rows, err := s.ReadDB().QueryContext(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			got = append(got, c)
		}
		want := []string{"id", "device_id", "time", "component", "kind", "notes", "source", "ticket_id", "created_at"}
		if !slices.Equal(got, want) {
			t.Errorf("columns %v, want %v", got, want)
		}
	})
}

func TestAddMaintenance(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := mustOpen(t, dsn)
		mustDevice(t, s, "d1", "")
		mustDevice(t, s, "d2", "")
		t0 := newClock().Now()

		// Every bad field of every record is named; nothing is written.
		_, err := s.AddMaintenance(ctx, []proactive.Maintenance{
			maint("d1", "fan", proactive.MaintenanceInspected, t0),
			{Device: "bad id!", Component: "Fan", Kind: "swapped", Notes: "a\x00b"},
		})
		fe := fieldErrors(t, err)
		for _, f := range []string{"[1].device_id", "[1].time", "[1].component", "[1].kind", "[1].notes"} {
			if fe.Fields[f] == "" {
				t.Errorf("no problem for %s: %v", f, fe.Fields)
			}
		}
		if len(fe.Fields) != 5 {
			t.Errorf("problems %v", fe.Fields)
		}
		_, err = s.AddMaintenance(ctx, []proactive.Maintenance{{Device: "d1", Time: t0, Component: "fan", Kind: "oiled"}})
		if fe := fieldErrors(t, err); fe.Fields["kind"] == "" || len(fe.Fields) != 1 {
			t.Errorf("one record: problems %v", fe.Fields)
		}

		// An unknown device is not found, and the whole call writes nothing.
		_, err = s.AddMaintenance(ctx, []proactive.Maintenance{
			maint("d1", "fan", proactive.MaintenanceInspected, t0),
			maint("ghost", "fan", proactive.MaintenanceInspected, t0),
		})
		wantCode(t, err, proactive.ENotFound)
		if got, _ := s.DeviceMaintenance(ctx, "d1"); len(got) != 0 {
			t.Errorf("a failed call wrote %v", got)
		}

		// Written in order; the same record again keeps its id.
		recs := []proactive.Maintenance{
			maint("d1", "compressor", proactive.MaintenanceReplaced, t0.Add(time.Hour)),
			maint("d1", "fan", proactive.MaintenanceInspected, t0),
			maint("d2", "fan", proactive.MaintenanceRepaired, t0),
		}
		recs[0].Notes = "new compressor\nold one had a seized bearing"
		ids, err := s.AddMaintenance(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 3 || ids[0] >= ids[1] || ids[1] >= ids[2] {
			t.Errorf("ids %v: want 3, increasing", ids)
		}
		again, err := s.AddMaintenance(ctx, recs[:1])
		if err != nil || !slices.Equal(again, ids[:1]) {
			t.Errorf("again: %v, %v; want %v", again, err, ids[:1])
		}

		// A device's history, oldest first, with ids and times in UTC.
		got, err := s.DeviceMaintenance(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		recs[0].ID, recs[1].ID = ids[0], ids[1]
		if want := []proactive.Maintenance{recs[1], recs[0]}; !reflect.DeepEqual(got, want) {
			t.Errorf("d1 history:\n got %+v\nwant %+v", got, want)
		}
		if _, err := s.DeviceMaintenance(ctx, "ghost"); proactive.ErrorCode(err) != proactive.ENotFound {
			t.Errorf("unknown device: %v", err)
		}
	})
}

// MaintenanceAfter pages through every record in id order, records added
// from a transaction and by ticket closes included, and then returns none.
func TestMaintenanceAfter(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := mustOpen(t, dsn)
		mustDevice(t, s, "d1", "")
		t0 := newClock().Now()
		var want []int64
		for i := range 7 {
			ids, err := s.AddMaintenance(ctx, []proactive.Maintenance{
				maint("d1", "fan", proactive.MaintenanceInspected, t0.Add(-time.Duration(i)*time.Hour))})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ids...)
		}
		err := s.WithTx(ctx, func(tx *devices.Tx) error {
			ids, err := tx.AddMaintenance(ctx, []proactive.Maintenance{maint("d1", "door", proactive.MaintenanceRepaired, t0)})
			want = append(want, ids...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		var got []int64
		after := int64(0)
		for pages := 0; ; pages++ {
			page, err := s.MaintenanceAfter(ctx, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				if pages != 3 {
					t.Errorf("%d pages of 3 for 8 records", pages)
				}
				break
			}
			if len(page) > 3 {
				t.Fatalf("page of %d, limit 3", len(page))
			}
			for _, m := range page {
				if m.Device != "d1" || m.Time.IsZero() || m.Time.Location() != time.UTC || m.Validate() != nil {
					t.Errorf("record %+v", m)
				}
				got = append(got, m.ID)
			}
			after = page[len(page)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("ids %v, want %v", got, want)
		}
		if all, err := s.MaintenanceAfter(ctx, 0, 0); err != nil || len(all) != 8 {
			t.Errorf("limit 0: %d records, %v", len(all), err)
		}
		if rest, err := s.MaintenanceAfter(ctx, want[5], 100); err != nil || len(rest) != 2 || rest[0].ID != want[6] {
			t.Errorf("after %d: %+v, %v", want[5], rest, err)
		}
	})
}

func TestImportMaintenance(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := mustOpen(t, dsn)
		mustDevice(t, s, "d1", "")
		mustDevice(t, s, "d2", "")
		file := "\ufeffDevice_ID,time,component,kind,notes\n" +
			"d1,2026-03-01T08:00:00Z,compressor,replaced,\"new unit, warranty\"\n" +
			"d1,1772352000000,fan,Inspected,\n" + // 2026-03-01T08:00:00Z in ms
			"d2,2026-03-02T10:30:00+01:00,door_seal,repaired,\n" +
			"ghost,2026-03-01T08:00:00Z,fan,inspected,\n" +
			"d1,yesterday,Fan,swapped,\n" +
			",2026-03-01T08:00:00Z,,inspected,\n" +
			"d2,2026-03-01T08:00:00Z,fan\n" +
			"d1,2026-03-01T08:00:00.000Z,compressor,replaced,same record as line 2\n"
		rep, err := devices.ImportMaintenance(ctx, s, strings.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rows != 8 || rep.Created != 3 || rep.Unchanged != 1 || rep.Updated != 0 {
			t.Errorf("report %+v", rep)
		}
		wantRejected := []devices.RowError{
			{Line: 5, DeviceID: "ghost", Reason: `device_id: "ghost" is not a registered device`},
			{Line: 6, DeviceID: "d1", Reason: `time: "yesterday" is neither RFC 3339 (like 2026-03-10T09:30:00Z) nor Unix milliseconds; ` +
				`component: "Fan" must match [a-z][a-z0-9_]{0,63}; kind: "swapped" is not replaced, repaired or inspected`},
			{Line: 7, DeviceID: "", Reason: "device_id: required; component: required"},
			{Line: 8, DeviceID: "d2", Reason: "has 3 fields, the header 5"},
		}
		if !reflect.DeepEqual(rep.Rejected, wantRejected) {
			t.Errorf("rejected:\n got %q\nwant %q", rep.Rejected, wantRejected)
		}
		t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		got, err := s.DeviceMaintenance(ctx, "d1")
		if err != nil || len(got) != 2 {
			t.Fatalf("d1: %+v, %v", got, err)
		}
		if got[0].Time != t0 || got[0].Component != "compressor" || got[0].Notes != "new unit, warranty" ||
			got[1].Time != t0 || got[1].Kind != proactive.MaintenanceInspected {
			t.Errorf("d1: %+v", got)
		}
		if got, _ := s.DeviceMaintenance(ctx, "d2"); len(got) != 1 || got[0].Time != time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC) {
			t.Errorf("d2: %+v", got)
		}

		// Importing again adds nothing.
		before, _ := s.MaintenanceAfter(ctx, 0, 0)
		rep, err = devices.ImportMaintenance(ctx, s, strings.NewReader(file))
		if err != nil || rep.Created != 0 || rep.Unchanged != 4 || len(rep.Rejected) != 4 {
			t.Errorf("again: %+v, %v", rep, err)
		}
		if after, _ := s.MaintenanceAfter(ctx, 0, 0); len(after) != len(before) {
			t.Errorf("%d records after importing again, %d before", len(after), len(before))
		}

		// File-level problems import nothing.
		for _, bad := range []struct{ name, file, want string }{
			{"empty", "", "empty file"},
			{"missing", "device_id,time,kind\nd1,1,replaced\n", "missing required column component"},
			{"unknown", "device_id,time,component,kind,colour\n", `unknown column(s) "colour"`},
		} {
			_, err := devices.ImportMaintenance(ctx, s, strings.NewReader(bad.file))
			if err == nil || !strings.Contains(err.Error(), bad.want) || proactive.ErrorCode(err) != proactive.EInvalid {
				t.Errorf("%s: %v, want %q", bad.name, err, bad.want)
			}
		}
	})
}

// A batch of more than one transaction's rows imports whole.
func TestImportMaintenanceBatches(t *testing.T) {
	s := mustOpen(t, sqliteDSN(t))
	mustDevice(t, s, "d1", "")
	var b strings.Builder
	b.WriteString("device_id,time,component,kind\n")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1203 {
		fmt.Fprintf(&b, "d1,%d,fan,inspected\n", t0.Add(time.Duration(i)*time.Minute).UnixMilli())
	}
	b.WriteString("ghost,1,fan,inspected\n")
	rep, err := devices.ImportMaintenance(t.Context(), s, strings.NewReader(b.String()))
	if err != nil || rep.Created != 1203 || len(rep.Rejected) != 1 || rep.Rejected[0].Line != 1205 {
		t.Errorf("report %+v, %v", rep, err)
	}
}

func TestParseMaintenanceTime(t *testing.T) {
	want := time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-03-10T09:30:00Z", want, true},
		{"2026-03-10T10:30:00+01:00", want, true},
		{"2026-03-10T09:30:00.000000Z", want, true},
		{"1773135000000", want, true},
		{"0", time.UnixMilli(0).UTC(), true},
		{"", time.Time{}, false},
		{"2026-03-10", time.Time{}, false},
		{"2026-03-10 09:30:00", time.Time{}, false},
		{"1e12", time.Time{}, false},
		{"99999999999999999", time.Time{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := devices.ParseMaintenanceTime(tc.in)
			if (err == nil) != tc.ok || !got.Equal(tc.want) || (err == nil && got.Location() != time.UTC) {
				t.Errorf("= %v, %v; want %v (ok %v)", got, err, tc.want, tc.ok)
			}
		})
	}
}

// Closing a ticket with part_replaced records that its component was
// replaced, at the visit's done time when there is a visit and at the
// close otherwise; other outcomes record nothing.
func TestPartReplacedRecordsMaintenance(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clock := newClock()
		s := mustOpen(t, dsn, withClock(clock))
		mustDevice(t, s, "d1", "")
		mustDevice(t, s, "d2", "")
		mustDevice(t, s, "d3", "")
		mustTechnician(t, s, "tech-1")

		// No appointment (a visit booked by phone): the close's time.
		tk := mustOpenTicket(t, s, alert("d1", "compressor"))
		mustTransition(t, s, tk.ID, proactive.TicketScheduled, proactive.TicketVisited)
		clock.Add(time.Hour)
		closed, err := s.CloseTicket(ctx, tk.ID, proactive.OutcomePartReplaced, "swapped the compressor", "tech-1")
		if err != nil {
			t.Fatal(err)
		}
		want := []proactive.Maintenance{{Device: "d1", Time: closed.ClosedAt, Component: "compressor",
			Kind: proactive.MaintenanceReplaced, Notes: "swapped the compressor"}}
		if got := deviceMaintenance(t, s, "d1"); !reflect.DeepEqual(got, want) {
			t.Errorf("d1:\n got %+v\nwant %+v", got, want)
		}

		// A visit done, the ticket closed later (after the customer's
		// survey): the visit's time.
		tk = mustOpenTicket(t, s, alert("d2", "fan"))
		start := clock.Now().Add(24 * time.Hour).Truncate(time.Hour)
		var appt int64
		err = s.WithTx(ctx, func(tx *devices.Tx) error {
			var err error
			appt, err = tx.Book(ctx, devices.Booking{Ticket: tk.ID, Technician: "tech-1", Start: start, End: start.Add(2 * time.Hour),
				Actor: "dispatcher", At: clock.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		doneAt := start.Add(90 * time.Minute)
		err = s.WithTx(ctx, func(tx *devices.Tx) error {
			if err := tx.AppointmentDone(ctx, appt, doneAt, proactive.OutcomePartReplaced, "new fan"); err != nil {
				return err
			}
			_, err := tx.Transition(ctx, tk.ID, proactive.TicketVisited, "tech-1", "visit done")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		clock.Set(doneAt.Add(6 * time.Hour))
		err = s.WithTx(ctx, func(tx *devices.Tx) error {
			_, err := tx.CloseTicket(ctx, tk.ID, proactive.OutcomePartReplaced, "new fan", "survey")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want = []proactive.Maintenance{{Device: "d2", Time: doneAt, Component: "fan",
			Kind: proactive.MaintenanceReplaced, Notes: "new fan"}}
		if got := deviceMaintenance(t, s, "d2"); !reflect.DeepEqual(got, want) {
			t.Errorf("d2:\n got %+v\nwant %+v", got, want)
		}

		// Other outcomes, and a close that fails, record nothing.
		tk = mustOpenTicket(t, s, alert("d3", "compressor"))
		if _, err := s.CloseTicket(ctx, tk.ID, proactive.OutcomePartReplaced, "", "tech-1"); proactive.ErrorCode(err) != proactive.EConflict {
			t.Errorf("close of an open ticket: %v", err)
		}
		mustTransition(t, s, tk.ID, proactive.TicketScheduled, proactive.TicketVisited)
		if _, err := s.CloseTicket(ctx, tk.ID, proactive.OutcomeFaultConfirmed, "", "tech-1"); err != nil {
			t.Fatal(err)
		}
		if got := deviceMaintenance(t, s, "d3"); len(got) != 0 {
			t.Errorf("d3: %+v", got)
		}

		// The records name their tickets.
		raw, err := devices.RawDB(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var n int
		var ticket sql.NullInt64
		if err := raw.QueryRowContext(ctx, `SELECT COUNT(*), MAX(ticket_id) FROM maintenance WHERE source = 'ticket'`).Scan(&n, &ticket); err != nil || n != 2 {
			t.Errorf("%d records from tickets, %v", n, err)
		}
	})
}

func deviceMaintenance(tb testing.TB, s *devices.Store, dev proactive.DeviceID) []proactive.Maintenance {
	tb.Helper()
	got, err := s.DeviceMaintenance(tb.Context(), dev)
	if err != nil {
		tb.Fatalf("maintenance of %s: %v", dev, err)
	}
	for i := range got {
		got[i].ID = 0
	}
	return got
}

// A reader following ids while several writers add records misses none:
// ids commit in the order they are taken.
func TestMaintenanceAfterConcurrentWriters(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := mustOpen(t, dsn)
		mustDevice(t, s, "d1", "")
		t0 := newClock().Now()
		const writers, each = 4, 25
		done := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					m := maint("d1", "fan", proactive.MaintenanceInspected, t0.Add(time.Duration(w*each+i)*time.Second))
					if _, err := s.AddMaintenance(ctx, []proactive.Maintenance{m}); err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
				}
			})
		}
		go func() { wg.Wait(); close(done) }()
		seen := map[int64]bool{}
		var after int64
		read := func() {
			for {
				page, err := s.MaintenanceAfter(ctx, after, 7)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					return
				}
				for _, m := range page {
					seen[m.ID] = true
				}
				after = page[len(page)-1].ID
			}
		}
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			read()
		}
		read()
		if len(seen) != writers*each {
			t.Errorf("the reader saw %d records, %d were written", len(seen), writers*each)
		}
	})
}

// TestReadMaintenance: the file a backtest reads with --maintenance, parsed
// as the import parses it, without a database; a bad row fails it by line.
func TestReadMaintenance(t *testing.T) {
	ms, err := devices.ReadMaintenance(strings.NewReader("device_id,time,component,kind\n" +
		"d1,2026-03-01T08:00:00Z,compressor,replaced\n" +
		"d2,1772352000000,fan,Repaired\n"))
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	want := []proactive.Maintenance{
		{Device: "d1", Time: t0, Component: "compressor", Kind: proactive.MaintenanceReplaced},
		{Device: "d2", Time: t0, Component: "fan", Kind: proactive.MaintenanceRepaired},
	}
	if err != nil || !reflect.DeepEqual(ms, want) {
		t.Errorf("ReadMaintenance = %+v, %v; want %+v", ms, err, want)
	}
	for file, msg := range map[string]string{
		"":                      "empty file",
		"device_id,time,kind\n": "component",
		"device_id,time,component,kind\nd1,2026-03-01T08:00:00Z,fan,swapped\n": `line 2: kind: "swapped" is not replaced, repaired or inspected`,
		"device_id,time,component,kind\nd1,2026-03-01T08:00:00Z,fan\n":         "line 2: has 3 fields, the header 4",
	} {
		_, err := devices.ReadMaintenance(strings.NewReader(file))
		if proactive.ErrorCode(err) != proactive.EInvalid || !strings.Contains(proactive.ErrorMessage(err), msg) {
			t.Errorf("ReadMaintenance(%q) = %v, want an invalid error containing %q", file, err, msg)
		}
	}
}
