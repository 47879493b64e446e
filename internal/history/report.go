package history

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/web"
)

// DeviceSamples streams one device's telemetry in [from, to) from
// InfluxDB, in time order, whatever the period the source was opened for:
// what the report shows around a missed failure.
func (s *Source) DeviceSamples(ctx context.Context, device proactive.DeviceID, from, to time.Time, fn func(proactive.Sample) error) error {
	return s.tsdb.Samples(ctx, from, to, device, fn)
}

// checkReport tells up front, before a long backtest, whether the report
// could be written at path: its directory must exist.
func checkReport(path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("--report %s: %w", path, err)
	} else if !st.IsDir() {
		return fmt.Errorf("--report %s: %s is not a directory", path, dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("--report %s is a directory", path)
	}
	return nil
}

// WriteReport writes rep as the self-contained HTML page of `rules
// backtest --report` to the file of ho.Report (nothing without one), with
// the telemetry around each missed failure read from the history ho names.
func WriteReport(ctx context.Context, cfg config.Config, ho Options, rep *rules.BacktestReport, o rules.BacktestOptions, w io.Writer) error {
	if ho.Report == "" {
		return nil
	}
	src, err := Open(ctx, cfg, ho)
	if err != nil {
		return err
	}
	defer src.Close()
	return src.WriteReport(ctx, rep, o, w)
}

// WriteReport writes rep as the self-contained HTML page of `rules
// backtest --report` (web.WriteBacktestReport) to the file of
// Options.Report, scored as o says, with the telemetry around each missed
// failure read from InfluxDB, and says so on w. Without Options.Report it
// does nothing. The file is replaced whole or not at all.
func (s *Source) WriteReport(ctx context.Context, rep *rules.BacktestReport, o rules.BacktestOptions, w io.Writer) error {
	if s.report == "" {
		return nil
	}
	var b bytes.Buffer
	err := web.WriteBacktestReport(ctx, &b, rep, web.BacktestReportOptions{Horizon: o.Horizon, MinLead: o.MinLead,
		Samples: s.DeviceSamples, Generated: time.Now()})
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := renameio.WriteFile(s.report, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	fmt.Fprintf(w, "backtest: report written to %s (%d KiB)\n", s.report, (b.Len()+1023)/1024)
	return nil
}
