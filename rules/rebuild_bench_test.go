package rules_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
)

// BenchmarkRebuild measures the start-up rebuild of the example rule set's
// windows and alert states for 10,000 devices (1,000 with -short) from a
// throwaway influxd holding 8 days at one sample per 10 minutes: "replay"
// evaluates every sample of the lookback, "aggregated" loads the windows
// as bucket aggregates and evaluates the tail. Both read a number of rows
// proportional to the sample rate, so seconds at one sample a minute are
// extrapolated ×10. Run it with -benchtime 1x.
func BenchmarkRebuild(b *testing.B) {
	devices := 10_000
	if testing.Short() {
		devices = 1_000
	}
	const step = 10 * time.Minute
	influx := testenv.Influx(b)
	end := time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)
	var lp strings.Builder
	i := 0
	for t := end.Add(-8 * 24 * time.Hour); t.Before(end); t = t.Add(step) {
		for d := range devices {
			s := benchSample(d, t, i)
			lp.WriteString("telemetry,device_id=")
			lp.WriteString(string(s.Device))
			lp.WriteString(",model=")
			lp.WriteString(s.Model)
			sep := byte(' ')
			for k, v := range s.Metrics {
				lp.WriteByte(sep)
				lp.WriteString(k)
				lp.WriteByte('=')
				lp.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
				sep = ','
			}
			lp.WriteByte(' ')
			lp.WriteString(strconv.FormatInt(t.UnixMilli(), 10))
			lp.WriteByte('\n')
		}
		i++
		if lp.Len() > 8<<20 {
			influx.Write(b, lp.String())
			lp.Reset()
		}
	}
	influx.Write(b, lp.String())
	// The replay's queries take longer than the default timeout.
	store := mustStore(b, influx)
	specs, probs := rules.LoadFiles([]string{"examples/*.yaml"})
	if probs != nil {
		b.Fatal(probs)
	}
	newEngine := func(b *testing.B) *rules.Engine {
		e := rules.New(rules.Options{})
		if probs := e.Load(specs); probs != nil {
			b.Fatal(probs)
		}
		return e
	}
	report := func(b *testing.B, rows int64, took time.Duration) {
		sec := took.Seconds() / float64(b.N)
		b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
		b.ReportMetric(sec*10_000/float64(devices), "s/10k-devices")
		b.ReportMetric(sec*10_000/float64(devices)*10, "s/10k-devices-1min")
	}
	b.Run("replay", func(b *testing.B) {
		var rows int64
		var took time.Duration
		for b.Loop() {
			e := newEngine(b)
			start := time.Now()
			n, err := e.Rebuild(b.Context(), rules.StoredSamples(store, end.Add(-e.Lookback()), end, ""))
			if err != nil {
				b.Fatal(err)
			}
			took += time.Since(start)
			rows += n
		}
		report(b, rows, took)
	})
	// A restart with a snapshot taken 5 minutes before the end: restore,
	// then replay the gap from InfluxDB.
	b.Run("snapshot", func(b *testing.B) {
		h := rules.StoredHistory(store)
		taken := end.Add(-5 * time.Minute)
		e0 := newEngine(b)
		if _, err := e0.RebuildHistory(b.Context(), h, taken); err != nil {
			b.Fatal(err)
		}
		var snap bytes.Buffer
		if _, err := e0.Snapshot(&snap); err != nil {
			b.Fatal(err)
		}
		var rows int64
		var took time.Duration
		for b.Loop() {
			e := newEngine(b)
			start := time.Now()
			info, err := e.Restore(bytes.NewReader(snap.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			rep, err := e.RebuildSince(b.Context(), h, info, end)
			if err != nil {
				b.Fatal(err, rep.Fallback)
			}
			took += time.Since(start)
			rows += rep.Samples
		}
		b.ReportMetric(float64(snap.Len())/1e6, "snapshot-MB")
		report(b, rows, took)
	})
	b.Run("aggregated", func(b *testing.B) {
		var rows int64
		var took time.Duration
		h := rules.StoredHistory(store)
		for b.Loop() {
			e := newEngine(b)
			start := time.Now()
			rep, err := e.RebuildHistory(b.Context(), h, end)
			if err != nil || !rep.Aggregated {
				b.Fatal(err, rep.Fallback)
			}
			took += time.Since(start)
			rows += rep.Samples
			b.ReportMetric(float64(rep.Buckets)/float64(devices), "buckets/device")
		}
		report(b, rows, took)
	})
}
