package rules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/proactivehq/proactive"
)

// Sync returns once the shards have evaluated every batch handed to them
// before the call, or with ctx's error. The engine must be running. Kafka's
// consumer calls it before it commits offsets: a committed record has been
// evaluated, not only stored.
func (e *Engine) Sync(ctx context.Context) error {
	dones := make([]chan struct{}, len(e.shards))
	for i, sh := range e.shards {
		dones[i] = make(chan struct{})
		select {
		case sh.in <- batch{done: dones[i]}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, d := range dones {
		select {
		case <-d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// DropDevices forgets the devices keep selects (their windows, alert states
// and events) and returns how many: another instance now evaluates them.
func (e *Engine) DropDevices(keep func(proactive.DeviceID) bool) int {
	n := 0
	for _, sh := range e.shards {
		sh.mu.Lock()
		for id := range sh.ev.devices {
			if keep(id) {
				delete(sh.ev.devices, id)
				n++
			}
		}
		sh.mu.Unlock()
	}
	if n > 0 {
		e.rebuildFleet()
	}
	return n
}

// scratch returns an engine with e's rules and options that does not run:
// a partition's devices are restored into it, away from the devices e
// evaluates meanwhile, and then adopted.
func (e *Engine) scratch() *Engine {
	e.mu.Lock()
	set := e.set
	e.mu.Unlock()
	s := New(Options{Device: e.opts.Device, LateTolerance: e.opts.LateTolerance, Shards: 1, Now: e.opts.Now, Logger: e.opts.Logger})
	s.set = set
	for _, sh := range s.shards {
		sh.ev.setRules(set)
	}
	return s
}

// adopt moves the devices of s that keep selects into e, replacing any e
// holds under the same ids, and returns how many.
func (e *Engine) adopt(s *Engine, keep func(proactive.DeviceID) bool) int {
	n := 0
	for _, from := range s.shards {
		for id, d := range from.ev.devices {
			if !keep(id) {
				continue
			}
			sh := e.shards[e.shardOf(id)]
			sh.mu.Lock()
			sh.ev.devices[sh.ev.intern(id)] = d
			sh.mu.Unlock()
			n++
		}
	}
	if n > 0 {
		e.rebuildFleet()
	}
	return n
}

// firingSince returns the firing alerts of the devices keep selects that
// fired after since.
func (e *Engine) firingSince(keep func(proactive.DeviceID) bool, since time.Time) []proactive.Alert {
	var out []proactive.Alert
	for _, sh := range e.shards {
		sh.mu.Lock()
		ev := sh.ev
		ev.out = ev.out[:0]
		for _, d := range ev.devices {
			if !keep(d.id) || d.alerts == nil {
				continue
			}
			for _, r := range ev.bound {
				if a := d.alerts[r.Name]; a != nil && a.state == proactive.AlertFiring && a.firedAt.After(since) {
					ev.emit(d, r, a)
				}
			}
		}
		out = append(out, ev.out...)
		ev.out = ev.out[:0]
		sh.mu.Unlock()
	}
	return out
}

// rebuildFleet recomputes the model baselines from every device, with
// every shard locked: devices came or went.
func (e *Engine) rebuildFleet() {
	e.mu.Lock()
	l := e.set.layout
	e.mu.Unlock()
	var all []*device
	for _, sh := range e.shards {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for _, d := range sh.ev.devices {
			all = append(all, d)
		}
	}
	e.fleet.rebuild(l, all)
}

// only returns h restricted to the devices keep selects (maintenance
// excepted: adopt leaves out the devices it makes).
func (h History) only(keep func(proactive.DeviceID) bool) History {
	out := h
	if h.Samples != nil {
		out.Samples = func(from, to time.Time) SampleSource {
			src := h.Samples(from, to)
			return func(ctx context.Context, fn func(proactive.Sample) error) error {
				return src(ctx, func(s proactive.Sample) error {
					if !keep(s.Device) {
						return nil
					}
					return fn(s)
				})
			}
		}
	}
	if h.Buckets != nil {
		out.Buckets = func(ctx context.Context, reqs []BucketRequest, fn func(BucketAggregate) error) error {
			return h.Buckets(ctx, reqs, func(a BucketAggregate) error {
				if !keep(a.Device) {
					return nil
				}
				return fn(a)
			})
		}
	}
	if h.Events != nil {
		out.Events = func(from, to time.Time) EventSource {
			src := h.Events(from, to)
			return func(ctx context.Context, fn func(proactive.Event) error) error {
				return src(ctx, func(ev proactive.Event) error {
					if !keep(ev.Device) {
						return nil
					}
					return fn(ev)
				})
			}
		}
	}
	return out
}

// PartitionOptions configure Partitions. Zero fields get defaults.
type PartitionOptions struct {
	// Dir holds one snapshot per partition (partition-N.snap) in storage
	// the instances share; empty keeps none, and a partition's devices are
	// then rebuilt from History whenever it is assigned.
	Dir string
	// Interval is the time between two snapshots of the owned partitions
	// by Run (default 5m): an instance that dies leaves them that fresh,
	// and the next owner replays only the gap since from History.
	Interval time.Duration
	// History is the stored telemetry the restores read.
	History History
	// Renotify is how far back, from now, a restore without a snapshot
	// notifies again the alerts that fired (default 10m): a killed owner
	// may have stored their samples and died before it evaluated them.
	// The tickets are idempotent, so a second notice opens none.
	Renotify time.Duration
	// RebuildTimeout bounds one assignment's restore (default 2m).
	RebuildTimeout time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
}

// Partitions keeps the devices of the Kafka partitions this instance owns
// in the engine, and only those: Assign restores a partition's windows and
// alert states (its snapshot plus the gap since, else a rebuild from
// History) before its records are evaluated, Revoke snapshots them for the
// next owner, Lose drops them. A device's partition is given by the
// caller's function (Kafka's default partitioner over the device id).
type Partitions struct {
	engine *Engine
	o      PartitionOptions
	log    *slog.Logger

	mu    sync.Mutex
	owned map[int32]bool
	// parked are the partitions revoked and snapshotted but still in
	// memory: an eager rebalance revokes every partition and gives most of
	// them back, which then need no restore.
	parked map[int32]bool
	of     func(proactive.DeviceID) int32
}

// NewPartitions returns the partition keeper of engine, which should start
// empty (no Checkpoint restore).
func NewPartitions(engine *Engine, o PartitionOptions) *Partitions {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.RebuildTimeout <= 0 {
		o.RebuildTimeout = 2 * time.Minute
	}
	if o.Renotify <= 0 {
		o.Renotify = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Partitions{engine: engine, o: o, log: log.With("component", "partitions"),
		owned: map[int32]bool{}, parked: map[int32]bool{}}
}

// Owned lists the partitions whose devices the engine holds, in order.
func (p *Partitions) Owned() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int32, 0, len(p.owned))
	for part := range p.owned {
		out = append(out, part)
	}
	slices.Sort(out)
	return out
}

// Path is the snapshot file of a partition, "" without Dir.
func (p *Partitions) Path(part int32) string {
	if p.o.Dir == "" {
		return ""
	}
	return filepath.Join(p.o.Dir, fmt.Sprintf("partition-%d.snap", part))
}

// in returns whether a device belongs to one of parts.
func in(of func(proactive.DeviceID) int32, parts map[int32]bool) func(proactive.DeviceID) bool {
	return func(id proactive.DeviceID) bool { return parts[of(id)] }
}

// Assign makes the engine hold the devices of parts, before returning:
// parked partitions stay as they are, others are restored. Parked
// partitions not among parts are dropped. of gives a device's partition. A
// restore that fails is logged; the partition then starts from what was
// loaded. It has the shape of ingest's KafkaOptions.Assigned.
func (p *Partitions) Assign(ctx context.Context, parts []int32, of func(proactive.DeviceID) int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.of = of
	want := map[int32]bool{}
	for _, part := range parts {
		want[part] = true
	}
	gone := map[int32]bool{}
	for part := range p.parked {
		if !want[part] {
			gone[part] = true
		}
	}
	if len(gone) > 0 {
		n := p.engine.DropDevices(in(of, gone))
		p.log.Info("partitions dropped", "partitions", keys(gone), "devices", n)
	}
	var fresh []int32
	for _, part := range parts {
		switch {
		case p.parked[part]:
		case p.owned[part]:
		default:
			fresh = append(fresh, part)
		}
		p.owned[part] = true
	}
	clear(p.parked)
	if len(fresh) == 0 {
		return
	}
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, p.o.RebuildTimeout)
	defer cancel()
	rebuild := map[int32]bool{}
	devices := 0
	for _, part := range fresh {
		n, err := p.restoreSnapshot(rctx, part, of)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				p.log.Warn("partition snapshot not used; rebuilding from influxdb", "partition", part, "err", err)
			}
			rebuild[part] = true
			continue
		}
		devices += n
	}
	if len(rebuild) > 0 {
		keep := in(of, rebuild)
		s := p.engine.scratch()
		end := p.o.Now()
		rep, err := s.RebuildHistory(rctx, p.o.History.only(keep), end)
		// As after a snapshot: the recent firings may never have been
		// notified (a killed owner stored their samples, then died).
		late := s.firingSince(keep, end.Add(-p.o.Renotify))
		n := p.engine.adopt(s, keep)
		p.engine.notify(ctx, late)
		devices += n
		if err != nil {
			p.log.Warn("partition windows not fully rebuilt from influxdb; their alerts restart from what was loaded",
				"partitions", keys(rebuild), "devices", n, "err", err)
		} else {
			p.log.Info("partition windows rebuilt from influxdb", "partitions", keys(rebuild), "devices", n,
				"samples", rep.Samples, "buckets", rep.Buckets)
		}
	}
	p.log.Info("partitions assigned", "partitions", fresh, "devices", devices, "took", time.Since(start).Round(time.Millisecond))
}

// restoreSnapshot loads a partition's snapshot and the gap since into the
// engine and returns how many devices it holds.
func (p *Partitions) restoreSnapshot(ctx context.Context, part int32, of func(proactive.DeviceID) int32) (int, error) {
	path := p.Path(part)
	if path == "" {
		return 0, fs.ErrNotExist
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := p.engine.scratch()
	info, err := s.Restore(f)
	if err != nil {
		return 0, err
	}
	keep := in(of, map[int32]bool{part: true})
	rep, err := s.RebuildSince(ctx, p.o.History.only(keep), info, p.o.Now())
	// Alerts that fired in the gap were never notified here; their old
	// owner may have died before it evaluated them. A second notice opens
	// no second ticket (tickets are per device and component).
	late := s.firingSince(keep, info.Time)
	n := p.engine.adopt(s, keep)
	p.engine.notify(ctx, late)
	if err != nil {
		p.log.Warn("partition restored from its snapshot, but the gap not fully replayed", "partition", part, "devices", n, "err", err)
		return n, nil
	}
	p.log.Info("partition restored from its snapshot", "partition", part, "devices", n, "snapshot_time", info.Time,
		"gap_samples", rep.Samples, "fallback", rep.Fallback)
	return n, nil
}

// Revoke snapshots the devices of parts, one file each, for their next
// owner, and parks them: they stay in memory until the next Assign, which
// drops those it does not give back. The caller has had their records
// evaluated (Engine.Sync) and their offsets committed. It has the shape of
// ingest's KafkaOptions.Revoked.
func (p *Partitions) Revoke(_ context.Context, parts []int32, of func(proactive.DeviceID) int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.of = of
	for _, part := range parts {
		if !p.owned[part] {
			continue
		}
		delete(p.owned, part)
		p.parked[part] = true
		if p.o.Dir == "" {
			continue
		}
		if _, err := p.save(part, of); err != nil {
			p.log.Warn("partition snapshot not written; its next owner replays more from influxdb", "partition", part, "err", err)
		}
	}
}

// Lose drops the devices of parts without a snapshot: the group took them
// away before this instance could commit, and their next owner may be
// evaluating them already. It has the shape of ingest's
// KafkaOptions.Lost.
func (p *Partitions) Lose(_ context.Context, parts []int32, of func(proactive.DeviceID) int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gone := map[int32]bool{}
	for _, part := range parts {
		gone[part] = true
		delete(p.owned, part)
	}
	for part := range p.parked {
		gone[part] = true
	}
	clear(p.parked)
	n := p.engine.DropDevices(in(of, gone))
	p.log.Warn("partitions lost", "partitions", keys(gone), "devices", n)
}

// save writes a partition's snapshot atomically.
func (p *Partitions) save(part int32, of func(proactive.DeviceID) int32) (SnapshotInfo, error) {
	return saveSnapshot("partition snapshot", p.Path(part), func(w io.Writer) (SnapshotInfo, error) {
		return p.engine.snapshot(w, in(of, map[int32]bool{part: true}))
	})
}

// Run snapshots the owned partitions every Interval until ctx ends, so that
// the next owner of a dying instance's partitions replays a short gap.
// Without Dir it only waits for ctx.
func (p *Partitions) Run(ctx context.Context) error {
	if p.o.Dir == "" {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(p.o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			p.mu.Lock()
			for part := range p.owned {
				if _, err := p.save(part, p.of); err != nil {
					p.log.Warn("partition snapshot not written; the previous one stays", "partition", part, "err", err)
				}
			}
			p.mu.Unlock()
		}
	}
}

func keys(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
