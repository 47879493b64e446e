package testenv

import (
	"database/sql"
	"strings"
	"testing"
)

// RawDB opens the database named by dsn directly, beside the store, for
// tests that seed rows in bulk or break the schema on purpose; production
// code reaches the database only through devices. Closed at cleanup.
func RawDB(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	driver := "sqlite"
	if strings.HasPrefix(dsn, "postgres") {
		driver = "pgx"
	} else {
		// A statement under the store's feet waits for the store's write
		// transactions, as the store's own connections do, instead of
		// failing at once with SQLITE_BUSY on a loaded machine.
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + "_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		tb.Fatalf("open %s: %v", dsn, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
