package history

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress returns a backtest's Progress callback and the func that ends
// it. On a terminal it draws a bar of the period's simulated time, with
// the samples replayed and an ETA (github.com/schollz/progressbar); written
// anywhere else (a file, a pipe, CI logs) it prints nothing, so that logs
// stay clean.
func Progress(w io.Writer, label string, from, to time.Time) (progress func(done int64, at time.Time), finish func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || !from.Before(to) {
		return nil, func() {}
	}
	bar := progressbar.NewOptions64(int64(to.Sub(from)/time.Second),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return func(done int64, at time.Time) {
			if at.After(to) {
				at = to
			}
			if at.After(from) {
				_ = bar.Set64(int64(at.Sub(from) / time.Second))
			}
		}, func() {
			_ = bar.Finish()
		}
}
