package rules_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// FuzzCompile loads arbitrary rule files and expressions: loading and
// compiling never panic, every problem has a place, and a rule that compiles
// evaluates without panicking on any data.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`avg(compressor_current, "1h") > 1.25 * avg(compressor_current, "7d")`,
		`forecast(x, 9.0) < duration("3d")`,
		`percentile(v, "1h", 95) > 3 && stddev(v, "10m") > 0.5`,
		`since_seen() > duration("2h")`,
		`let a = avg(x, "1h"); a > 2 || device.model == "fridge-a1"`,
		`count(x, "1h") == 0`,
		`max(x, "1w") - min(x, "1w") > delta(x, "1d") + rate(x, "1h") + slope(x, "1h") + sum(x, "1m") + last(x, "2m")`,
		`abs(x) > 1 ? true : false`,
		`x in [1, 2, 3]`,
		`avg(x, y)`, `min(1, 2) > 0`, `foo()`, `"a" + 1`, `[1,2][5] > 1`,
	} {
		f.Add(s, "")
	}
	f.Add("temp > 1", "forecast(temp, 10)")
	f.Fuzz(func(t *testing.T, when, predict string) {
		tm := time.AfterFunc(3*time.Second, func() { panic(fmt.Sprintf("slow: %q %q", when, predict)) })
		defer tm.Stop()
		specs := []rules.Spec{{Name: "r", Component: "c", Severity: proactive.SeverityInfo, When: when, Predict: predict,
			File: "f.yaml", Line: 1, WhenLine: 2, PredictLine: 3}}
		set, probs := rules.Compile(specs)
		for _, p := range probs {
			if p.File != "f.yaml" || p.Line < 1 || p.Msg == "" {
				t.Fatalf("problem without a place: %+v", p)
			}
		}
		if set == nil {
			return
		}
		ev := rules.NewEvaluator(set, nil, time.Minute)
		t0 := time.Unix(1_763_000_000, 0)
		for i, v := range []float64{1, -3, 0, 1e300, math.SmallestNonzeroFloat64, 7} {
			ev.Observe(proactive.Sample{Device: "d", Time: t0.Add(time.Duration(i) * time.Minute), Metrics: map[string]float64{"x": v, "temp": v, "v": v}})
		}
		ev.Tick(t0.Add(time.Hour))
	})
}

// FuzzParseAndCompileFile runs whole rule files through the loader and the
// compiler.
func FuzzParseAndCompileFile(f *testing.F) {
	f.Add([]byte("rules:\n  - name: a\n    component: b\n    severity: info\n    when: x > 1\n    for: 5m\n"))
	f.Add([]byte("rules:\n  - name: a\n    component: b\n    severity: info\n    when: |\n      avg(x, \"1h\") >\n      foo(x)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, _ := rules.ParseFile("f.yaml", data)
		_, probs := rules.Compile(specs)
		for _, p := range probs {
			if p.Line < 1 || p.Msg == "" {
				t.Fatalf("problem without a place: %+v", p)
			}
		}
	})
}
