package devices_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// TestDeviceDirectoryAnswersFromMemory: once the directory is loaded,
// DeviceInfo runs no statement at all, for known and unknown devices alike,
// as counted by a wrapper around every connection of the store.
func TestDeviceDirectoryAnswersFromMemory(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		var n atomic.Int64
		s, err := devices.OpenCounting(ctx, dsn, devices.Options{BcryptCost: bcrypt.MinCost, DirectoryRefresh: time.Hour}, &n)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i := range 100 {
			mustDevice(t, s, fmt.Sprintf("d%d", i), "")
		}
		if n.Load() == 0 {
			t.Fatal("the wrapper counted no statement: it does not see the store's")
		}
		// The first call loads the directory, in one read.
		if m, _, ok := s.DeviceInfo("d7"); !ok || m != "fridge-a200" {
			t.Fatalf("d7: %q %v after the load", m, ok)
		}
		if got := s.DirectoryReads(); got != 1 {
			t.Errorf("%d directory reads after the first call, want 1", got)
		}
		if got := s.DirectorySize(); got != 100 {
			t.Errorf("directory of %d devices, want 100", got)
		}

		before := n.Load()
		for i := range 10_000 {
			id := proactive.DeviceID(fmt.Sprintf("d%d", i%200)) // d100..d199 are unknown
			m, _, ok := s.DeviceInfo(id)
			if want := i%200 < 100; ok != want || (ok && m != "fridge-a200") {
				t.Fatalf("%s: %q %v, want known %v", id, m, ok, want)
			}
		}
		if got := n.Load() - before; got != 0 {
			t.Errorf("10,000 lookups ran %d statements, want 0", got)
		}
	})
}

// TestDeviceDirectorySeesOtherProcesses: a device registered, changed,
// deleted and registered again through a second store on the same database
// (another instance, or the import CLI) is seen by the first within its
// refresh.
func TestDeviceDirectorySeesOtherProcesses(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := mustOpen(t, dsn, func(o *devices.Options) { o.DirectoryRefresh = 20 * time.Millisecond })
		other := mustOpen(t, dsn)
		if err := s.LoadDirectory(ctx); err != nil {
			t.Fatal(err)
		}
		want := func(id proactive.DeviceID, model string) {
			t.Helper()
			testenv.Eventually(t, 0, func() error {
				m, _, ok := s.DeviceInfo(id)
				if model == "" && ok {
					return fmt.Errorf("%s still known as %q", id, m)
				}
				if model != "" && m != model {
					return fmt.Errorf("%s: model %q, known %v; want %q", id, m, ok, model)
				}
				return nil
			})
		}

		d := mustDevice(t, other, "d1", "")
		want("d1", "fridge-a200")
		d.Model = "fridge-b300"
		if _, err := other.UpdateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		want("d1", "fridge-b300")
		if err := other.DeleteDevice(ctx, "d1"); err != nil {
			t.Fatal(err)
		}
		want("d1", "")
		d.Model = "oven-c1"
		if _, err := other.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		want("d1", "oven-c1")
		if _, err := devices.Import(ctx, other, strings.NewReader("device_id,model,time_zone\nd2,oven-c2,UTC\n"), nil); err != nil {
			t.Fatal(err)
		}
		want("d2", "oven-c2")
		if got := s.DirectorySize(); got != 2 {
			t.Errorf("directory of %d devices, want 2", got)
		}
	})
}

// TestDeviceDirectoryCommitsWinOverReads: a commit through the store that
// lands while a reload or a poll has read the database, but not yet
// installed what it read, is not undone by that older read.
func TestDeviceDirectoryCommitsWinOverReads(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := mustOpen(t, dsn, func(o *devices.Options) { o.DirectoryRefresh = time.Hour })
		d1 := mustDevice(t, s, "d1", "")
		mustDevice(t, s, "d2", "")
		if err := s.LoadDirectory(ctx); err != nil {
			t.Fatal(err)
		}
		// during runs read, then commit, then lets read install its result.
		during := func(read func() error, commit func()) {
			t.Helper()
			var once sync.Once
			s.AfterDirectoryRead(func() { once.Do(commit) })
			defer s.AfterDirectoryRead(nil)
			if err := read(); err != nil {
				t.Fatal(err)
			}
		}
		reload := func() error { return s.ReloadDirectory(ctx) }
		poll := func() error { return s.PollDirectory(ctx, time.Hour) } // reads every device again
		want := func(id proactive.DeviceID, model string) {
			t.Helper()
			if m, _, _ := s.DeviceInfo(id); m != model {
				t.Errorf("%s: model %q, want %q", id, m, model)
			}
		}

		during(reload, func() { mustDevice(t, s, "d3", "") })
		want("d3", "fridge-a200")
		during(reload, func() {
			if err := s.DeleteDevice(ctx, "d2"); err != nil {
				t.Error(err)
			}
		})
		want("d2", "")
		during(poll, func() {
			d1.Model = "fridge-b300"
			if _, err := s.UpdateDevice(ctx, d1); err != nil {
				t.Error(err)
			}
		})
		want("d1", "fridge-b300")
		during(poll, func() {
			if err := s.DeleteDevice(ctx, "d3"); err != nil {
				t.Error(err)
			}
		})
		want("d3", "")
	})
}

// TestDeviceDirectoryKeepsLastGoodState: while the database cannot be polled
// the directory answers as before and logs why; once it can, the writes
// missed meanwhile come in.
func TestDeviceDirectoryKeepsLastGoodState(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		var logs testenv.Buffer
		s := mustOpen(t, dsn, func(o *devices.Options) {
			o.DirectoryRefresh = 20 * time.Millisecond
			o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		other := mustOpen(t, dsn)
		d := mustDevice(t, other, "d1", "")
		if err := s.LoadDirectory(ctx); err != nil {
			t.Fatal(err)
		}
		raw := testenv.RawDB(t, dsn)
		if _, err := raw.ExecContext(ctx, `ALTER TABLE device_deletions RENAME TO device_deletions_away`); err != nil {
			t.Fatal(err)
		}
		d.Model = "fridge-b300"
		if _, err := other.UpdateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		// The streak is one error; the refreshes failing after it are
		// debug lines.
		testenv.Eventually(t, 0, func() error {
			if n := strings.Count(logs.String(), "refresh failed again"); n < 2 {
				return fmt.Errorf("%d failed refreshes after the first logged: %q", n, logs.String())
			}
			return nil
		})
		if n := strings.Count(logs.String(), "level=ERROR msg=\"device directory: refresh failed"); n != 1 {
			t.Errorf("%d error lines for one streak of failures, want 1:\n%s", n, logs.String())
		}
		if m, _, ok := s.DeviceInfo("d1"); !ok || m != "fridge-a200" {
			t.Errorf("d1 during the outage: %q %v, want the last good fridge-a200", m, ok)
		}
		if _, err := raw.ExecContext(ctx, `ALTER TABLE device_deletions_away RENAME TO device_deletions`); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 0, func() error {
			if m, _, _ := s.DeviceInfo("d1"); m != "fridge-b300" {
				return fmt.Errorf("d1: model %q after the outage, want fridge-b300", m)
			}
			if !strings.Contains(logs.String(), "refresh works again") {
				return errors.New("the end of the streak is not logged")
			}
			return nil
		})
	})
}

// TestDeviceDirectoryMigration: 0015 stamps the devices registered before
// it, which the directory then knows.
func TestDeviceDirectoryMigration(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		if err := devices.MigrateTo(ctx, dsn, 14); err != nil {
			t.Fatal(err)
		}
		raw, err := devices.RawDB(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		clk := newClock()
		installed := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		if _, err := raw.ExecContext(ctx, `INSERT INTO devices (id, model, time_zone, installed_on, created_at, updated_at)
			VALUES ('d1', 'fridge-a200', 'UTC', $1, $2, $2)`, installed, clk.Now()); err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, dsn, withClock(clk))
		var stamp int64
		if err := raw.QueryRowContext(ctx, `SELECT changed_us FROM devices WHERE id = 'd1'`).Scan(&stamp); err != nil || stamp <= 0 {
			t.Errorf("changed_us %d, %v: want a stamp", stamp, err)
		}
		if m, age, ok := s.DeviceInfo("d1"); !ok || m != "fridge-a200" || math.Abs(age-(9+9.5/24)) > 1e-9 {
			t.Errorf("d1: %q %v %v, want fridge-a200 %v", m, age, ok, 9+9.5/24)
		}
	})
}

// BenchmarkDeviceDirectory loads the directory of 100,000 devices (50
// models, half with an installation date) and reports its heap per device
// (B/device) and the time of a full load (load: ms/load), of a DeviceInfo
// (lookup), and of a poll that finds nothing new (poll).
func BenchmarkDeviceDirectory(b *testing.B) {
	const n = 100_000
	for _, d := range dialects {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			dsn := d.DSN(b)
			s := mustOpen(b, dsn, func(o *devices.Options) { o.DirectoryRefresh = time.Hour })
			seedDevices(b, dsn, n)

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if err := s.LoadDirectory(ctx); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if got := s.DirectorySize(); got != n {
				b.Fatalf("directory of %d devices, want %d", got, n)
			}
			perDevice := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n

			b.Run("load", func(b *testing.B) {
				for b.Loop() {
					if err := s.ReloadDirectory(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(perDevice, "B/device")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/load")
			})
			// DeviceInfo, what each message costs.
			b.Run("lookup", func(b *testing.B) {
				ids := make([]proactive.DeviceID, 1024)
				for i := range ids {
					ids[i] = proactive.DeviceID(fmt.Sprintf("dev-%08d", i*97))
				}
				i := 0
				for b.Loop() {
					if _, _, ok := s.DeviceInfo(ids[i%len(ids)]); !ok {
						b.Fatalf("%s unknown", ids[i%len(ids)])
					}
					i++
				}
			})
			// A poll when nothing changed: what every instance pays each
			// DirectoryRefresh.
			b.Run("poll", func(b *testing.B) {
				for b.Loop() {
					if err := s.PollDirectory(ctx, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// seedDevices inserts n devices under the store, 500 a statement.
func seedDevices(tb testing.TB, dsn string, n int) {
	tb.Helper()
	ctx := context.Background()
	tx, err := testenv.RawDB(tb, dsn).BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	now := time.Now().UTC().Truncate(time.Second)
	for start := 0; start < n; start += 500 {
		var vals []string
		var args []any
		for i := start; i < min(n, start+500); i++ {
			k := len(args)
			vals = append(vals, fmt.Sprintf("($%d, $%d, 'Europe/Paris', $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+4))
			var installed any
			if i%2 == 0 {
				installed = time.Date(2020, 1, 1+i%1000, 0, 0, 0, 0, time.UTC)
			}
			args = append(args, fmt.Sprintf("dev-%08d", i), fmt.Sprintf("fridge-a%d", i%50), installed, now)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, model, time_zone, installed_on, created_at, updated_at) VALUES `+
			strings.Join(vals, ", "), args...); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	if strings.HasPrefix(dsn, "postgres") {
		// As autovacuum would soon: without statistics, PostgreSQL plans a
		// full scan of the devices for a poll.
		if _, err := testenv.RawDB(tb, dsn).ExecContext(ctx, `ANALYZE devices`); err != nil {
			tb.Fatal(err)
		}
	}
}

// WaitDirectory returns once a load succeeds: a first load that failed is
// retried in the background, and serve waits on it before taking messages.
func TestWaitDirectoryAfterAFailedLoad(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		other := mustOpen(t, dsn)
		mustDevice(t, other, "d1", "")
		raw := testenv.RawDB(t, dsn)
		if _, err := raw.ExecContext(ctx, `ALTER TABLE devices RENAME TO devices_away`); err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, dsn, func(o *devices.Options) { o.DirectoryRefresh = 20 * time.Millisecond })
		if err := s.LoadDirectory(ctx); err == nil {
			t.Fatal("the load succeeded without a devices table")
		}
		waited := make(chan error, 1)
		go func() { waited <- s.WaitDirectory(ctx) }()
		// Three more loads fail while it waits.
		reads := s.DirectoryReads()
		testenv.Eventually(t, 0, func() error {
			if n := s.DirectoryReads() - reads; n < 3 {
				return fmt.Errorf("%d failed loads retried so far", n)
			}
			return nil
		})
		select {
		case err := <-waited:
			t.Fatalf("WaitDirectory returned %v before any load succeeded", err)
		default:
		}
		if _, err := raw.ExecContext(ctx, `ALTER TABLE devices_away RENAME TO devices`); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-waited:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("WaitDirectory did not return after the table came back")
		}
		if _, _, ok := s.DeviceInfo("d1"); !ok {
			t.Error("d1 unknown after the directory loaded")
		}
	})
}
