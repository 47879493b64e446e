package history

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Progress draws nothing where nobody watches: a buffer, a file.
func TestProgressSilentOffTerminal(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, w := range []interface{ Write([]byte) (int, error) }{&buf, f} {
		progress, finish := Progress(w, "backtest", from, from.Add(24*time.Hour))
		if progress != nil {
			progress(10, from.Add(time.Hour))
		}
		finish()
	}
	st, _ := f.Stat()
	if buf.Len() != 0 || st.Size() != 0 {
		t.Errorf("progress wrote %q and %d bytes to a file", buf.String(), st.Size())
	}
}
