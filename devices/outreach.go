package devices

import (
	"context"
	"database/sql"
)

// QueryContext runs a read-only query of the caller's outside any
// transaction, on the read pool (on SQLite it runs beside the writer). The
// notifier keeps its own tables in this database and reads them this way.
// Placeholders are $1, $2, ... in both dialects.
//
// Deprecated: removed once notify's conversation moves into devices.
func (s *Store) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.read.QueryContext(ctx, query, args...)
}

// QueryRowContext is QueryContext for a query of at most one row.
//
// Deprecated: removed once notify's conversation moves into devices.
func (s *Store) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return s.read.QueryRowContext(ctx, query, args...)
}
