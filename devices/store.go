package devices

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/proactivehq/proactive"
)

// Dialect names the SQL database behind a Store.
type Dialect string

// The dialects a Store speaks.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Options tune a Store. Zero fields get the defaults given on each.
type Options struct {
	// Now is the store's clock, time.Now by default. Times are stored in UTC
	// with microsecond precision, which both dialects keep exactly.
	Now func() time.Time
	// Logger receives the few errors that have no caller to return to (a
	// failed DeviceInfo lookup). Default: discard.
	Logger *slog.Logger
	// DirectoryRefresh is how often the device directory that DeviceInfo
	// answers from reads the devices other processes wrote or deleted,
	// default 5s. Writes through this Store are in it once they commit.
	DirectoryRefresh time.Duration
	// DirectoryReload is how often the directory is read in full instead,
	// default 10m: a safety net for what polling can miss (a transaction
	// of another process that commits long after it wrote).
	DirectoryReload time.Duration
	// SecretCacheTTL is how long a device secret that checked out is
	// accepted again without bcrypt, default 1m. Rotating or deleting the
	// secret through this Store ends it at once.
	SecretCacheTTL time.Duration
	// BcryptCost is the bcrypt cost for device secrets, default
	// DefaultBcryptCost (the minimum, 4: about 1 ms of one core per check;
	// see its comment for why a random secret needs no more).
	BcryptCost int
	// MaxOpenConns bounds the connections: the PostgreSQL pool, or the
	// SQLite read pool (SQLite writes always go through one connection).
	// Default 10.
	MaxOpenConns int
	// BusyTimeout is how long a SQLite statement waits for a lock held by
	// another process before failing, default 5s.
	BusyTimeout time.Duration
}

// Store is the registry and ticket store on SQLite or PostgreSQL. It is safe
// for concurrent use; Close releases it.
//
// On SQLite, writes go through a pool of one connection whose transactions
// begin IMMEDIATE (so a transaction that reads and then writes never fails
// with SQLITE_BUSY halfway), and reads through a separate query-only pool,
// which WAL mode lets run beside the writer. On PostgreSQL both are one pool.
type Store struct {
	conn // the typed methods, outside any transaction

	dialect Dialect
	db      *sql.DB // writes and transactions
	read    *sql.DB // plain reads; == db on PostgreSQL
	now     func() time.Time
	log     *slog.Logger
	cost    int

	dir        *directory // see DeviceInfo
	dirRun     dirRunner
	dirRefresh time.Duration
	dirReload  time.Duration
	secrets    *ttlCache[proactive.DeviceID, [32]byte]

	dummyOnce sync.Once
	dummy     []byte // see dummyHash

	// webhookWake gets a value when a committed transaction queued webhook
	// deliveries (see WebhookWake).
	webhookWake chan struct{}
	obsMu       sync.Mutex
	observers   []func(TicketMove) // see ObserveTransitions
}

// Open opens the store named by dsn with default Options; see OpenOptions.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenOptions(ctx, dsn, Options{})
}

// OpenOptions opens the store named by dsn and brings its schema up to date.
//
// A dsn starting with postgres:// or postgresql:// is a PostgreSQL connection
// URL (any pgx parameter, such as search_path or sslmode, may follow). Anything
// else is a SQLite database file: a path such as data/proactive.db, optionally
// prefixed with sqlite:// or file:; its directory is created if missing.
//
// Pending migrations are applied in one transaction. OpenOptions fails with
// ErrSchemaTooNew, and changes nothing, when the database has a migration this
// binary does not know.
func OpenOptions(ctx context.Context, dsn string, opt Options) (*Store, error) {
	return openStore(ctx, dsn, opt, nil)
}

// openStore is OpenOptions, with every connection wrapped by wrap if not
// nil (tests count queries so).
func openStore(ctx context.Context, dsn string, opt Options, wrap func(driver.Connector) driver.Connector) (*Store, error) {
	opt = opt.withDefaults()
	s := &Store{
		now:        opt.Now,
		log:        opt.Logger,
		cost:       opt.BcryptCost,
		dir:        newDirectory(),
		dirRefresh: opt.DirectoryRefresh,
		dirReload:  opt.DirectoryReload,
		secrets:    newTTLCache[proactive.DeviceID, [32]byte](opt.SecretCacheTTL, 100_000),

		webhookWake: make(chan struct{}, 1),
	}
	var err error
	s.dialect, s.db, s.read, err = openDB(dsn, opt, wrap)
	if err != nil {
		return nil, err
	}
	s.conn = conn{s: s, read: s.read, write: s.db}
	if err := s.db.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to %s database: %w", s.dialect, err)
	}
	if _, err := migrate(ctx, s.db, s.dialect, 0, s.clock()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.DirectoryRefresh <= 0 {
		o.DirectoryRefresh = 5 * time.Second
	}
	if o.DirectoryReload <= 0 {
		o.DirectoryReload = 10 * time.Minute
	}
	if o.SecretCacheTTL <= 0 {
		o.SecretCacheTTL = time.Minute
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = DefaultBcryptCost
	}
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 10
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	return o
}

// sqliteFunctions registers, once per process and before the first SQLite
// connection, the functions SQLite should compute as PostgreSQL does.
var sqliteFunctions sync.Once

// registerSQLiteFunctions replaces SQLite's lower(), which folds only ASCII
// letters, by Unicode case folding, so that a search of "öl" finds "ÖL" in
// SQLite as it does in PostgreSQL.
func registerSQLiteFunctions() {
	sqlite.MustRegisterDeterministicScalarFunction("lower", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return strings.ToLower(v), nil
		case []byte:
			return []byte(strings.ToLower(string(v))), nil
		default: // NULL and numbers, as SQLite's own lower() leaves them
			return v, nil
		}
	})
}

// openDB opens the write and read pools for dsn without touching the schema;
// wrap, if not nil, wraps their connectors.
func openDB(dsn string, opt Options, wrap func(driver.Connector) driver.Connector) (d Dialect, db, read *sql.DB, err error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			// The parse error may quote the DSN, password included.
			return "", nil, nil, errors.New("parse PostgreSQL URL: malformed (check host, port and parameters)")
		}
		var db *sql.DB
		if wrap != nil {
			db = sql.OpenDB(wrap(stdlib.GetConnector(*cfg)))
		} else {
			db = stdlib.OpenDB(*cfg)
		}
		db.SetMaxOpenConns(opt.MaxOpenConns)
		db.SetMaxIdleConns(opt.MaxOpenConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
		return Postgres, db, db, nil
	}
	path, query, err := sqlitePath(dsn)
	if err != nil {
		return "", nil, nil, err
	}
	sqliteFunctions.Do(registerSQLiteFunctions)
	if err := privateFile(path); err != nil {
		return "", nil, nil, err
	}
	common := url.Values{}
	for k, v := range query {
		common[k] = v
	}
	common.Set("_busy_timeout", fmt.Sprint(opt.BusyTimeout.Milliseconds()))
	common.Set("_foreign_keys", "1")
	common.Set("_time_format", "sqlite")

	w := cloneValues(common)
	w.Set("_journal_mode", "WAL")
	w.Set("_synchronous", "NORMAL")
	w.Set("_txlock", "immediate")
	db, err = openSQLite(path+"?"+w.Encode(), wrap)
	if err != nil {
		return "", nil, nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)

	r := cloneValues(common)
	r.Set("_query_only", "1")
	read, err = openSQLite(path+"?"+r.Encode(), wrap)
	if err != nil {
		db.Close()
		return "", nil, nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	read.SetMaxOpenConns(opt.MaxOpenConns)
	read.SetMaxIdleConns(opt.MaxOpenConns)
	return SQLite, db, read, nil
}

// privateFile creates the database file and its directory readable by the
// owner only (0600 and 0700), since the file holds token and device-secret
// hashes and customers' names, phones and addresses. SQLite gives the -wal
// and -shm files the mode of the database file, so they follow. A file that
// exists already loses its group and other bits; an existing directory is
// left as it is, as it may be shared on purpose.
func privateFile(path string) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create database directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	defer f.Close()
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			continue // no -wal or -shm yet
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(name, fi.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("make %s private: %w", name, err)
			}
		}
	}
	return nil
}

// sqlitePath splits a SQLite DSN into the file path and any extra driver
// parameters the caller gave.
func sqlitePath(dsn string) (string, url.Values, error) {
	p := dsn
	for _, prefix := range []string{"sqlite://", "sqlite:", "file:"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			p = rest
			break
		}
	}
	var q url.Values
	if path, raw, ok := strings.Cut(p, "?"); ok {
		var err error
		if q, err = url.ParseQuery(raw); err != nil {
			return "", nil, fmt.Errorf("sqlite DSN %q: bad parameters: %w", dsn, err)
		}
		p = path
	}
	// A plain name (not file:) reaches SQLite literally, its query removed.
	if p == "" || p == ":memory:" {
		return "", nil, fmt.Errorf("sqlite DSN %q: want a file path such as data/proactive.db", dsn)
	}
	return p, q, nil
}

// openSQLite opens a pool of SQLite connections, their connector wrapped by
// wrap if not nil.
func openSQLite(dsn string, wrap func(driver.Connector) driver.Connector) (*sql.DB, error) {
	if wrap == nil {
		return sql.Open("sqlite", dsn)
	}
	return sql.OpenDB(wrap(dsnConnector{dsn: dsn})), nil
}

// dsnConnector is what sql.Open makes of a SQLite DSN.
type dsnConnector struct{ dsn string }

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.Driver().Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return &sqlite.Driver{} }

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Close stops the directory's refresh and closes the database pools.
// In-flight calls may fail.
func (s *Store) Close() error {
	s.stopDirectory()
	err := s.db.Close()
	if s.read != s.db {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// Ping checks that the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, err)
	}
	return nil
}

// clock returns the store's time, in UTC, truncated to the microsecond that
// PostgreSQL keeps.
func (s *Store) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// dbTime normalises a caller's time for storage like clock does.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime is t for storage, or NULL when t is zero.
func nullTime(t time.Time) sql.NullTime {
	if t.IsZero() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: dbTime(t), Valid: true}
}

// fromNull returns the stored time in UTC, or zero for NULL.
func fromNull(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// Tx is a write transaction on the store, for callers that must change
// tickets and their own rows atomically (the notifier writes its outbox in
// the ticket's transaction). Get one from Store.WithTx; it is not safe for
// concurrent use and is dead once the function returns.
type Tx struct {
	conn // the typed methods, in this transaction

	s     *Store
	tx    *sql.Tx
	after []func() // run after a successful commit: cache invalidations
}

// WithTx runs fn in a write transaction and commits it if fn returns nil, or
// rolls it back and returns fn's error. On SQLite the transaction holds the
// database's write lock from its start: keep fn short, and do no I/O of other
// kinds in it. Do not call Store methods from fn: use the Tx's.
func (s *Store) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := &Tx{s: s, tx: sqlTx}
	tx.conn = conn{s: s, read: sqlTx, write: sqlTx, tx: tx}
	committed := false
	defer func() {
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	for _, f := range tx.after {
		f()
	}
	return nil
}

// onCommit registers f to run once the transaction has committed.
func (tx *Tx) onCommit(f func()) { tx.after = append(tx.after, f) }

// conn runs the typed methods that Store and Tx share, each defined once:
// Store's conn reads on the read pool and writes on the write pool, a Tx's
// does both in its transaction. An operation of several statements runs
// them through inTx, which opens a transaction only when not already in one.
type conn struct {
	s     *Store
	read  querier // plain reads
	write querier // single-statement writes
	tx    *Tx     // nil outside a transaction
}

// inTx runs fn in c's transaction, or in a new one outside any.
func (c *conn) inTx(ctx context.Context, fn func(tx *Tx) error) error {
	if c.tx != nil {
		return fn(c.tx)
	}
	return c.s.WithTx(ctx, fn)
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// isUniqueViolation reports whether err is a unique or primary key violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKeyViolation reports whether err is a foreign key violation.
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// canonicalJSON returns raw re-encoded compactly with object keys sorted, so
// that both dialects give back byte-identical documents (PostgreSQL's jsonb
// reorders keys and adds spaces). Numbers keep their text.
func canonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// mustCanonical canonicalises JSON read back from the database, which was
// valid when written.
func mustCanonical(raw []byte) json.RawMessage {
	c, err := canonicalJSON(raw)
	if err != nil {
		return json.RawMessage(raw)
	}
	return c
}

// notFound returns an ENotFound error for a thing with an id.
func notFound(what string, id any) error {
	return proactive.Errorf(proactive.ENotFound, "%s %v not found", what, id)
}
