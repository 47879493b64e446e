package ingest

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/proactivehq/proactive"
)

// decodeFast decodes the payloads devices send day in, day out in one pass
// over the bytes and without reflection: an object, or an array of objects,
// each with exactly the keys "ts" (a number, a string without escapes, or
// null) and "metrics" (an object of valid metric names, without escapes or
// duplicates, to numbers or booleans). It reports false for anything else,
// faults included, and then the full decoder judges the payload; so every
// validation rule and dead-letter reason is the full decoder's, and for
// what it accepts decodeFast returns what the full decoder would
// (FuzzDecodeFastAgrees checks it).
func decodeFast(b []byte, received time.Time, skew time.Duration) ([]Reading, bool) {
	d := fastDecoder{b: b, received: received, skew: skew}
	if d.peek() == '{' {
		r, ok := d.entry()
		if !ok || !d.end() {
			return nil, false
		}
		return []Reading{r}, true
	}
	if !d.consume('[') {
		return nil, false
	}
	var readings []Reading
	for {
		r, ok := d.entry()
		if !ok {
			return nil, false
		}
		readings = append(readings, r)
		if d.consume(',') {
			continue
		}
		if d.consume(']') && d.end() {
			return readings, true
		}
		return nil, false
	}
}

type fastDecoder struct {
	b        []byte
	i        int
	received time.Time
	skew     time.Duration
}

// skip passes JSON whitespace.
func (d *fastDecoder) skip() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, 0 at the end.
func (d *fastDecoder) peek() byte {
	d.skip()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *fastDecoder) consume(c byte) bool {
	if d.peek() == c {
		d.i++
		return true
	}
	return false
}

func (d *fastDecoder) end() bool {
	d.skip()
	return d.i == len(d.b)
}

// plainString reads a string token without escapes or control characters
// and returns its content.
func (d *fastDecoder) plainString() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.i
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// number reads a token of JSON's number grammar and returns it.
func (d *fastDecoder) number() ([]byte, bool) {
	d.skip()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		d.digits()
	default:
		return nil, false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if !d.digits() {
			return nil, false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if !d.digits() {
			return nil, false
		}
	}
	return d.b[start:d.i], true
}

// digits passes one or more digits.
func (d *fastDecoder) digits() bool {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}

// literal passes word (true, false, null) when it comes next.
func (d *fastDecoder) literal(word string) bool {
	d.skip()
	if len(d.b)-d.i >= len(word) && string(d.b[d.i:d.i+len(word)]) == word {
		d.i += len(word)
		return true
	}
	return false
}

// entry reads one {"ts": ..., "metrics": {...}} object.
func (d *fastDecoder) entry() (Reading, bool) {
	if !d.consume('{') {
		return Reading{}, false
	}
	var r Reading
	var haveTS bool
	ts := d.received
	for {
		key, ok := d.plainString()
		if !ok || !d.consume(':') {
			return Reading{}, false
		}
		switch string(key) {
		case "ts":
			if haveTS {
				return Reading{}, false
			}
			haveTS = true
			var raw []byte
			switch d.peek() {
			case '"':
				start := d.i
				if _, ok := d.plainString(); !ok {
					return Reading{}, false
				}
				raw = d.b[start:d.i]
			case 'n':
				if !d.literal("null") {
					return Reading{}, false
				}
				raw = []byte("null")
			default:
				if raw, ok = d.number(); !ok {
					return Reading{}, false
				}
			}
			t, err := parseTS(raw, d.received, d.skew)
			if err != nil {
				return Reading{}, false
			}
			ts = t
		case "metrics":
			if r.Metrics != nil {
				return Reading{}, false
			}
			if r.Metrics, ok = d.metrics(); !ok {
				return Reading{}, false
			}
		default:
			return Reading{}, false
		}
		if d.consume(',') {
			continue
		}
		if !d.consume('}') || r.Metrics == nil {
			return Reading{}, false
		}
		r.Time = ts
		return r, true
	}
}

// metrics reads a non-empty object of valid metric names to finite numbers
// or booleans.
func (d *fastDecoder) metrics() (map[string]float64, bool) {
	if !d.consume('{') {
		return nil, false
	}
	m := make(map[string]float64, 8)
	for {
		key, ok := d.plainString()
		if !ok || !d.consume(':') {
			return nil, false
		}
		name, ok := metricName(key)
		if !ok {
			return nil, false
		}
		if _, dup := m[name]; dup {
			return nil, false
		}
		var v float64
		switch d.peek() {
		case 't':
			if !d.literal("true") {
				return nil, false
			}
			v = 1
		case 'f':
			if !d.literal("false") {
				return nil, false
			}
		default:
			raw, ok := d.number()
			if !ok {
				return nil, false
			}
			f, err := strconv.ParseFloat(string(raw), 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, false
			}
			v = f
		}
		m[name] = v
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return m, true
		}
		return nil, false
	}
}

// metricNames interns metric names: a fleet sends the same few names in
// every message, and a map key string per metric per message would be most
// of the decoder's garbage. It stops growing at maxInterned names.
var metricNames = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

const maxInterned = 10000

// metricName returns key as a string, interned, and whether it is a valid
// metric name.
func metricName(key []byte) (string, bool) {
	metricNames.RLock()
	name, ok := metricNames.m[string(key)] // no allocation for the lookup
	metricNames.RUnlock()
	if ok {
		return name, true
	}
	name = string(key)
	if !proactive.ValidMetricName(name) {
		return "", false
	}
	metricNames.Lock()
	if len(metricNames.m) < maxInterned {
		metricNames.m[name] = name
	}
	metricNames.Unlock()
	return name, true
}
