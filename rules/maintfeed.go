package rules

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/proactivehq/proactive"
)

// MaintenanceSource gives the maintenance records stored after a sequence
// number; the devices store implements it.
type MaintenanceSource interface {
	// MaintenanceAfter returns at most limit records with an ID above
	// afterID, in increasing ID order; none when there are no newer ones.
	MaintenanceAfter(ctx context.Context, afterID int64, limit int) ([]proactive.Maintenance, error)
}

// MaintenanceAfterFunc adapts a function to MaintenanceSource.
type MaintenanceAfterFunc func(ctx context.Context, afterID int64, limit int) ([]proactive.Maintenance, error)

// MaintenanceAfter calls f.
func (f MaintenanceAfterFunc) MaintenanceAfter(ctx context.Context, afterID int64, limit int) ([]proactive.Maintenance, error) {
	return f(ctx, afterID, limit)
}

// FeedOptions configure a MaintenanceFeed. Zero fields get the defaults
// noted.
type FeedOptions struct {
	// Interval is how often the source is asked for new records, default 5s.
	Interval time.Duration
	// Limit is how many records one request asks for, default 1000; a full
	// page is followed at once by the next.
	Limit  int
	Logger *slog.Logger
}

// MaintenanceFeed follows a MaintenanceSource and hands new records to an
// engine, so that a running engine sees maintenance within seconds of its
// recording.
type MaintenanceFeed struct {
	src    MaintenanceSource
	engine *Engine
	opts   FeedOptions
	log    *slog.Logger
}

// NewMaintenanceFeed returns a feed from src into engine. It starts after
// the highest maintenance ID the engine holds (restored from a snapshot,
// say), 0 for all.
func NewMaintenanceFeed(src MaintenanceSource, engine *Engine, opts FeedOptions) *MaintenanceFeed {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Limit <= 0 {
		opts.Limit = 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &MaintenanceFeed{src: src, engine: engine, opts: opts, log: opts.Logger.With("component", "rules")}
}

// Run polls the source at once and then every Interval until ctx ends,
// and returns nil then. A failed request is logged and retried at the next
// interval: the feed resumes from the last record it handed on.
func (f *MaintenanceFeed) Run(ctx context.Context) error {
	after := f.engine.MaintenanceID()
	tick := time.NewTicker(f.opts.Interval)
	defer tick.Stop()
	for {
		after = f.poll(ctx, after)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// poll hands on every record after the given ID and returns the last ID.
func (f *MaintenanceFeed) poll(ctx context.Context, after int64) int64 {
	for ctx.Err() == nil {
		recs, err := f.src.MaintenanceAfter(ctx, after, f.opts.Limit)
		if err != nil {
			if ctx.Err() == nil {
				f.log.Warn("read maintenance", "after_id", after, "err", err)
			}
			return after
		}
		if len(recs) == 0 {
			return after
		}
		f.engine.ConsumeMaintenance(ctx, recs)
		for _, m := range recs {
			after = max(after, m.ID)
		}
		if len(recs) < f.opts.Limit {
			return after
		}
	}
	return after
}
