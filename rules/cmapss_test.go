package rules_test

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
)

// NASA's C-MAPSS turbofan run-to-failure data (Saxena et al., PHM 2008),
// subset FD001: one operating condition, one fault mode (HPC degradation).
// Each row is: unit, cycle, three operational settings, 21 sensors. In the
// training set every engine runs from healthy until it fails at its last
// cycle; in the test set each engine stops some cycles before failure,
// and RUL_FD001.txt gives how many.

// cmapssSensors names the 21 sensors by what they measure (Saxena et al.,
// table 2), as metric names. FD001's flat ones (t2, p2, p15, epr, farb,
// nf_dmd, pcnfr_dmd) are replayed too: a real feed carries them.
var cmapssSensors = [21]string{
	"t2",        // 1  total temperature at fan inlet, °R
	"t24",       // 2  total temperature at LPC outlet, °R
	"t30",       // 3  total temperature at HPC outlet, °R
	"t50",       // 4  total temperature at LPT outlet, °R
	"p2",        // 5  pressure at fan inlet, psia
	"p15",       // 6  total pressure in bypass duct, psia
	"p30",       // 7  total pressure at HPC outlet, psia
	"nf",        // 8  physical fan speed, rpm
	"nc",        // 9  physical core speed, rpm
	"epr",       // 10 engine pressure ratio (P50/P2)
	"ps30",      // 11 static pressure at HPC outlet, psia
	"phi",       // 12 ratio of fuel flow to Ps30, pps/psi
	"nrf",       // 13 corrected fan speed, rpm
	"nrc",       // 14 corrected core speed, rpm
	"bpr",       // 15 bypass ratio
	"farb",      // 16 burner fuel-air ratio
	"htbleed",   // 17 bleed enthalpy
	"nf_dmd",    // 18 demanded fan speed, rpm
	"pcnfr_dmd", // 19 demanded corrected fan speed, rpm
	"w31",       // 20 HPT coolant bleed, lbm/s
	"w32",       // 21 LPT coolant bleed, lbm/s
}

// cmapssStart is the time of every engine's cycle 1; a cycle (one flight)
// replays as one hour.
var cmapssStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const cmapssCycle = time.Hour

// cmapssEngine is one engine's run: its sensor readings per cycle.
type cmapssEngine struct {
	unit   int
	cycles int
	rows   [][21]float64 // rows[c-1] is cycle c
}

func (e cmapssEngine) device() proactive.DeviceID {
	return proactive.DeviceID(fmt.Sprintf("engine-%03d", e.unit))
}

// lastTime is the time of the engine's last cycle.
func (e cmapssEngine) lastTime() time.Time { return cmapssAt(e.cycles) }

func cmapssAt(cycle int) time.Time { return cmapssStart.Add(time.Duration(cycle-1) * cmapssCycle) }

// cmapssDir returns the dataset's directory: $PROACTIVE_CMAPSS_DIR, or the
// shared datasets beside the repository. It skips the test (fails it under
// CI=true) when the data is absent.
func cmapssDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("PROACTIVE_CMAPSS_DIR")
	if dir == "" {
		dir = "/work/shared/datasets/cmapss"
	}
	if _, err := os.Stat(filepath.Join(dir, "train_FD001.txt")); err != nil {
		testenv.RequireService(tb, "C-MAPSS dataset", fmt.Sprintf(
			"NASA C-MAPSS FD001 not found (%v): put train_FD001.txt, test_FD001.txt and RUL_FD001.txt in a directory and set PROACTIVE_CMAPSS_DIR", err))
	}
	return dir
}

// loadCMAPSS reads a C-MAPSS file: engines in unit order.
func loadCMAPSS(tb testing.TB, path string) []cmapssEngine {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("C-MAPSS: %v", err)
	}
	defer f.Close()
	byUnit := map[int]*cmapssEngine{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 26 {
			tb.Fatalf("%s:%d: %d columns, want 26 (unit, cycle, 3 settings, 21 sensors)", path, line, len(fields))
		}
		unit, err1 := strconv.Atoi(fields[0])
		cycle, err2 := strconv.Atoi(fields[1])
		if err := errors.Join(err1, err2); err != nil {
			tb.Fatalf("%s:%d: %v", path, line, err)
		}
		e := byUnit[unit]
		if e == nil {
			e = &cmapssEngine{unit: unit}
			byUnit[unit] = e
		}
		if cycle != e.cycles+1 {
			tb.Fatalf("%s:%d: unit %d cycle %d after %d", path, line, unit, cycle, e.cycles)
		}
		var row [21]float64
		for i := range row {
			if row[i], err = strconv.ParseFloat(fields[5+i], 64); err != nil {
				tb.Fatalf("%s:%d: sensor %d: %v", path, line, i+1, err)
			}
		}
		e.rows = append(e.rows, row)
		e.cycles = cycle
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("C-MAPSS: read %s: %v", path, err)
	}
	var out []cmapssEngine
	for _, e := range byUnit {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b cmapssEngine) int { return a.unit - b.unit })
	return out
}

// cmapssSamples returns the engines' readings as telemetry in time order:
// cycle c of every engine at cmapssAt(c), engines in unit order.
func cmapssSamples(engines []cmapssEngine) []proactive.Sample {
	longest := 0
	for _, e := range engines {
		longest = max(longest, e.cycles)
	}
	var out []proactive.Sample
	for c := 1; c <= longest; c++ {
		for _, e := range engines {
			if c > e.cycles {
				continue
			}
			m := make(map[string]float64, len(cmapssSensors))
			for i, name := range cmapssSensors {
				m[name] = e.rows[c-1][i]
			}
			out = append(out, proactive.Sample{Device: e.device(), Model: "turbofan-fd001", Time: cmapssAt(c), Metrics: m})
		}
	}
	return out
}

// loadTurbofanRules compiles rules/examples/turbofan.yaml.
func loadTurbofanRules(tb testing.TB) *rules.RuleSet {
	tb.Helper()
	specs, probs := rules.LoadFiles([]string{"examples/turbofan.yaml"})
	if len(probs) > 0 {
		tb.Fatalf("examples/turbofan.yaml: %v", probs)
	}
	set, probs := rules.Compile(specs)
	if len(probs) > 0 {
		tb.Fatalf("examples/turbofan.yaml: %v", probs)
	}
	return set
}

// percentileOfSorted returns the p-th percentile (0..100) of sorted values by
// linear interpolation between closest ranks.
func percentileOfSorted(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := p / 100 * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// TestCMAPSS backtests rules/examples/turbofan.yaml on the 100 engines of
// FD001's training set, replayed through a real influxd, with each engine's
// failure at its last cycle; then on the test set, whose engines stop
// before failure, as a holdout. It logs every engine and asserts floors a
// little under what the rule measured when it was written.
func TestCMAPSS(t *testing.T) {
	t.Parallel()
	dir := cmapssDir(t)
	engines := loadCMAPSS(t, filepath.Join(dir, "train_FD001.txt"))
	if len(engines) != 100 {
		t.Fatalf("train_FD001.txt: %d engines, want 100", len(engines))
	}
	samples := cmapssSamples(engines)
	set := loadTurbofanRules(t)
	var failures []rules.Failure
	longest := 0
	for _, e := range engines {
		failures = append(failures, rules.Failure{Device: e.device(), Time: e.lastTime(), Component: "engine"})
		longest = max(longest, e.cycles)
	}
	from, to := cmapssStart, cmapssAt(longest+1)

	// Through InfluxDB, as `proactive rules backtest` reads history.
	influx := testenv.Influx(t)
	began := time.Now()
	const batch = 5000
	for i := 0; i < len(samples); i += batch {
		influx.Write(t, lineProtocol(samples[i:min(i+batch, len(samples))]))
	}
	wrote := time.Since(began)
	began = time.Now()
	rep, err := rules.Backtest(t.Context(), set, rules.StoredSamples(mustStore(t, influx), from, to, ""),
		rules.BacktestOptions{From: from, To: to, Failures: failures})
	if err != nil {
		t.Fatalf("Backtest: %v", err)
	}
	t.Logf("FD001 train: %d rows × %d sensors written to influxd in %v, backtest through Flux in %v",
		len(samples), len(cmapssSensors), wrote.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	if rep.Samples != int64(len(samples)) || rep.Devices != 100 {
		t.Fatalf("replayed %d samples of %d engines, want %d of 100", rep.Samples, rep.Devices, len(samples))
	}
	// The same history straight from memory gives the same alerts.
	mem, err := rules.Backtest(t.Context(), set, rules.SliceSource(samples), rules.BacktestOptions{From: from, To: to, Failures: failures})
	if err != nil {
		t.Fatal(err)
	}
	if len(mem.Alerts) != len(rep.Alerts) {
		t.Errorf("%d alerts through influxd, %d from memory", len(rep.Alerts), len(mem.Alerts))
	}
	for i := range min(len(mem.Alerts), len(rep.Alerts)) {
		a, b := rep.Alerts[i], mem.Alerts[i]
		if a.Rule != b.Rule || a.Device != b.Device || a.State != b.State || !a.FiredAt.Equal(b.FiredAt) || a.TimeToFailure != b.TimeToFailure {
			t.Errorf("alert %d: through influxd %s %s %s %v %v, from memory %s %s %s %v %v", i,
				a.Rule, a.Device, a.State, a.FiredAt, a.TimeToFailure, b.Rule, b.Device, b.State, b.FiredAt, b.TimeToFailure)
		}
	}

	r, sc := rep.Rules[0], rep.Rules[0].Score
	byDevice := map[proactive.DeviceID]int{}
	for i, e := range engines {
		byDevice[e.device()] = i
	}
	if r.Errors > 0 {
		t.Errorf("%d evaluation errors, last: %s", r.Errors, r.LastError)
	}
	var leads, absErr []float64
	early, noPrediction := 0, 0
	const tooEarly = 150 // cycles
	var table strings.Builder
	fmt.Fprintf(&table, "engine  life  fired@  lead  predicted  error (cycles)\n")
	for _, o := range sc.Outcomes {
		e := engines[byDevice[o.Device]]
		if !o.Detected {
			fmt.Fprintf(&table, "%6d  %4d  missed\n", e.unit, e.cycles)
			continue
		}
		lead := o.Lead.Hours()
		leads = append(leads, lead)
		if lead > tooEarly {
			early++
		}
		fired := int(o.FiredAt.Sub(cmapssStart)/cmapssCycle) + 1
		if o.TimeToFailure <= 0 {
			noPrediction++
			fmt.Fprintf(&table, "%6d  %4d  %6d  %4.0f  none\n", e.unit, e.cycles, fired, lead)
			continue
		}
		pred := o.TimeToFailure.Hours()
		absErr = append(absErr, math.Abs(pred-lead))
		fmt.Fprintf(&table, "%6d  %4d  %6d  %4.0f  %9.1f  %+6.1f\n", e.unit, e.cycles, fired, lead, pred, pred-lead)
	}
	slices.Sort(leads)
	slices.Sort(absErr)
	recall := float64(sc.Detected) / float64(len(failures))
	med, p10, p90 := percentileOfSorted(leads, 50), percentileOfSorted(leads, 10), percentileOfSorted(leads, 90)
	maeTTF := percentileOfSorted(absErr, 50)
	t.Logf("per engine:\n%s", table.String())
	t.Logf("FD001 train, rule %s: recall %d/%d = %.2f; lead time (cycles) min %.0f p10 %.0f median %.0f p90 %.0f max %.0f; "+
		"fired > %d cycles early: %d; false alarms: %d; fires %d (%.2f a day); prediction error median %.1f cycles (%d without prediction)",
		r.Rule, sc.Detected, len(failures), recall, leads[0], p10, med, p90, leads[len(leads)-1], tooEarly, early, sc.FalseAlerts,
		r.Fires, float64(r.Fires)/rep.Days(), maeTTF, noPrediction)

	// Measured when the rule was written: recall 1.00, lead p10 13, median
	// 25, p90 57, none early, prediction error median 7 cycles.
	if recall < 0.97 {
		t.Errorf("recall %.2f, want ≥ 0.97", recall)
	}
	if med < 20 || med > 40 {
		t.Errorf("median lead %.0f cycles, want 20..40", med)
	}
	if p10 < 10 {
		t.Errorf("10th percentile of lead %.0f cycles, want ≥ 10: too many late warnings", p10)
	}
	if early > 0 || sc.FalseAlerts > 0 {
		t.Errorf("%d fired more than %d cycles early, %d false alerts; want none", early, tooEarly, sc.FalseAlerts)
	}
	if r.Fires != sc.Detected {
		t.Errorf("%d fires for %d engines detected: an engine got more than one ticket", r.Fires, sc.Detected)
	}
	if maeTTF > 10 || noPrediction > 2 {
		t.Errorf("prediction error median %.1f cycles (want ≤ 10), %d fires without prediction (want ≤ 2)", maeTTF, noPrediction)
	}

	t.Run("holdout", func(t *testing.T) {
		cmapssHoldout(t, dir, set)
	})
}

// cmapssHoldout backtests the rule on FD001's test set, whose engines stop
// some cycles before failure (RUL_FD001.txt): failure = last cycle + RUL.
// Scored like the published results the dataset's README quotes: is the
// engine flagged, by its last cycle, if and only if it fails within 30
// cycles?
func cmapssHoldout(t *testing.T, dir string, set *rules.RuleSet) {
	engines := loadCMAPSS(t, filepath.Join(dir, "test_FD001.txt"))
	raw, err := os.ReadFile(filepath.Join(dir, "RUL_FD001.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ruls := strings.Fields(string(raw))
	if len(ruls) != len(engines) {
		t.Fatalf("%d RULs for %d engines", len(ruls), len(engines))
	}
	var failures []rules.Failure
	rul := map[proactive.DeviceID]int{}
	for i, e := range engines {
		n, err := strconv.Atoi(ruls[i])
		if err != nil {
			t.Fatalf("RUL_FD001.txt line %d: %v", i+1, err)
		}
		rul[e.device()] = n
		failures = append(failures, rules.Failure{Device: e.device(), Time: e.lastTime().Add(time.Duration(n) * cmapssCycle), Component: "engine"})
	}
	// The period runs to the last failure: engines fail after their data
	// ends, and only failures inside the period are scored.
	var last time.Time
	for _, f := range failures {
		last = laterTime(last, f.Time)
	}
	rep, err := rules.Backtest(t.Context(), set, rules.SliceSource(cmapssSamples(engines)),
		rules.BacktestOptions{To: last.Add(time.Second), Failures: failures})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Rules[0].Score
	if len(r.Outcomes) != len(engines) {
		t.Fatalf("%d failures scored, want all %d", len(r.Outcomes), len(engines))
	}
	var tp, fp, fn, tn, early int
	var leads []float64
	for _, o := range r.Outcomes {
		soon := rul[o.Device] <= 30
		switch {
		case o.Detected && soon:
			tp++
		case o.Detected:
			fp++
		case soon:
			fn++
		default:
			tn++
		}
		if o.Detected {
			leads = append(leads, o.Lead.Hours())
			if o.Lead > 150*cmapssCycle {
				early++
			}
		}
	}
	slices.Sort(leads)
	precision, recall := float64(tp)/float64(tp+fp), float64(tp)/float64(tp+fn)
	t.Logf("FD001 test (holdout): %d of %d engines flagged before their data ends, leads %v cycles; "+
		"\"fails within 30 cycles\": precision %.2f recall %.2f (tp %d fp %d fn %d tn %d); fired > 150 cycles early: %d",
		r.Detected, len(engines), leads, precision, recall, tp, fp, fn, tn, early)
	// Measured when the rule was written: 17 flagged, precision 0.88,
	// recall 0.60 (the rule waits for 6 cycles of a clear signal; RUL
	// regressions do better at this question), none early.
	if early > 0 {
		t.Errorf("%d engines flagged more than 150 cycles before failure", early)
	}
	if precision < 0.8 || recall < 0.5 {
		t.Errorf("precision %.2f recall %.2f, want ≥ 0.8 and ≥ 0.5", precision, recall)
	}
}

func laterTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
