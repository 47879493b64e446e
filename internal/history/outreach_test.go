package history_test

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/internal/history"
	"github.com/proactivehq/proactive/rules"
)

// A backtest with the platform's outreach counts, per rule, the tickets and
// texts the notifier makes of its fires, true and false: two devices run
// hot once each, and only hot-1's compressor fails after. A review rule on
// the same data (of another component) opens as many tickets and texts
// nobody.
func TestBacktestOutreachChain(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 3, 9, 9, 0, 0, 0, time.UTC) // a Monday morning: outside quiet hours
	to := from.Add(4 * 24 * time.Hour)
	var samples []proactive.Sample
	for at := from; at.Before(to); at = at.Add(5 * time.Minute) {
		for _, dev := range []proactive.DeviceID{"hot-1", "hot-2", "cool-1"} {
			v := 4.0
			if dev != "cool-1" && at.Sub(from) >= 2*time.Hour && at.Sub(from) < 3*time.Hour {
				v = 12
			}
			samples = append(samples, proactive.Sample{Device: dev, Model: "fridge-a1", Time: at, Metrics: map[string]float64{"temp": v}})
		}
	}
	set, probs := rules.Compile([]rules.Spec{
		{Name: "hot", Component: "compressor", When: "temp > 10", For: 15 * time.Minute, Severity: proactive.SeverityWarning},
		{Name: "hot_review", Component: "fan", When: "temp > 10", For: 15 * time.Minute, Severity: proactive.SeverityWarning,
			Contact: proactive.ContactReview},
	})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	cfg := config.Default()
	cfg.DB = config.DSN(filepath.Join(t.TempDir(), "none.db")) // no registry: every customer consents
	failures := []rules.Failure{{Device: "hot-1", Component: "compressor", Time: from.Add(3 * 24 * time.Hour)}}
	rep, err := rules.Backtest(t.Context(), set, rules.SliceSource(samples), rules.BacktestOptions{From: from, To: to,
		Failures: failures, Outreach: history.Outreach(cfg, io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	type counts struct{ tickets, texts, trueTickets, falseTickets, trueTexts, falseTexts int }
	for i, want := range []counts{{2, 2, 1, 1, 1, 1}, {2, 0, 0, 2, 0, 0}} {
		r := rep.Rules[i]
		got := counts{r.Tickets, r.Texts, *r.TrueTickets, *r.FalseTickets, *r.TrueTexts, *r.FalseTexts}
		if got != want {
			t.Errorf("%s: %+v, want %+v", r.Rule, got, want)
		}
	}
	if rep.Rules[0].TicketsPerDay != 0.5 || rep.Rules[0].TextsPerDay != 0.5 {
		t.Errorf("hot: %v tickets and %v texts a day, want 0.5 and 0.5", rep.Rules[0].TicketsPerDay, rep.Rules[0].TextsPerDay)
	}
}
