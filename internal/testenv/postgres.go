package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for administering the test database
)

// defaultPostgres is the server tests run against where present: the local
// PostgreSQL with trust authentication. PROACTIVE_TEST_POSTGRES overrides it
// (a URL to an administrative database of a server on which the user may
// create databases).
const defaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&connect_timeout=3"

// testDatabase holds every test schema: one database shared by all test
// processes, a schema per test, dropped when the test ends, so nothing
// accumulates and parallel packages do not collide.
const testDatabase = "proactive_test"

var pg struct {
	once sync.Once
	url  string // URL of testDatabase
	err  error
}

func pgExec(dsn, stmt string) error {
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

// Postgres returns the URL of a fresh, empty schema on the test PostgreSQL,
// dropped when tb ends. Without a PostgreSQL it skips the test, or fails it
// under CI=true.
func Postgres(tb testing.TB) string {
	tb.Helper()
	pg.once.Do(func() {
		admin := os.Getenv("PROACTIVE_TEST_POSTGRES")
		if admin == "" {
			admin = defaultPostgres
		}
		if err := pgExec(admin, "CREATE DATABASE "+testDatabase); err != nil && !strings.Contains(err.Error(), "already exists") &&
			!strings.Contains(err.Error(), "duplicate key") {
			pg.err = err
			return
		}
		u, err := url.Parse(admin)
		if err != nil {
			pg.err = err
			return
		}
		u.Path = "/" + testDatabase
		pg.url = u.String()
	})
	if pg.err != nil {
		RequireService(tb, "postgresql", fmt.Sprintf(
			"no PostgreSQL to test against (%v): start PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres, or set PROACTIVE_TEST_POSTGRES",
			pg.err))
		return ""
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if err := pgExec(pg.url, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create test schema: %v", err)
	}
	tb.Cleanup(func() {
		if err := pgExec(pg.url, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Logf("drop test schema %s: %v", schema, err)
		}
	})
	u, _ := url.Parse(pg.url)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SQLite returns the path of a new SQLite database file under tb's
// temporary directory.
func SQLite(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "data", "proactive.db")
}

// Dialects are the relational stores every store-backed test runs on, each
// with a function returning a fresh database's DSN.
var Dialects = []struct {
	Name string
	DSN  func(testing.TB) string
}{
	{"sqlite", SQLite},
	{"postgres", Postgres},
}

// EachDialect runs f as a parallel subtest per dialect with the DSN of a
// fresh database.
func EachDialect(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			f(t, d.DSN(t))
		})
	}
}
