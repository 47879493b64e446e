package devices

import (
	"database/sql/driver"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Unavailable reports whether err says the database could not be reached
// or is not taking work right now (refused or lost connection, a server
// shutting down or starting, SQLite busy past its timeout), rather than a
// fault of the request: a retry later can succeed, so HTTP answers 503
// with Retry-After, not 500.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: admin shutdown,
		// crash shutdown, cannot connect now; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	var se *sqlite.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, driver.ErrBadConn):
		return true
	case errors.As(err, &se):
		return se.Code()&0xff == sqlite3.SQLITE_BUSY
	}
	// pgx reports a connection that died under a query without a typed
	// error.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "unexpected EOF")
}

// Violation reports whether err is the database refusing the data itself:
// an integrity constraint (unique, foreign key, check, not null, a
// trigger's abort) or a value it cannot store. The same write fails the
// same way however often it is retried, unlike Unavailable.
func Violation(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 23: integrity constraint violation; class 22: data exception.
		return strings.HasPrefix(pe.Code, "23") || strings.HasPrefix(pe.Code, "22")
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
			return true
		}
	}
	return false
}
