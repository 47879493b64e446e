package devices

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// MigrateTo brings the database at dsn to schema version (and no further),
// as an older binary would have left it.
func MigrateTo(ctx context.Context, dsn string, version int) error {
	d, db, read, err := openDB(dsn, Options{}.withDefaults())
	if err != nil {
		return err
	}
	defer read.Close()
	defer db.Close()
	_, err = migrate(ctx, db, d, version, time.Now().UTC())
	return err
}

// RawDB opens the database at dsn without migrating it, for tests that
// look under the store.
func RawDB(dsn string) (*sql.DB, error) {
	_, db, read, err := openDB(dsn, Options{}.withDefaults())
	if err != nil {
		return nil, err
	}
	if read != db {
		read.Close()
	}
	return db, nil
}

// Dialect reports which database the store runs on.
func (s *Store) Dialect() Dialect { return s.dialect }

// ReadDB is the store's read pool.
func (s *Store) ReadDB() *sql.DB { return s.read }

// MigrationNames lists a dialect's migrations as "NNNN_name".
func MigrationNames(d Dialect) ([]string, error) {
	ms, err := migrations(d)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%04d_%s", m.version, m.name))
	}
	return out, nil
}

// QueryRowContext runs a one-row query in the transaction, for tests that
// read the connection's settings.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, query, args...)
}

// ExecContext runs a statement in the transaction, for tests that seed rows
// or hold locks under the store.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, query, args...)
}
