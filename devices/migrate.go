package devices

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrSchemaTooNew is returned by Open when the database holds a migration
// newer than any this binary knows: a newer proactive has upgraded it, and
// this one would misread it. Run the newer binary, or restore a backup.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema change, in the SQL of one dialect.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in order. A file is named
// NNNN_name.sql when its SQL is portable, or NNNN_name.sqlite.sql and
// NNNN_name.postgres.sql when the dialects differ; every version must exist
// for both dialects, under the same name.
func migrations(d Dialect) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]migration{}
	for _, e := range entries {
		file := e.Name()
		base := strings.TrimSuffix(file, ".sql")
		if dot := strings.IndexByte(base, '.'); dot >= 0 {
			if Dialect(base[dot+1:]) != d {
				continue
			}
			base = base[:dot]
		} else if _, ok := byVersion[versionOf(base)]; ok {
			continue // a dialect variant wins over the portable file
		}
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name[.dialect].sql", file)
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", file))
		if err != nil {
			return nil, err
		}
		byVersion[v] = migration{version: v, name: name, sql: string(b)}
	}
	out := make([]migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("%s migrations: version %d missing", d, i+1)
		}
	}
	return out, nil
}

func versionOf(base string) int {
	num, _, _ := strings.Cut(base, "_")
	v, _ := strconv.Atoi(num)
	return v
}

// LatestSchemaVersion is the newest migration this binary knows.
func LatestSchemaVersion() int {
	m, err := migrations(SQLite)
	if err != nil || len(m) == 0 {
		return 0
	}
	return m[len(m)-1].version
}

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.read.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// migrationLock is the PostgreSQL advisory lock key that serialises
// migrations of one database by several processes starting at once.
const migrationLock = 0x70726f616374 // "proact"

const (
	createMigrationsSQLite = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMP NOT NULL
)`
	createMigrationsPostgres = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL
)`
)

// migrate applies the pending migrations up to target (0: all) in one
// transaction and returns the versions it applied. It refuses a database
// whose schema is newer than the newest migration known.
func migrate(ctx context.Context, db *sql.DB, d Dialect, target int, now time.Time) ([]int, error) {
	all, err := migrations(d)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	latest := all[len(all)-1].version
	if target <= 0 || target > latest {
		target = latest
	}
	// One connection for the whole migration: on SQLite, foreign keys are
	// turned off on it so that a migration can rebuild a table that others
	// reference (the only way to change a constraint there), and checked
	// before the commit instead.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	if d == SQLite {
		if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
			return nil, fmt.Errorf("migrate: foreign keys off: %w", err)
		}
		defer func() {
			if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); err != nil {
				// A pooled connection without foreign keys must not serve
				// anyone: drop it.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil) // on SQLite: BEGIN IMMEDIATE, the write lock
	if err != nil {
		return nil, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback()
	create := createMigrationsSQLite
	if d == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return nil, fmt.Errorf("migrate: lock: %w", err)
		}
		create = createMigrationsPostgres
	}
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var cur sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&cur); err != nil {
		return nil, fmt.Errorf("migrate: read version: %w", err)
	}
	if int(cur.Int64) > latest {
		return nil, fmt.Errorf("%w: the database is at schema version %d, this binary knows up to %d; run a newer proactive",
			ErrSchemaTooNew, cur.Int64, latest)
	}
	var applied []int
	for _, m := range all {
		if m.version <= int(cur.Int64) || m.version > target {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, now); err != nil {
			return nil, fmt.Errorf("record migration %04d_%s: %w", m.version, m.name, err)
		}
		applied = append(applied, m.version)
	}
	if d == SQLite && len(applied) > 0 {
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("migrate: commit: %w", err)
	}
	return applied, nil
}

// foreignKeyCheck fails when a row references a missing one: what SQLite
// would have refused had foreign keys been on during the migrations.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("migrate: foreign key check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return fmt.Errorf("migrate: foreign key check: %w", err)
		}
		return fmt.Errorf("migrate: row %d of %s references a missing %s row", rowid.Int64, table, parent)
	}
	return rows.Err()
}
