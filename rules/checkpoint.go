package rules

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
)

// CheckpointOptions configure a Checkpoint. Zero fields get defaults.
type CheckpointOptions struct {
	// Path is the snapshot file; empty keeps no snapshot, and Restore then
	// rebuilds from History alone.
	Path string
	// Interval is the time between two snapshots of Run (default 5m).
	Interval time.Duration
	// History is the stored telemetry Restore replays: the gap since the
	// snapshot, or everything the rules need without one.
	History History
	// RebuildTimeout bounds Restore (default 2m).
	RebuildTimeout time.Duration
	// Stopped, when set, is closed once the engine's Run has returned. Run
	// takes its shutdown snapshot only then: an engine that did not drain
	// may not hold every sample it was given.
	Stopped <-chan struct{}
	// Partitions, when set, keeps the engine's devices instead (Kafka):
	// Restore then restores nothing, each partition's devices coming on
	// its assignment, and Run snapshots each owned partition.
	Partitions *Partitions
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Checkpoint keeps an engine's windows and alert states across restarts: it
// restores them at start from the snapshot file plus the gap since, and
// writes the file periodically and once more at shutdown.
type Checkpoint struct {
	engine *Engine
	o      CheckpointOptions
	log    *slog.Logger
}

// NewCheckpoint returns the checkpoint of engine.
func NewCheckpoint(engine *Engine, o CheckpointOptions) *Checkpoint {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.RebuildTimeout <= 0 {
		o.RebuildTimeout = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checkpoint{engine: engine, o: o, log: log}
}

// Enabled reports whether Run keeps a snapshot: there is a path and rules
// with windows to keep.
func (c *Checkpoint) Enabled() bool { return c.o.Path != "" && c.engine.Lookback() > 0 }

// Restore restores the rule windows and alert states before the engine
// runs, so that a restart forgets no window and fires nothing twice: from
// the snapshot plus the gap since replayed from History, or, without a
// usable snapshot, from History alone. A failure (InfluxDB down, the
// database missing) is not fatal: the rules then start from what they have, which
// the log says.
func (c *Checkpoint) Restore(ctx context.Context) {
	if c.engine.Lookback() <= 0 || c.o.Partitions != nil {
		return // no rules
	}
	start := c.o.Now()
	took := func() time.Duration { return c.o.Now().Sub(start).Round(time.Millisecond) }
	rctx, cancel := context.WithTimeout(ctx, c.o.RebuildTimeout)
	defer cancel()
	if path := c.o.Path; path != "" {
		info, err := c.load()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.log.Info("no rule snapshot yet; rebuilding the rule windows from influxdb", "path", path)
		case err != nil:
			c.log.Warn("rule snapshot not used; rebuilding the rule windows from influxdb", "path", path, "err", err)
		default:
			rep, err := c.engine.RebuildSince(rctx, c.o.History, info, start)
			attrs := []any{"path", path, "devices", info.Devices, "windows", info.Windows, "alerts", info.Alerts,
				"bytes", info.Bytes, "snapshot_time", info.Time, "age", start.Sub(info.Time).Round(time.Second),
				"gap_from", rep.From, "gap", rep.Tail.Round(time.Second), "gap_samples", rep.Samples, "new_windows", info.Missing,
				"dropped_windows", info.Skipped, "took", took()}
			switch {
			case err != nil:
				c.log.Warn("rule windows restored from the snapshot, but the gap not fully replayed; alerts restart from what was loaded",
					append(attrs, "err", err)...)
			case errors.Is(rep.Fallback, ErrSnapshotStale):
				c.log.Info("rule snapshot set aside; rule windows rebuilt from influxdb", "path", path, "aggregated", rep.Aggregated,
					"buckets", rep.Buckets, "samples", rep.Samples, "why", rep.Fallback, "took", took())
			default:
				c.log.Info("rule windows restored from the snapshot", append(attrs, "fallback", rep.Fallback)...)
			}
			return
		}
	}
	rep, err := c.engine.RebuildHistory(rctx, c.o.History, start)
	if err != nil {
		c.log.Warn("rule windows not fully rebuilt from influxdb; alerts restart from what was loaded",
			"aggregated", rep.Aggregated, "buckets", rep.Buckets, "samples", rep.Samples, "from", rep.From, "err", err)
		return
	}
	c.log.Info("rule windows rebuilt from influxdb", "aggregated", rep.Aggregated, "buckets", rep.Buckets, "samples", rep.Samples,
		"from", rep.From, "tail", rep.Tail, "fallback", rep.Fallback, "took", took())
}

// load reads the snapshot file into the engine.
func (c *Checkpoint) load() (SnapshotInfo, error) {
	f, err := os.Open(c.o.Path)
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer f.Close()
	return c.engine.Restore(f)
}

// Save writes the engine's snapshot to the file atomically (renameio: a
// temporary file beside it, synced, renamed over it), so that a crash
// leaves the previous snapshot or the new one, never half of one.
func (c *Checkpoint) Save() (SnapshotInfo, error) {
	return saveSnapshot("rule snapshot", c.o.Path, c.engine.Snapshot)
}

// saveSnapshot writes what write gives to path atomically: a temporary
// file beside it, synced, renamed over it.
func saveSnapshot(what, path string, write func(io.Writer) (SnapshotInfo, error)) (SnapshotInfo, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return SnapshotInfo{}, fmt.Errorf("%s: %w", what, err)
	}
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithPermissions(0o600))
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Cleanup() // after a successful rename, nothing to remove
	w := bufio.NewWriterSize(f, 1<<20)
	info, err := write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.CloseAtomicallyReplace()
	}
	if err != nil {
		return info, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return info, nil
}

// Run writes the snapshot every Interval until ctx ends, then once more and
// returns that last write's error. The engine should have stopped by then
// (stop it first), so that the last snapshot holds every sample it took. A
// periodic write that fails is logged; the previous snapshot stays. Without
// Enabled, Run only waits for ctx.
func (c *Checkpoint) Run(ctx context.Context) error {
	if c.o.Partitions != nil {
		return c.o.Partitions.Run(ctx)
	}
	if !c.Enabled() {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(c.o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if c.o.Stopped != nil {
				select {
				case <-c.o.Stopped:
				default:
					c.log.Warn("rule snapshot not written at shutdown: the rules did not stop; the previous one stays", "path", c.o.Path)
					return nil
				}
			}
			start := c.o.Now()
			info, err := c.Save()
			if err != nil {
				return err
			}
			c.log.Info("rule snapshot written", "path", c.o.Path, "devices", info.Devices, "windows", info.Windows,
				"alerts", info.Alerts, "bytes", info.Bytes, "snapshot_time", info.Time, "took", c.o.Now().Sub(start).Round(time.Millisecond))
			return nil
		case <-tick.C:
			start := c.o.Now()
			info, err := c.Save()
			if err != nil {
				c.log.Warn("rule snapshot not written; the previous one stays", "err", err)
				continue
			}
			c.log.Debug("rule snapshot written", "path", c.o.Path, "devices", info.Devices, "bytes", info.Bytes,
				"took", c.o.Now().Sub(start).Round(time.Millisecond))
		}
	}
}
