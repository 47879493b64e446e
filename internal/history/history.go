// Package history is what a backtest replays, read from where the platform
// keeps it: telemetry and device events from InfluxDB, maintenance records
// from the database or a file. `rules backtest` and `simulate score
// --from-influx` both read through it, so that they see events and
// maintenance exactly as the live engine does.
package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/rules"
)

// QueryTimeout bounds one query of a backtest: one chunk of history
// (rules.InfluxChunk), streamed.
const QueryTimeout = 10 * time.Minute

// Options says which history to read.
type Options struct {
	// From and To bound the telemetry and events read, [From, To).
	From, To time.Time
	// Device, when set, reads only that device's history.
	Device proactive.DeviceID
	// MaintenanceFile, when set, is a CSV file of maintenance records (the
	// format of `devices import --maintenance`) read instead of the
	// database's.
	MaintenanceFile string
}

// Source is the history of a backtest. Close releases its connection.
type Source struct {
	// Samples and Events stream the telemetry and device events of the
	// period from InfluxDB.
	Samples rules.SampleSource
	Events  rules.EventSource
	// Maintenance are the maintenance records, all of them (a replacement
	// before the period still resets a rule's windows), of Device when set.
	Maintenance []proactive.Maintenance
	// MaintenanceFrom says where Maintenance came from, for the command's
	// header line.
	MaintenanceFrom string
	tsdb            *influx.Store
}

// Open reads the maintenance records (from o.MaintenanceFile, else from the
// database cfg.DB) and connects to the configured InfluxDB for the
// telemetry and events. A SQLite database that does not exist has no
// records; one that cannot be read is an error, since a backtest without
// the replacements it should see would mislead.
func Open(ctx context.Context, cfg config.Config, o Options) (*Source, error) {
	ms, from, err := maintenance(ctx, cfg.DB.Reveal(), o.MaintenanceFile)
	if err != nil {
		return nil, err
	}
	if o.Device != "" {
		kept := ms[:0]
		for _, m := range ms {
			if m.Device == o.Device {
				kept = append(kept, m)
			}
		}
		ms = kept
	}
	tsdb := influx.New(influx.Options{
		URL: cfg.Influx.URL, Token: cfg.Influx.Token.Reveal(), Org: cfg.Influx.Org, Bucket: cfg.Influx.Bucket,
		Timeout: QueryTimeout,
	})
	return &Source{
		Samples:         rules.StoredSamples(tsdb, o.From, o.To, o.Device),
		Events:          rules.StoredEvents(tsdb, o.From, o.To, o.Device),
		Maintenance:     ms,
		MaintenanceFrom: fmt.Sprintf("%d maintenance record(s) from %s", len(ms), from),
		tsdb:            tsdb,
	}, nil
}

// Apply gives a backtest the source's events and maintenance.
func (s *Source) Apply(o *rules.BacktestOptions) {
	o.Events, o.Maintenance = s.Events, s.Maintenance
}

// Close closes the InfluxDB connection.
func (s *Source) Close() { s.tsdb.Close() }

// maintenance reads the records of file when given, else of the database at
// dsn, and says where they came from.
func maintenance(ctx context.Context, dsn, file string) ([]proactive.Maintenance, string, error) {
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, "", fmt.Errorf("--maintenance: %w", err)
		}
		defer f.Close()
		ms, err := devices.ReadMaintenance(f)
		if err != nil {
			return nil, "", fmt.Errorf("--maintenance %s: %s", file, proactive.ErrorMessage(err))
		}
		return ms, file, nil
	}
	if path, ok := devices.SQLiteFile(dsn); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, "nowhere (no database at " + path + ")", nil
		}
	}
	store, err := devices.Open(ctx, dsn)
	if err != nil {
		return nil, "", fmt.Errorf("maintenance records: open the database (db): %w; give --maintenance FILE to read them from a file", err)
	}
	defer store.Close()
	ms, err := rules.ReadMaintenance(ctx, store)
	if err != nil {
		return nil, "", fmt.Errorf("maintenance records: %w", err)
	}
	return ms, "the database", nil
}

// SaveBacktest stores each rule's summary of rep in the database at dsn,
// replacing the rule's previous one, for the rules page. It will not create
// a SQLite database: a backtest run away from the platform's data has
// nowhere to save.
func SaveBacktest(ctx context.Context, dsn string, rep *rules.BacktestReport, scored bool, runAt time.Time) error {
	if path, ok := devices.SQLiteFile(dsn); ok {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no database at %s (db): %w", path, err)
		}
	}
	var bs []devices.Backtest
	for _, r := range rep.Rules {
		b := devices.Backtest{Rule: r.Rule, RunAt: runAt.UTC(), From: rep.From.UTC(), To: rep.To.UTC(), Samples: rep.Samples,
			Fires: r.Fires, Devices: r.Devices, TicketsPerDay: r.TicketsPerDay, Scored: scored}
		if sc := r.Score; scored && sc != nil {
			b.Failures, b.Detected, b.MedianLead, b.FalseAlarms = sc.Failures, sc.Detected, sc.LeadMedian, sc.FalseAlerts
			if sc.Recall != nil {
				b.Recall = *sc.Recall
			}
		}
		raw, err := r.Summary()
		if err != nil {
			return fmt.Errorf("encode the report of %s: %w", r.Rule, err)
		}
		b.Report = raw
		bs = append(bs, b)
	}
	store, err := devices.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	defer store.Close()
	return store.SaveBacktest(ctx, bs...)
}
