package devices

import "strings"

// IsPostgres reports whether dsn names a PostgreSQL database (a postgres://
// or postgresql:// URL); Open takes any other dsn for a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// SQLiteFile returns the file of a SQLite dsn: the dsn without its sqlite://,
// sqlite: or file: prefix and its ?parameters. ok is false for a PostgreSQL
// dsn, which names no file.
func SQLiteFile(dsn string) (path string, ok bool) {
	if IsPostgres(dsn) {
		return "", false
	}
	path = dsn
	for _, prefix := range []string{"sqlite://", "sqlite:", "file:"} {
		if rest, found := strings.CutPrefix(path, prefix); found {
			path = rest
			break
		}
	}
	path, _, _ = strings.Cut(path, "?")
	return path, true
}
