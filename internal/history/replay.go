package history

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/rules"
)

// Replay runs set over the history o names as the engine would have
// (rules.Backtest with the history's events and maintenance records), and
// says on w, headed by label, what it read and how long it took; on a
// terminal w also shows a progress bar with an ETA (Progress).
func Replay(ctx context.Context, cfg config.Config, set *rules.RuleSet, o Options, bo rules.BacktestOptions, w io.Writer, label string) (*rules.BacktestReport, error) {
	src, err := Open(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	what := "all devices"
	if o.Device != "" {
		what = "device " + string(o.Device)
	}
	fmt.Fprintf(w, "%s: %d rule(s) over %s, %s to %s, from InfluxDB at %s bucket %s; %s\n", label, len(set.Rules()), what,
		o.From.UTC().Format(time.RFC3339), o.To.UTC().Format(time.RFC3339), config.RedactURL(cfg.Influx.URL), cfg.Influx.Bucket, src.MaintenanceFrom)
	src.Apply(&bo)
	progress, finish := Progress(w, label, o.From, o.To)
	bo.Progress = progress
	started := time.Now()
	rep, err := rules.Backtest(ctx, set, src.Samples, bo)
	finish()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "%s: %d samples from %d devices replayed in %s\n", label, rep.Samples, rep.Devices, time.Since(started).Round(time.Millisecond))
	return rep, nil
}
