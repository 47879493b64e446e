package devices_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the test database's administration
	"golang.org/x/crypto/bcrypt"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// defaultPostgres is the server the suite runs against, where present: the
// local PostgreSQL with trust authentication. PROACTIVE_TEST_POSTGRES
// overrides it (a URL to an administrative database of a server on which
// the user may create databases).
const defaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&connect_timeout=3"

// pg is the throwaway database of this test run, created on first use and
// dropped by TestMain: each test gets a fresh schema of it.
var pg struct {
	once  sync.Once
	admin string // URL of the administrative database
	name  string // the run's database
	url   string // URL of the run's database
	err   error
	seq   atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pg.name != "" && pg.err == nil {
		if err := adminExec(pg.admin, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, pg.name)); err != nil {
			fmt.Fprintf(os.Stderr, "drop test database %s: %v\n", pg.name, err)
		}
	}
	os.Exit(code)
}

func adminExec(dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// postgresDSN returns the URL of a fresh, empty schema in the run's
// database; if no PostgreSQL answers, it skips the test, or fails it under
// CI=true.
func postgresDSN(tb testing.TB) string {
	tb.Helper()
	pg.once.Do(func() {
		pg.admin = os.Getenv("PROACTIVE_TEST_POSTGRES")
		if pg.admin == "" {
			pg.admin = defaultPostgres
		}
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		pg.name = "proactive_test_" + hex.EncodeToString(b)
		if pg.err = adminExec(pg.admin, "CREATE DATABASE "+pg.name); pg.err != nil {
			return
		}
		u, err := url.Parse(pg.admin)
		if err != nil {
			pg.err = err
			return
		}
		u.Path = "/" + pg.name
		pg.url = u.String()
	})
	if pg.err != nil {
		testenv.RequireService(tb, "postgresql", fmt.Sprintf(
			"no PostgreSQL to test against (%v): start PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres, or set PROACTIVE_TEST_POSTGRES",
			pg.err))
		return ""
	}
	schema := fmt.Sprintf("t%d", pg.seq.Add(1))
	db, err := sql.Open("pgx", pg.url)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	u, _ := url.Parse(pg.url)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// sqliteDSN returns the path of a new SQLite database file.
func sqliteDSN(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "data", "proactive.db")
}

// dialects are the databases every store test runs on.
var dialects = []struct {
	name string
	dsn  func(testing.TB) string
}{
	{"sqlite", sqliteDSN},
	{"postgres", postgresDSN},
}

// eachDialect runs f as a parallel subtest per dialect, with the DSN of a
// fresh database.
func eachDialect(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			f(t, d.dsn(t))
		})
	}
}

// fakeClock is a settable clock for the store.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mustOpen opens the store at dsn with cheap bcrypt (tests hash often) and
// closes it at cleanup.
func mustOpen(tb testing.TB, dsn string, opts ...func(*devices.Options)) *devices.Store {
	tb.Helper()
	o := devices.Options{BcryptCost: bcrypt.MinCost}
	for _, f := range opts {
		f(&o)
	}
	s, err := devices.OpenOptions(context.Background(), dsn, o)
	if err != nil {
		tb.Fatalf("open %s: %v", dsn, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func withClock(c *fakeClock) func(*devices.Options) {
	return func(o *devices.Options) { o.Now = c.Now }
}

// wantCode fails unless err carries the proactive error code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := proactive.ErrorCode(err); got != code {
		tb.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func mustCustomer(tb testing.TB, s *devices.Store, id, phone string) devices.Customer {
	tb.Helper()
	c, err := s.CreateCustomer(tb.Context(), devices.Customer{ID: id, Name: "Customer " + id, Phone: phone})
	if err != nil {
		tb.Fatalf("create customer %s: %v", id, err)
	}
	return c
}

func mustDevice(tb testing.TB, s *devices.Store, id, customer string) devices.Device {
	tb.Helper()
	d, err := s.CreateDevice(tb.Context(), devices.Device{ID: proactive.DeviceID(id), Model: "fridge-a200",
		CustomerID: customer, TimeZone: "Europe/Paris", Site: devices.Address{PostalCode: "75011", Country: "FR"}})
	if err != nil {
		tb.Fatalf("create device %s: %v", id, err)
	}
	return d
}

func mustTechnician(tb testing.TB, s *devices.Store, id string) devices.Technician {
	tb.Helper()
	t, err := s.CreateTechnician(tb.Context(), devices.Technician{ID: id, Name: "Tech " + id, Phone: "+33612345678",
		TimeZone: "Europe/Paris", Skills: []string{"compressor"}, ServiceArea: []string{"75"}})
	if err != nil {
		tb.Fatalf("create technician %s: %v", id, err)
	}
	return t
}

func alert(dev, component string) proactive.Alert {
	return proactive.Alert{Rule: "compressor_wear", Device: proactive.DeviceID(dev), Model: "fridge-a200",
		Component: component, Severity: proactive.SeverityWarning, State: proactive.AlertFiring,
		Summary: "Compressor current 6.1 A, above its weekly norm", TimeToFailure: 72 * time.Hour}
}

func mustOpenTicket(tb testing.TB, s *devices.Store, a proactive.Alert) devices.Ticket {
	tb.Helper()
	t, created, err := s.OpenTicket(tb.Context(), a)
	if err != nil || !created {
		tb.Fatalf("open ticket %s/%s: created %v, %v", a.Device, a.Component, created, err)
	}
	return t
}

func mustTransition(tb testing.TB, s *devices.Store, id int64, to ...proactive.TicketStatus) devices.Ticket {
	tb.Helper()
	var t devices.Ticket
	for _, st := range to {
		var err error
		if t, err = s.Transition(tb.Context(), id, st, "dispatcher", ""); err != nil {
			tb.Fatalf("transition %d to %s: %v", id, st, err)
		}
	}
	return t
}

// fieldErrors returns err's *FieldErrors, failing the test if it has none.
func fieldErrors(tb testing.TB, err error) *devices.FieldErrors {
	tb.Helper()
	var fe *devices.FieldErrors
	if !errors.As(err, &fe) {
		tb.Fatalf("error %v: want *devices.FieldErrors", err)
	}
	return fe
}
