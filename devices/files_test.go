package devices_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/proactivehq/proactive/devices"
)

// The SQLite file holds token and secret hashes and customers' contact
// details: it, its -wal and -shm files and a directory created for it are
// the owner's alone, whatever the umask.
func TestSQLiteFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "proactive.db")
	s := mustOpen(t, path)
	// A write, so that the -wal and -shm files exist.
	mustCustomer(t, s, "c1", "+15550001111")

	want := map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600}
	for name, mode := range want {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %o, want %o", filepath.Base(name), got, mode)
		}
	}
	s.Close()

	// A database created 0644 by an earlier version is tightened on open.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := devices.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("reopened database: %v, %v; want mode 600", fi.Mode().Perm(), err)
	}
}
