package rules

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
)

// SnapshotVersion is the version of the format Snapshot writes; Restore
// reads it and version 1, which had no events and maintenance (a device
// restored from one has none, as if it had reported none).
const SnapshotVersion = 2

// snapshotMagic opens every snapshot.
const snapshotMagic = "PRORULES"

// ErrSnapshot is wrapped by every error Restore returns for a file that is
// not a snapshot it can read: wrong magic or version, truncated, corrupt.
var ErrSnapshot = errors.New("not a usable rule snapshot")

// SnapshotInfo describes a snapshot: what Snapshot wrote or Restore read.
type SnapshotInfo struct {
	Version int
	// Time is the newest sample time the engine had seen when the snapshot
	// began (zero if none); Taken the clock then.
	Time, Taken time.Time
	// Tolerance is the late tolerance of the engine that wrote it.
	Tolerance time.Duration
	// Devices, Windows and Alerts count the devices, their windows and
	// their pending or firing alerts written or restored.
	Devices, Windows, Alerts int
	// MaintenanceID is the highest maintenance ID the engine had taken in.
	MaintenanceID int64
	// Bytes is the size of the snapshot.
	Bytes int64
	// Skipped lists the windows ("metric/length") the snapshot holds that
	// the loaded rules no longer read: they were not restored. Missing
	// lists those the loaded rules read that the snapshot lacks:
	// RebuildSince loads them from history.
	Skipped, Missing []string
	// restored marks the window slots Restore filled, by slot.
	restored []bool
}

// Snapshot writes the engine's state to w: every device with its model,
// latest metric values, last seen and evaluated times, windows (their
// buckets as held in memory) and alert states, cooldowns included.
//
// Evaluation goes on meanwhile: each shard is locked only while a chunk of
// its devices is encoded into memory, never while w is written. A device is
// written as it stood when its chunk was taken, so devices may be a few
// samples apart; RebuildSince replays from before the snapshot's Time
// (minus the late tolerance) and so does not depend on when each was taken.
//
// The format (little-endian): the magic "PRORULES", a uint16 version, the
// snapshot's time, clock and tolerance (int64 ns), the highest maintenance
// ID taken in (int64), the layout (metric names, then each window's metric
// and length), one record per device (its event history and maintenance
// times after its alerts), an end tag with the device count, and the
// CRC-32C of all that precedes it.
func (e *Engine) Snapshot(w io.Writer) (SnapshotInfo, error) {
	return e.snapshot(w, nil)
}

// snapshot is Snapshot of the devices keep selects, all when keep is nil.
func (e *Engine) snapshot(w io.Writer, keep func(proactive.DeviceID) bool) (SnapshotInfo, error) {
	e.mu.Lock()
	l := e.set.layout
	e.mu.Unlock()
	metrics := len(l.metricNames)
	keys := append([]windowKey(nil), l.windowKeys...)

	// The devices of each shard, and the newest sample time, as of now.
	lists := make([][]*device, len(e.shards))
	newest := time.Time{}
	for i, sh := range e.shards {
		sh.mu.Lock()
		list := make([]*device, 0, len(sh.ev.devices))
		for _, d := range sh.ev.devices {
			if keep != nil && !keep(d.id) {
				continue
			}
			list = append(list, d)
			if d.lastSeen.After(newest) {
				newest = d.lastSeen
			}
		}
		sh.mu.Unlock()
		lists[i] = list
	}
	info := SnapshotInfo{Version: SnapshotVersion, Time: newest, Taken: e.opts.Now(), Tolerance: e.opts.LateTolerance,
		MaintenanceID: e.MaintenanceID()}

	enc := &encoder{w: w, crc: crc32.New(castagnoli)}
	enc.raw([]byte(snapshotMagic))
	enc.u16(SnapshotVersion)
	enc.time(info.Time)
	enc.time(info.Taken)
	enc.i64(int64(info.Tolerance))
	enc.i64(info.MaintenanceID)
	enc.uvarint(uint64(metrics))
	for _, name := range l.metricNames[:metrics] {
		enc.str(name)
	}
	enc.uvarint(uint64(len(keys)))
	for _, k := range keys {
		enc.uvarint(uint64(k.metric))
		enc.i64(int64(k.length))
	}
	if err := enc.flush(); err != nil {
		return info, err
	}

	const chunk = 64 // devices encoded per lock: a few ms
	for i, sh := range e.shards {
		list := lists[i]
		for len(list) > 0 {
			n := min(chunk, len(list))
			sh.mu.Lock()
			for _, d := range list[:n] {
				enc.device(d, metrics, len(keys), &info)
			}
			sh.mu.Unlock()
			list = list[n:]
			if err := enc.flush(); err != nil {
				return info, err
			}
		}
	}
	enc.byte(tagEnd)
	enc.uvarint(uint64(info.Devices))
	if err := enc.flush(); err != nil {
		return info, err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], enc.crc.Sum32())
	if _, err := w.Write(sum[:]); err != nil {
		return info, fmt.Errorf("write rule snapshot: %w", err)
	}
	info.Bytes = enc.n + 4
	return info, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record tags.
const (
	tagEnd    byte = 0
	tagDevice byte = 1
)

// Bucket kinds: a bucket of one sample is its value and tick, any other
// the whole bucket.
const (
	bucketOne  byte = 1
	bucketFull byte = 2
)

// Alert state codes.
const (
	codePending byte = 1
	codeFiring  byte = 2
)

// noTime stands for the zero time.Time.
const noTime = math.MinInt64

// encoder appends to buf and writes it to w on flush, adding it to crc.
type encoder struct {
	w   io.Writer
	crc hash.Hash32
	buf []byte
	n   int64
}

func (e *encoder) flush() error {
	if len(e.buf) == 0 {
		return nil
	}
	e.crc.Write(e.buf)
	n, err := e.w.Write(e.buf)
	e.n += int64(n)
	e.buf = e.buf[:0]
	if err != nil {
		return fmt.Errorf("write rule snapshot: %w", err)
	}
	return nil
}

func (e *encoder) raw(b []byte)        { e.buf = append(e.buf, b...) }
func (e *encoder) byte(b byte)         { e.buf = append(e.buf, b) }
func (e *encoder) u16(v uint16)        { e.buf = binary.LittleEndian.AppendUint16(e.buf, v) }
func (e *encoder) u32(v uint32)        { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }
func (e *encoder) u64(v uint64)        { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }
func (e *encoder) i64(v int64)         { e.u64(uint64(v)) }
func (e *encoder) f64(v float64)       { e.u64(math.Float64bits(v)) }
func (e *encoder) f32(v float32)       { e.u32(math.Float32bits(v)) }
func (e *encoder) uvarint(v uint64)    { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) str(s string)        { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) time(t time.Time)    { e.i64(timeNs(t)) }
func (e *encoder) dur(d time.Duration) { e.i64(int64(d)) }

func timeNs(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return t.UnixNano()
}

func nsTime(ns int64) time.Time {
	if ns == noTime {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// device encodes d, its latest values of the first metrics metric slots
// and its windows of the first windows window slots.
func (e *encoder) device(d *device, metrics, windows int, info *SnapshotInfo) {
	e.byte(tagDevice)
	e.str(string(d.id))
	e.str(d.info.Model)
	e.f64(d.info.AgeDays)
	e.time(d.lastSeen)
	e.time(d.lastEval)
	latest := d.latest[:min(len(d.latest), metrics)]
	e.uvarint(uint64(len(latest)))
	for _, v := range latest {
		e.f64(v)
	}
	n := 0
	for ws, w := range d.windows {
		if ws < windows && w != nil && w.hasData {
			n++
		}
	}
	e.uvarint(uint64(n))
	for ws, w := range d.windows {
		if ws < windows && w != nil && w.hasData {
			e.uvarint(uint64(ws))
			e.window(w)
			info.Windows++
		}
	}
	if d.alerts == nil {
		e.byte(0)
	} else {
		e.byte(1)
		e.uvarint(uint64(len(d.alerts)))
		for name, a := range d.alerts {
			e.str(name)
			switch a.state {
			case proactive.AlertPending:
				e.byte(codePending)
			default:
				e.byte(codeFiring)
			}
			e.time(a.activeAt)
			e.time(a.firedAt)
			e.time(a.falseSince)
			e.dur(a.ttf)
			info.Alerts++
		}
		e.uvarint(uint64(len(d.holder)))
		for comp, rule := range d.holder {
			e.str(comp)
			e.str(rule)
		}
		e.uvarint(uint64(len(d.firedAt)))
		for comp, at := range d.firedAt {
			e.str(comp)
			e.time(at)
		}
	}
	var codes []eventSeries
	if d.events != nil {
		codes = d.events.codes
	}
	e.uvarint(uint64(len(codes)))
	for _, c := range codes {
		e.str(c.code)
		e.i64(c.last)
		e.uvarint(uint64(len(c.times)))
		for _, t := range c.times {
			e.i64(t)
		}
	}
	comps := slices.Sorted(maps.Keys(d.maint))
	e.uvarint(uint64(len(comps)))
	for _, comp := range comps {
		e.str(comp)
		e.i64(d.maint[comp])
	}
	info.Devices++
}

// window encodes the ring of w, oldest bucket first: which buckets hold
// samples (a bit each), then each of those.
func (e *encoder) window(w *Window) {
	e.i64(w.newest)
	e.i64(w.head)
	var mask uint64
	for i := range ringSize {
		if w.at(w.head-Buckets+int64(i)).n > 0 {
			mask |= 1 << i
		}
	}
	e.u64(mask)
	for i := range ringSize {
		b := w.at(w.head - Buckets + int64(i))
		if b.n == 0 {
			continue
		}
		if b.n == 1 {
			e.byte(bucketOne)
			e.f64(b.first)
			e.u32(b.firstTick)
			continue
		}
		e.byte(bucketFull)
		e.f64(b.first)
		e.f64(b.last)
		e.f64(b.min)
		e.f64(b.max)
		e.u32(b.n)
		e.u32(b.firstTick)
		e.u32(b.lastTick)
		e.f32(b.s1)
		e.f32(b.s2)
		e.f32(b.t1)
		e.f32(b.t2)
		e.f32(b.tv)
	}
}

// Restore replaces the engine's devices with those of the snapshot r holds,
// before Run and on an engine that has taken no samples. Windows are
// matched by metric name and length: those the loaded rules no longer read
// are skipped, and those they read that the snapshot lacks are left empty
// for RebuildSince to load (SnapshotInfo says which). Alert states are
// restored for the rules loaded now, by name, as a reload keeps them; the
// times at which alerts last fired, per component, for cooldowns, all.
//
// Restore reads the whole snapshot before changing anything: a file that
// is not a snapshot of this version, truncated or corrupt (checked with
// its CRC) gives an error wrapping ErrSnapshot and leaves the engine as it
// was.
func (e *Engine) Restore(r io.Reader) (SnapshotInfo, error) {
	e.mu.Lock()
	set := e.set
	e.mu.Unlock()
	d := &decoder{r: bufio.NewReaderSize(r, 64<<10), crc: crc32.New(castagnoli)}
	info, shards := e.decode(d, set)
	if d.err != nil {
		if errors.Is(d.err, io.EOF) || errors.Is(d.err, io.ErrUnexpectedEOF) {
			return SnapshotInfo{}, fmt.Errorf("%w: truncated after %d bytes", ErrSnapshot, d.n)
		}
		if errors.Is(d.err, ErrSnapshot) {
			return SnapshotInfo{}, d.err
		}
		return SnapshotInfo{}, fmt.Errorf("%w: read: %w", ErrSnapshot, d.err)
	}
	info.Bytes = d.n
	var all []*device
	for i, sh := range e.shards {
		sh.mu.Lock()
		sh.ev.devices = shards[i]
		sh.ev.maintID = info.MaintenanceID
		sh.mu.Unlock()
		for _, dev := range shards[i] {
			all = append(all, dev)
		}
	}
	e.fleet.rebuild(set.layout, all)
	return info, nil
}

// decoder reads a snapshot, adding what it reads to crc; after the first
// error every read returns zero values and err holds it.
type decoder struct {
	r       *bufio.Reader
	crc     hash.Hash32
	n       int64
	err     error
	scratch [64]byte
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrSnapshot}, args...)...)
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return d.scratch[:n:n]
	}
	b := d.scratch[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.err = err
		clear(b)
		return b
	}
	d.crc.Write(b)
	d.n += int64(n)
	return b
}

func (d *decoder) byte() byte         { return d.bytes(1)[0] }
func (d *decoder) u16() uint16        { return binary.LittleEndian.Uint16(d.bytes(2)) }
func (d *decoder) u32() uint32        { return binary.LittleEndian.Uint32(d.bytes(4)) }
func (d *decoder) u64() uint64        { return binary.LittleEndian.Uint64(d.bytes(8)) }
func (d *decoder) i64() int64         { return int64(d.u64()) }
func (d *decoder) f64() float64       { return math.Float64frombits(d.u64()) }
func (d *decoder) f32() float32       { return math.Float32frombits(d.u32()) }
func (d *decoder) time() time.Time    { return nsTime(d.i64()) }
func (d *decoder) dur() time.Duration { return time.Duration(d.i64()) }

// ReadByte implements io.ByteReader for binary.ReadUvarint.
func (d *decoder) ReadByte() (byte, error) {
	b := d.byte()
	return b, d.err
}

// uvarint reads a count or index, refusing one above limit.
func (d *decoder) uvarint(limit uint64, what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d)
	if err != nil {
		if d.err == nil {
			d.fail("%s: %v", what, err)
		}
		return 0
	}
	if v > limit {
		d.fail("%s %d, more than %d", what, v, limit)
		return 0
	}
	return v
}

// index reads an index below n.
func (d *decoder) index(n int, what string) int {
	if n == 0 {
		d.fail("%s: none to refer to", what)
		return 0
	}
	return int(d.uvarint(uint64(n-1), what))
}

// maxString bounds the strings of a snapshot (device IDs, models, metric,
// rule and component names), so that a corrupt length allocates nothing.
const maxString = 4096

func (d *decoder) str(what string) string {
	n := d.uvarint(maxString, what+" length")
	if d.err != nil || n == 0 {
		return ""
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.err = err
		return ""
	}
	d.crc.Write(b)
	d.n += int64(n)
	return string(b)
}

// decode reads a whole snapshot into devices by shard of e, matched to the
// layout of set.
func (e *Engine) decode(d *decoder, set *RuleSet) (SnapshotInfo, []map[proactive.DeviceID]*device) {
	var info SnapshotInfo
	if string(d.bytes(len(snapshotMagic))) != snapshotMagic {
		d.fail("no snapshot magic at the start")
	}
	if d.err != nil {
		return info, nil
	}
	v := int(d.u16())
	if (v < 1 || v > SnapshotVersion) && d.err == nil {
		d.fail("format version %d, this build reads 1 to %d", v, SnapshotVersion)
	}
	info.Version = v
	info.Time, info.Taken, info.Tolerance = d.time(), d.time(), d.dur()
	if v >= 2 {
		info.MaintenanceID = d.i64()
	}

	l := set.layout
	nm := int(d.uvarint(1<<16, "metric count"))
	names := make([]string, 0, min(nm, 256))
	metricSlot := make([]int, 0, min(nm, 256)) // snapshot metric -> slot, or -1
	for range nm {
		name := d.str("metric name")
		slot, ok := l.metrics[name]
		if !ok {
			slot = -1
		}
		names = append(names, name)
		metricSlot = append(metricSlot, slot)
	}
	nw := int(d.uvarint(1<<16, "window count"))
	windowSlot := make([]int, 0, min(nw, 256)) // snapshot window -> slot, or -1
	lengths := make([]time.Duration, 0, min(nw, 256))
	info.restored = make([]bool, len(l.windowKeys))
	for range nw {
		m := d.index(nm, "window metric")
		length := d.dur()
		if d.err != nil {
			return info, nil
		}
		if length <= 0 {
			d.fail("window length %v", length)
			return info, nil
		}
		slot := -1
		if metricSlot[m] >= 0 {
			if ws, ok := l.windows[windowKey{metricSlot[m], length}]; ok {
				slot = ws
				info.restored[ws] = true
			}
		}
		if slot < 0 {
			info.Skipped = append(info.Skipped, names[m]+"/"+proactive.FormatDuration(length))
		}
		windowSlot = append(windowSlot, slot)
		lengths = append(lengths, length)
	}
	if d.err != nil {
		return info, nil
	}
	for ws, k := range l.windowKeys {
		if !info.restored[ws] {
			info.Missing = append(info.Missing, l.metricNames[k.metric]+"/"+proactive.FormatDuration(k.length))
		}
	}
	rules := map[string]bool{}
	for _, r := range set.rules {
		rules[r.Name] = true
	}

	shards := make([]map[proactive.DeviceID]*device, len(e.shards))
	for i := range shards {
		shards[i] = map[proactive.DeviceID]*device{}
	}
	for d.err == nil {
		switch tag := d.byte(); {
		case d.err != nil:
		case tag == tagEnd:
			if n := d.uvarint(math.MaxInt64, "device count"); d.err == nil && n != uint64(info.Devices) {
				d.fail("%d devices, the end says %d", info.Devices, n)
			}
			want := d.crc.Sum32()
			var sum [4]byte
			if _, err := io.ReadFull(d.r, sum[:]); err != nil {
				d.err = err
				return info, nil
			}
			d.n += 4
			if got := binary.LittleEndian.Uint32(sum[:]); got != want {
				d.fail("checksum %08x, content %08x", got, want)
			}
			if _, err := d.r.ReadByte(); err == nil {
				d.fail("data after the end")
			}
			return info, shards
		case tag == tagDevice:
			dev := e.decodeDevice(d, l, metricSlot, windowSlot, lengths, rules, &info)
			if d.err != nil {
				return info, nil
			}
			i := e.shardOf(dev.id)
			if shards[i][dev.id] != nil {
				d.fail("device %q twice", dev.id)
				return info, nil
			}
			dev.id = e.shards[i].ev.intern(dev.id)
			shards[i][dev.id] = dev
			info.Devices++
		default:
			d.fail("record tag %d", tag)
		}
	}
	return info, nil
}

// decodeDevice reads one device record.
func (e *Engine) decodeDevice(d *decoder, l *layout, metricSlot, windowSlot []int, lengths []time.Duration,
	rules map[string]bool, info *SnapshotInfo) *device {
	dev := &device{id: proactive.DeviceID(d.str("device id"))}
	defer func() {
		if info.Version >= 2 {
			d.signals(dev)
		}
	}()
	dev.info.Model = d.str("model")
	dev.info.AgeDays = d.f64()
	dev.lastSeen, dev.lastEval = d.time(), d.time()
	dev.latest = make([]float64, len(l.metricNames))
	for i := range dev.latest {
		dev.latest[i] = math.NaN()
	}
	dev.windows = make([]*Window, len(l.windowKeys))
	nl := int(d.uvarint(uint64(len(metricSlot)), "latest values"))
	for i := range nl {
		if v := d.f64(); metricSlot[i] >= 0 {
			dev.latest[metricSlot[i]] = v
		}
	}
	nw := int(d.uvarint(uint64(len(windowSlot)), "windows"))
	for range nw {
		i := d.index(len(windowSlot), "window")
		if d.err != nil {
			return dev
		}
		w := NewWindow(lengths[i], e.opts.LateTolerance)
		d.window(w)
		if ws := windowSlot[i]; ws >= 0 && d.err == nil {
			if dev.windows[ws] != nil {
				d.fail("device %q: window %d twice", dev.id, i)
			}
			dev.windows[ws] = w
			info.Windows++
		}
	}
	switch d.byte() {
	case 0:
	case 1:
		dev.alerts = map[string]*alertState{}
		dev.holder = map[string]string{}
		dev.firedAt = map[string]time.Time{}
		na := d.uvarint(1<<20, "alerts")
		for range na {
			name := d.str("rule")
			a := &alertState{}
			switch d.byte() {
			case codePending:
				a.state = proactive.AlertPending
			case codeFiring:
				a.state = proactive.AlertFiring
			default:
				d.fail("device %q: alert state", dev.id)
			}
			a.activeAt, a.firedAt, a.falseSince, a.ttf = d.time(), d.time(), d.time(), d.dur()
			if rules[name] {
				dev.alerts[name] = a
				info.Alerts++
			}
		}
		nh := d.uvarint(1<<20, "holders")
		for range nh {
			comp, rule := d.str("component"), d.str("rule")
			if rules[rule] {
				dev.holder[comp] = rule
			}
		}
		nf := d.uvarint(1<<20, "fired times")
		for range nf {
			comp := d.str("component")
			dev.firedAt[comp] = d.time()
		}
	default:
		d.fail("device %q: alert flag", dev.id)
	}
	return dev
}

// signals reads a device's event history and maintenance times (version 2).
func (d *decoder) signals(dev *device) {
	nc := int(d.uvarint(MaxEventCodes, "event codes"))
	if nc > 0 {
		dev.events = &eventLog{codes: make([]eventSeries, 0, nc)}
	}
	for range nc {
		s := eventSeries{code: d.str("event code"), last: d.i64()}
		nt := int(d.uvarint(MaxEventTimes, "event times"))
		if nt > 0 {
			s.times = make([]int64, nt)
		}
		for i := range s.times {
			s.times[i] = d.i64()
			if i > 0 && s.times[i] < s.times[i-1] || s.times[i] > s.last {
				d.fail("device %q: event times out of order", dev.id)
			}
		}
		if d.err != nil {
			return
		}
		dev.events.codes = append(dev.events.codes, s)
	}
	nm := int(d.uvarint(1<<16, "maintained components"))
	for range nm {
		comp, t := d.str("component"), d.i64()
		if d.err != nil {
			return
		}
		if dev.maint == nil {
			dev.maint = map[string]int64{}
		}
		dev.maint[comp] = t
	}
}

// window reads a window's ring into w, a new window of its length.
func (d *decoder) window(w *Window) {
	newest, head := d.i64(), d.i64()
	mask := d.u64()
	if d.err != nil {
		return
	}
	if mask>>ringSize != 0 {
		d.fail("window bucket mask %x", mask)
		return
	}
	if newest < math.MinInt64/2 || floorDiv(newest, w.width) != head {
		d.fail("window newest %d not in its newest bucket %d", newest, head)
		return
	}
	w.hasData, w.newest = true, newest
	w.head, w.headStart, w.headSlot = head, head*w.width, int32(w.slot(head))
	limit := uint32(min((w.width-1)>>w.shift, math.MaxUint32))
	for i := range ringSize {
		if mask&(1<<i) == 0 {
			continue
		}
		b := w.at(head - Buckets + int64(i))
		switch d.byte() {
		case bucketOne:
			v := d.f64()
			t := d.u32()
			*b = bucket{first: v, last: v, min: v, max: v, n: 1, firstTick: t, lastTick: t}
		case bucketFull:
			b.first, b.last, b.min, b.max = d.f64(), d.f64(), d.f64(), d.f64()
			b.n, b.firstTick, b.lastTick = d.u32(), d.u32(), d.u32()
			b.s1, b.s2, b.t1, b.t2, b.tv = d.f32(), d.f32(), d.f32(), d.f32(), d.f32()
		default:
			d.fail("bucket kind")
			return
		}
		if d.err != nil {
			return
		}
		// What Add and Merge keep true of a bucket's shape.
		if b.n == 0 || b.firstTick > b.lastTick || b.lastTick > limit {
			d.fail("bucket out of shape")
			return
		}
	}
}
