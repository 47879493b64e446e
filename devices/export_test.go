package devices

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync/atomic"
	"time"
)

// MigrateTo brings the database at dsn to schema version (and no further),
// as an older binary would have left it.
func MigrateTo(ctx context.Context, dsn string, version int) error {
	d, db, read, err := openDB(dsn, Options{}.withDefaults(), nil)
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
	_, db, read, err := openDB(dsn, Options{}.withDefaults(), nil)
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

// OpenCounting opens a store like OpenOptions, and counts in n every
// statement its connections run or prepare.
func OpenCounting(ctx context.Context, dsn string, opt Options, n *atomic.Int64) (*Store, error) {
	return openStore(ctx, dsn, opt, func(c driver.Connector) driver.Connector { return countingConnector{c, n} })
}

// DirectoryReads counts the directory's loads and polls of the database.
func (s *Store) DirectoryReads() int64 { return s.dirRun.loads.Load() }

type countingConnector struct {
	driver.Connector
	n *atomic.Int64
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{conn, c.n}, nil
}

// countingConn counts statements and forwards every optional interface the
// two drivers implement, so that database/sql treats it as it would them.
type countingConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c *countingConn) Prepare(q string) (driver.Stmt, error) {
	c.n.Add(1)
	return c.Conn.Prepare(q)
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.n.Add(1)
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, q)
	}
	return c.Conn.Prepare(q)
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.n.Add(1)
	return qc.QueryContext(ctx, q, args)
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	ec, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.n.Add(1)
	return ec.ExecContext(ctx, q, args)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return c.Conn.Begin()
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// ReloadDirectory reads the whole directory again, as the periodic reload
// does.
func (s *Store) ReloadDirectory(ctx context.Context) error {
	_, err := s.loadDirectory(ctx)
	return err
}

// PollDirectory polls the directory for the writes of the last back, by
// the database's clock.
func (s *Store) PollDirectory(ctx context.Context, back time.Duration) error {
	var now int64
	if err := s.read.QueryRowContext(ctx, s.dbNowSQL()).Scan(&now); err != nil {
		return err
	}
	_, err := s.pollDirectory(ctx, now-back.Microseconds())
	return err
}

// AfterDirectoryRead makes every later read of the directory call f between
// reading the database and installing what it read. Set it while no read
// runs (the refresh far off).
func (s *Store) AfterDirectoryRead(f func()) { s.dirRun.afterRead = f }
