package devices_test

import (
	"testing"

	"github.com/proactivehq/proactive/devices"
)

func TestSQLiteFile(t *testing.T) {
	for _, c := range []struct {
		dsn, path string
		ok        bool
	}{
		{"data/proactive.db", "data/proactive.db", true},
		{"sqlite:///var/lib/p.db", "/var/lib/p.db", true},
		{"sqlite:p.db?_pragma=busy_timeout(5000)", "p.db", true},
		{"file:p.db?mode=rwc", "p.db", true},
		{"postgres://u@127.0.0.1/p", "", false},
		{"postgresql://u@127.0.0.1/p?sslmode=disable", "", false},
	} {
		path, ok := devices.SQLiteFile(c.dsn)
		if path != c.path || ok != c.ok || devices.IsPostgres(c.dsn) == c.ok {
			t.Errorf("SQLiteFile(%q) = %q, %v; want %q, %v", c.dsn, path, ok, c.path, c.ok)
		}
	}
}
