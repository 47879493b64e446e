package devices_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// TestMigrationFiles checks that both dialects have the same migrations.
func TestMigrationFiles(t *testing.T) {
	lite, err := devices.MigrationNames(devices.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pgs, err := devices.MigrationNames(devices.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lite, pgs) || len(lite) != devices.LatestSchemaVersion() || len(lite) < 2 {
		t.Errorf("sqlite migrations %v, postgres %v, latest %d", lite, pgs, devices.LatestSchemaVersion())
	}
}

func TestMigrations(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		latest := devices.LatestSchemaVersion()

		// A database left at the previous version by an older binary, with
		// data in it, comes up.
		if err := devices.MigrateTo(ctx, dsn, latest-1); err != nil {
			t.Fatal(err)
		}
		raw, err := devices.RawDB(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var v int
		if err := raw.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil || v != latest-1 {
			t.Fatalf("after MigrateTo(%d): version %d, %v", latest-1, v, err)
		}
		if _, err := raw.ExecContext(ctx, `INSERT INTO devices (id, model, time_zone, created_at, updated_at)
			VALUES ('old-1', 'fridge-a200', 'Europe/Paris', $1, $1)`, newClock().Now()); err != nil {
			t.Fatal(err)
		}

		s := mustOpen(t, dsn)
		if v, err := s.SchemaVersion(ctx); err != nil || v != latest {
			t.Errorf("SchemaVersion = %d, %v; want %d", v, err, latest)
		}
		if d, err := s.GetDevice(ctx, "old-1"); err != nil || d.Model != "fridge-a200" || string(d.Metadata) != "{}" {
			t.Errorf("device from the old schema: %+v, %v", d, err)
		}
		mustOpenTicket(t, s, alert("old-1", "compressor"))

		// Opening again applies nothing; concurrent opens all succeed.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				s2, err := devices.Open(ctx, dsn)
				if err != nil {
					t.Errorf("reopen: %v", err)
					return
				}
				s2.Close()
			})
		}
		wg.Wait()
		var n int
		if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != latest {
			t.Errorf("schema_migrations has %d rows, %v; want %d", n, err, latest)
		}

		// A schema newer than this binary knows is refused, untouched.
		if _, err := raw.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from_the_future', $2)`,
			latest+1, newClock().Now()); err != nil {
			t.Fatal(err)
		}
		_, err = devices.Open(ctx, dsn)
		if !errors.Is(err, devices.ErrSchemaTooNew) {
			t.Fatalf("Open on a newer schema: %v, want ErrSchemaTooNew", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "schema version") || !strings.Contains(msg, "run a newer proactive") {
			t.Errorf("message %q does not say what to do", msg)
		}
	})
}

// TestFreshDatabase opens an empty database: every migration applies.
func TestFreshDatabase(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		if v, err := s.SchemaVersion(t.Context()); err != nil || v != devices.LatestSchemaVersion() {
			t.Errorf("SchemaVersion = %d, %v", v, err)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Error(err)
		}
		want := devices.SQLite
		if strings.HasPrefix(dsn, "postgres") {
			want = devices.Postgres
		}
		if s.Dialect() != want {
			t.Errorf("Dialect = %s, want %s", s.Dialect(), want)
		}
	})
}

// TestSQLiteSettings checks the connection settings: WAL, a busy timeout,
// foreign keys, immediate write transactions, and a read pool that cannot
// write.
func TestSQLiteSettings(t *testing.T) {
	s := mustOpen(t, sqliteDSN(t))
	ctx := t.Context()
	err := s.WithTx(ctx, func(tx *devices.Tx) error {
		for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000", "synchronous": "1"} {
			var got string
			if err := tx.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				return err
			}
			if got != want {
				t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadDB().ExecContext(ctx, `DELETE FROM devices`); err == nil {
		t.Error("the read pool wrote")
	}
	_, err = devices.Open(ctx, ":memory:")
	if err == nil || !strings.Contains(err.Error(), "want a file path") {
		t.Errorf("Open(:memory:) = %v", err)
	}
}

// TestSQLiteWriters has several stores (processes) write the same SQLite
// file at once with transactions that read before they write. Deferred
// transactions would fail with SQLITE_BUSY when two try to upgrade their
// read locks; immediate ones queue on the busy timeout instead.
func TestSQLiteWriters(t *testing.T) {
	dsn := sqliteDSN(t)
	var stores []*devices.Store
	for range 4 {
		stores = append(stores, mustOpen(t, dsn))
	}
	ctx := t.Context()
	mustDevice(t, stores[0], "d1", "")
	mustTechnician(t, stores[0], "tech-1")
	mustTechnician(t, stores[0], "tech-2")
	tk := mustOpenTicket(t, stores[0], alert("d1", "compressor"))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for j := range 25 {
				tech := []string{"tech-1", "tech-2"}[(i+j)%2]
				if _, err := s.Assign(ctx, tk.ID, tech, "dispatcher"); err != nil {
					t.Errorf("store %d: assign: %v", i, err)
					return
				}
				if _, err := s.Comment(ctx, tk.ID, "dispatcher", "note"); err != nil {
					t.Errorf("store %d: comment: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := stores[0].GetTicket(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	comments := 0
	for _, e := range got.Timeline {
		if e.Kind == proactive.TicketEventComment {
			comments++
		}
	}
	if comments != 100 {
		t.Errorf("%d comments, want 100", comments)
	}
}

// TestPostgresBadURL checks that a malformed URL fails without echoing it.
func TestPostgresBadURL(t *testing.T) {
	_, err := devices.Open(context.Background(), "postgres://user:s3cret@host:notaport/db")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open = %v: want an error without the password", err)
	}
	if proactive.ErrorCode(err) != proactive.EInternal {
		t.Errorf("code %q", proactive.ErrorCode(err))
	}
}

// TestReviewMigration: 0007 rebuilds the tickets table on SQLite (a CHECK
// cannot change in place) without losing a ticket or what refers to it, and
// a ticket may then wait in review and be dismissed as a false alarm.
func TestReviewMigration(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		if err := devices.MigrateTo(ctx, dsn, 6); err != nil {
			t.Fatal(err)
		}
		raw, err := devices.RawDB(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		now := newClock().Now()
		if _, err := raw.ExecContext(ctx, `INSERT INTO devices (id, model, time_zone, created_at, updated_at) VALUES ('d1', 'fridge-a200', 'UTC', $1, $1)`, now); err != nil {
			t.Fatal(err)
		}
		var old int64
		for range 3 { // the last of three, so that ids are not all 1
			if err := raw.QueryRowContext(ctx, `INSERT INTO tickets (device_id, component, rule, status, severity, opened_at, updated_at)
				VALUES ('d1', 'compressor', 'r', 'cancelled', 'warning', $1, $1) RETURNING id`, now).Scan(&old); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := raw.ExecContext(ctx, `UPDATE tickets SET status = 'offered' WHERE id = $1`, old); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.ExecContext(ctx, `INSERT INTO ticket_events (ticket_id, at, kind, actor) VALUES ($1, $2, 'opened', 'rules')`, old, now); err != nil {
			t.Fatal(err)
		}

		s := mustOpen(t, dsn)
		tk, err := s.GetTicket(ctx, old)
		if err != nil || tk.Status != proactive.TicketOffered || tk.Device != "d1" || len(tk.Timeline) != 1 {
			t.Fatalf("ticket %d after the migration: %+v, %v", old, tk, err)
		}
		// Foreign keys are on again, and still point at the rebuilt table.
		if _, err := raw.ExecContext(ctx, `INSERT INTO ticket_events (ticket_id, at, kind, actor) VALUES (999, $1, 'note', 'x')`, now); err == nil {
			t.Error("a timeline event of a missing ticket was accepted")
		}
		// AUTOINCREMENT goes on after the highest id.
		if _, err := s.Transition(ctx, old, proactive.TicketCancelled, "dispatcher", ""); err != nil {
			t.Fatal(err)
		}
		next := mustOpenTicket(t, s, alert("d1", "compressor"))
		if next.ID <= old {
			t.Errorf("new ticket id %d, want > %d", next.ID, old)
		}

		r := mustTransition(t, s, next.ID, proactive.TicketReview)
		if r.Status != proactive.TicketReview {
			t.Fatalf("status %s, want review", r.Status)
		}
		if _, err := s.CloseTicket(ctx, next.ID, proactive.OutcomeFaultConfirmed, "", "dispatcher"); proactive.ErrorCode(err) != proactive.EConflict {
			t.Errorf("fault_confirmed without a visit: %v, want a conflict", err)
		}
		c, err := s.CloseTicket(ctx, next.ID, proactive.OutcomeFalseAlarm, "drift of a new sensor", "dispatcher")
		if err != nil || c.Status != proactive.TicketClosed || c.Outcome != proactive.OutcomeFalseAlarm {
			t.Fatalf("dismiss: %+v, %v", c, err)
		}
		v := mustOpenTicket(t, s, alert("d1", "compressor"))
		mustTransition(t, s, v.ID, proactive.TicketScheduled, proactive.TicketVisited)
		if _, err := s.CloseTicket(ctx, v.ID, proactive.OutcomeFalseAlarm, "", "dispatcher"); proactive.ErrorCode(err) != proactive.EConflict {
			t.Errorf("false_alarm after a visit: %v, want a conflict", err)
		}
	})
}
