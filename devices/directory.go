package devices

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proactivehq/proactive"
)

// The device directory is every registered device's model and installation
// day, held in memory so that DeviceInfo, which the ingester and the rule
// engine call for every message, never reads the database: an unknown id is
// an unregistered device, at no cost. It is loaded in one query on first use
// (or by LoadDirectory). Writes through this Store update it when they
// commit; writes by other processes (another instance, the import CLI) are
// read every Options.DirectoryRefresh by polling the rows whose changed_us
// stamp (set by triggers, by the database's clock) or tombstone in
// device_deletions is recent, and a full reload every
// Options.DirectoryReload repairs whatever polling could miss.

const (
	// directoryOverlap is how far back each poll reads before the previous
	// one: a row is stamped when written but visible only once its
	// transaction commits, and another process's transaction may commit
	// after a poll that read newer stamps. Longer transactions are caught
	// by the periodic full reload.
	directoryOverlap = 30 * time.Second
	// directoryTimeout bounds one load or poll.
	directoryTimeout = time.Minute
	// noInstall is a dirEntry's installed day when the date is unknown.
	noInstall = math.MinInt32
)

// dirEntry is what the directory keeps per device: 8 bytes, the model being
// one of few strings shared by many devices.
type dirEntry struct {
	model     uint32 // index in directory.models
	installed int32  // days since 1970-01-01 UTC, or noInstall
}

// directory is the in-memory map. Its own methods only touch memory; the
// Store's methods below read the database.
type directory struct {
	mu      sync.RWMutex
	devices map[string]dirEntry
	models  []string
	modelIx map[string]uint32
	// reading is set while a load or poll reads the database. The commits
	// through this Store meanwhile record their ids in touched: the read may
	// predate them, so it must not overwrite what they set.
	reading bool
	touched map[string]struct{}

	loaded atomic.Bool // once the first load succeeded
	// loadedCh is closed with the first successful load.
	loadedCh   chan struct{}
	loadedOnce sync.Once
}

func newDirectory() *directory {
	return &directory{devices: map[string]dirEntry{}, modelIx: map[string]uint32{}, touched: map[string]struct{}{}, loadedCh: make(chan struct{})}
}

// intern returns model's index in d.models, adding it if new. d.mu is held
// for writing.
func (d *directory) intern(model string) uint32 {
	if i, ok := d.modelIx[model]; ok {
		return i
	}
	i := uint32(len(d.models))
	d.models = append(d.models, model)
	d.modelIx[model] = i
	return i
}

// installedDay converts an installation date to a dirEntry day.
func installedDay(t time.Time) int32 {
	if t.IsZero() {
		return noInstall
	}
	return int32(t.Unix() / 86400)
}

// put records a device written by a commit through this Store.
func (d *directory) put(id proactive.DeviceID, model string, installed time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.loaded.Load() && !d.reading {
		return // the first load will read it
	}
	d.devices[string(id)] = dirEntry{model: d.intern(model), installed: installedDay(installed)}
	if d.reading {
		d.touched[string(id)] = struct{}{}
	}
}

// remove forgets a device deleted by a commit through this Store.
func (d *directory) remove(id proactive.DeviceID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.devices, string(id))
	if d.reading {
		d.touched[string(id)] = struct{}{}
	}
}

// lookup returns a device's model and installation day.
func (d *directory) lookup(id proactive.DeviceID) (model string, installed int32, ok bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.devices[string(id)]
	if !ok {
		return "", 0, false
	}
	return d.models[e.model], e.installed, true
}

// len returns the number of devices in the directory.
func (d *directory) len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.devices)
}

func (d *directory) beginRead() {
	d.mu.Lock()
	d.reading = true
	d.mu.Unlock()
}

// endRead ends a read that failed. d.mu is not held.
func (d *directory) endRead() {
	d.mu.Lock()
	d.endReadLocked()
	d.mu.Unlock()
}

func (d *directory) endReadLocked() {
	d.reading = false
	clear(d.touched)
}

// replace installs a full load, keeping what commits set during it.
func (d *directory) replace(devices map[string]dirEntry, models []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, oldModels := d.devices, d.models
	d.devices, d.models = devices, models
	d.modelIx = make(map[string]uint32, len(models))
	for i, m := range models {
		d.modelIx[m] = uint32(i)
	}
	for id := range d.touched {
		if e, ok := old[id]; ok {
			d.devices[id] = dirEntry{model: d.intern(oldModels[e.model]), installed: e.installed}
		} else {
			delete(d.devices, id)
		}
	}
	d.endReadLocked()
	d.loaded.Store(true)
	d.loadedOnce.Do(func() { close(d.loadedCh) })
}

// dirChange is a device's current state as a poll read it; gone when it has
// been deleted.
type dirChange struct {
	id        string
	model     string
	installed int32
	gone      bool
}

// apply installs a poll's changes, but for devices that commits through
// this Store wrote during the poll.
func (d *directory) apply(changes []dirChange) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range changes {
		if _, ok := d.touched[c.id]; ok {
			continue
		}
		if c.gone {
			delete(d.devices, c.id)
		} else {
			d.devices[c.id] = dirEntry{model: d.intern(c.model), installed: c.installed}
		}
	}
	d.endReadLocked()
}

// dirRunner is the refresh goroutine's state.
type dirRunner struct {
	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when the goroutine has returned
	ready   chan struct{} // closed once the first load has been tried
	loads   atomic.Int64  // database reads of the directory, for tests
	// afterRead, if set (by tests), runs between a read of the database
	// and its installation.
	afterRead func()
}

// LoadDirectory loads the device directory and starts keeping it fresh, if
// DeviceInfo has not done so yet, and waits for the first load. A failure is
// returned but not final: the load is retried every DirectoryRefresh.
func (s *Store) LoadDirectory(ctx context.Context) error {
	ready := s.startDirectory()
	select {
	case <-ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if !s.dir.loaded.Load() {
		return fmt.Errorf("load device directory: failed (see the log); retrying every %v", s.dirRefresh)
	}
	return nil
}

// WaitDirectory waits until the directory has been loaded (the refresh
// retries a failed load every DirectoryRefresh) or ctx ends. serve waits
// for it before taking messages: until then every device would count as
// unknown.
func (s *Store) WaitDirectory(ctx context.Context) error {
	s.startDirectory()
	select {
	case <-s.dir.loadedCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DirectorySize returns the number of devices in the directory, 0 before
// its first load: for a gauge.
func (s *Store) DirectorySize() int { return s.dir.len() }

// startDirectory starts the refresh goroutine once, unless the Store is
// closed, and returns a channel closed once the first load has been tried.
func (s *Store) startDirectory() <-chan struct{} {
	r := &s.dirRun
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed && !r.started {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if !r.started {
		r.started = true
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel, r.done, r.ready = cancel, make(chan struct{}), make(chan struct{})
		go s.runDirectory(ctx, r.ready, r.done)
	}
	return r.ready
}

// stopDirectory stops the refresh goroutine and waits for it.
func (s *Store) stopDirectory() {
	r := &s.dirRun
	r.mu.Lock()
	r.closed = true
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// runDirectory loads the directory, then polls it every DirectoryRefresh
// and reloads it every DirectoryReload, until ctx ends. Errors are logged;
// the directory keeps its last good state and the next tick retries.
func (s *Store) runDirectory(ctx context.Context, ready, done chan struct{}) {
	defer close(done)
	since, err := s.loadDirectory(ctx)
	close(ready)
	lastLoad := time.Now()
	failing := err != nil && ctx.Err() == nil
	if failing {
		s.log.Error("device directory: load failed; retrying", "err", err, "retry", s.dirRefresh)
	}
	t := time.NewTicker(s.dirRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.dir.loaded.Load() || time.Since(lastLoad) >= s.dirReload {
			var next int64
			if next, err = s.loadDirectory(ctx); err == nil {
				since = next
			}
			if err == nil || s.dir.loaded.Load() {
				// A failed reload of a loaded directory is tried again a
				// reload interval later; the polls go on meanwhile.
				lastLoad = time.Now()
			}
		} else {
			var next int64
			if next, err = s.pollDirectory(ctx, since); err == nil {
				since = next
			}
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Once a streak: a database outage would log every tick.
			failing = true
			s.log.Error("device directory: refresh failed; serving the last good state until it succeeds", "err", err, "retry", s.dirRefresh)
		case err != nil && ctx.Err() == nil:
			s.log.Debug("device directory: refresh failed again", "err", err)
		case err == nil && failing:
			failing = false
			s.log.Info("device directory: refresh works again")
		}
	}
}

// dbNowSQL reads the database's clock in the unit of changed_us (see
// migration 0015).
func (s *Store) dbNowSQL() string {
	if s.dialect == Postgres {
		return `SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint`
	}
	return `SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)`
}

// installedDaysSQL is the installed_on column of table alias t as days since
// 1970, NULL when unknown: cheaper than scanning a time per device.
func (s *Store) installedDaysSQL(t string) string {
	if s.dialect == Postgres {
		return t + `.installed_on - DATE '1970-01-01'`
	}
	return `CAST(julianday(` + t + `.installed_on) - 2440587.5 AS INTEGER)`
}

// directoryRead runs read, a load or a poll named by what, as one
// directory read (see beginRead) within directoryTimeout, then installs
// what it read. It returns the stamp from which the next poll reads: the
// database's clock before the read, less directoryOverlap.
func (s *Store) directoryRead(ctx context.Context, what string, read func(context.Context) (install func(), err error)) (since int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, directoryTimeout)
	defer cancel()
	s.dirRun.loads.Add(1)
	s.dir.beginRead()
	defer func() {
		if err != nil {
			s.dir.endRead()
		}
	}()
	var now int64
	if err := s.read.QueryRowContext(ctx, s.dbNowSQL()).Scan(&now); err != nil {
		return 0, fmt.Errorf("%s device directory: read the database clock: %w", what, err)
	}
	install, err := read(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s device directory: %w", what, err)
	}
	if f := s.dirRun.afterRead; f != nil {
		f()
	}
	install()
	return now - directoryOverlap.Microseconds(), nil
}

// loadDirectory reads every device into a new map and installs it.
func (s *Store) loadDirectory(ctx context.Context) (since int64, err error) {
	return s.directoryRead(ctx, "load", func(ctx context.Context) (func(), error) {
		devices := make(map[string]dirEntry, s.dir.len())
		var models []string
		modelIx := map[string]uint32{}
		rows, err := s.read.QueryContext(ctx, `SELECT d.id, d.model, `+s.installedDaysSQL("d")+` FROM devices d`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var id string
		var model sql.RawBytes
		var days sql.NullInt64
		for rows.Next() {
			if err := rows.Scan(&id, &model, &days); err != nil {
				return nil, err
			}
			i, ok := modelIx[string(model)] // no allocation for the lookup
			if !ok {
				i = uint32(len(models))
				models = append(models, string(model))
				modelIx[models[i]] = i
			}
			e := dirEntry{model: i, installed: noInstall}
			if days.Valid {
				e.installed = int32(days.Int64)
			}
			devices[id] = e
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return func() { s.dir.replace(devices, models) }, nil
	})
}

// pollDirectory applies the devices written or deleted since the stamp
// since. One statement reads both, in one snapshot; a tombstone is joined
// to the devices table so that a device deleted and registered again is
// read as it is now.
func (s *Store) pollDirectory(ctx context.Context, since int64) (next int64, err error) {
	return s.directoryRead(ctx, "poll", func(ctx context.Context) (func(), error) {
		rows, err := s.read.QueryContext(ctx, `SELECT d.id, d.model, `+s.installedDaysSQL("d")+` FROM devices d WHERE d.changed_us > $1
		UNION ALL
		SELECT t.device_id, d.model, `+s.installedDaysSQL("d")+` FROM device_deletions t LEFT JOIN devices d ON d.id = t.device_id
		WHERE t.deleted_us > $1`, since)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var changes []dirChange
		for rows.Next() {
			var c dirChange
			var model sql.NullString
			var days sql.NullInt64
			if err := rows.Scan(&c.id, &model, &days); err != nil {
				return nil, err
			}
			c.model, c.gone, c.installed = model.String, !model.Valid, noInstall
			if days.Valid {
				c.installed = int32(days.Int64)
			}
			changes = append(changes, c)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return func() { s.dir.apply(changes) }, nil
	})
}

// DeviceInfo returns what the rule engine reads of a device: its model and
// its age in days since installation (NaN when the installation date is
// unknown). ok is false for a device the registry does not know. It answers
// from the device directory, without reading the database; its first call
// waits for the directory's first load, and until a load succeeds (failures
// are logged and retried) every device is unknown. It fits
// rules.DeviceFunc with a small adapter.
func (s *Store) DeviceInfo(id proactive.DeviceID) (model string, ageDays float64, ok bool) {
	if !s.dir.loaded.Load() {
		<-s.startDirectory()
	}
	model, day, ok := s.dir.lookup(id)
	switch {
	case !ok:
		return "", math.NaN(), false
	case day == noInstall:
		return model, math.NaN(), true
	}
	return model, s.now().Sub(time.Unix(int64(day)*86400, 0)).Hours() / 24, true
}
