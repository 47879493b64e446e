package history

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
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

// On a terminal, Progress draws a bar with the period's share done and an
// estimate of the time left.
func TestProgressOnTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(ptmx) // until tty closes
		out <- string(b)
	}()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	progress, finish := Progress(tty, "backtest", from, from.Add(10*24*time.Hour))
	if progress == nil {
		t.Fatal("no progress on a terminal")
	}
	progress(1000, from.Add(5*24*time.Hour)) // half the period
	finish()
	tty.Close()
	got := <-out
	if !strings.Contains(got, "backtest") || !strings.Contains(got, "50%") {
		t.Errorf("terminal got %q, want the label and 50%%", got)
	}
}
