package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/web"
)

// ruleEngineFunc is a fake RuleEngine.
type ruleEngineFunc struct {
	rules  func() []rules.RuleStatus
	alerts func() []rules.AlertStatus
}

func (f ruleEngineFunc) Rules() []rules.RuleStatus { return f.rules() }

func (f ruleEngineFunc) Alerts() []rules.AlertStatus {
	if f.alerts == nil {
		return nil
	}
	return f.alerts()
}

func TestFleet(t *testing.T) {
	seen := telemetryFunc{latest: latestMap{
		"fridge-1": {{Metric: "cabinet_temp", Value: 4, Time: monday0830.Add(-2 * time.Hour)},
			{Metric: "compressor_current", Value: 6, Time: monday0830.Add(-5 * time.Minute)}},
	}}
	engine := ruleEngineFunc{rules: func() []rules.RuleStatus { return nil }, alerts: func() []rules.AlertStatus {
		return []rules.AlertStatus{
			{Rule: "compressor_wear", Device: "fridge-1", Component: "compressor", State: proactive.AlertFiring},
			{Rule: "door_seal", Device: "fridge-1", Component: "door", State: proactive.AlertPending},
		}
	}}
	e := newEnv(t, testenv.SQLite(t), func(o *web.Options) { o.Telemetry, o.Rules = seen, engine })
	b := e.signedIn("dispatcher")
	resp, page := b.get("/fleet")
	wantIn(t, page, `<td data-label="Alerts">1 firing, 1 pending</td>`, `<td data-label="Alerts">none</td>`)
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "<h1>Fleet</h1>", `aria-current="page">Fleet</a>`,
		`<th scope="row" data-label="Device">fridge-1</th>`, `datetime="2026-03-09T07:25:00Z"`, "5 min ago",
		`<th scope="row" data-label="Device">fridge-2</th>`, "Not in 30 days",
		// fridge-1 has the offered ticket; fridge-2 the open and the critical.
		`<a href="/?q=fridge-1">1<span`, `<a href="/?q=fridge-2">2<span`, "75011 Paris")
	wantNotIn(t, page, "could not be read")

	t.Run("model filter and pages", func(t *testing.T) {
		for i := range 60 {
			must(e.store.CreateDevice(e.ctx, proactive.Device{ID: proactive.DeviceID(fmt.Sprintf("pump-%02d", i)), Model: "pump-x", TimeZone: "Europe/Paris"}))
		}
		_, page := b.get("/fleet?model=pump-x")
		if n := strings.Count(page, `data-label="Device">pump-`); n != 50 {
			t.Errorf("first page: %d pumps, want 50", n)
		}
		wantNotIn(t, page, "fridge-1")
		wantIn(t, page, `href="/fleet?after=pump-49&amp;model=pump-x" rel="next"`)
		_, page = b.get("/fleet?model=pump-x&after=pump-49")
		wantIn(t, page, "pump-59", `href="/fleet?model=pump-x">First devices`)
		wantNotIn(t, page, "pump-49<", "More devices")
	})
	t.Run("telemetry fails", func(t *testing.T) {
		e := newEnv(t, testenv.SQLite(t), func(o *web.Options) { o.Telemetry = telemetryFunc{} })
		resp, page := e.signedIn("dispatcher").get("/fleet")
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, "Some last-seen times could not be read just now.", "Unknown")
	})
	t.Run("no telemetry", func(t *testing.T) {
		e := newEnv(t, testenv.SQLite(t))
		_, page := e.signedIn("dispatcher").get("/fleet")
		wantIn(t, page, "Telemetry is not available on this server")
	})
	t.Run("technicians", func(t *testing.T) {
		resp, page := e.signedIn("paula").get("/fleet")
		wantStatus(t, resp, page, http.StatusForbidden)
	})
}

func TestRulesPage(t *testing.T) {
	failedAt := monday0830.Add(-3 * time.Hour)
	engine := ruleEngineFunc{rules: func() []rules.RuleStatus {
		return []rules.RuleStatus{
			{Name: "compressor_wear", Component: "compressor", Severity: proactive.SeverityWarning, File: "rules/fridge.yaml", Line: 3,
				Health: "ok", Evaluations: 1200, Pending: 2, Firing: 1},
			{Name: "door_seal", Component: "door", Severity: proactive.SeverityInfo, File: "rules/fridge.yaml", Line: 14,
				Health: "error", LastError: "avg: window 7d exceeds the lookback", LastErrorAt: failedAt, Evaluations: 40, Errors: 40},
		}
	}}
	e := newEnv(t, testenv.SQLite(t), func(o *web.Options) { o.Rules = engine })
	must(e.store.Transition(e.ctx, e.critical, proactive.TicketCancelled, "test", "duplicate"))
	b := e.signedIn("dispatcher")
	resp, page := b.get("/rules")
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "<h1>Rules</h1>", "1 rule has errors.",
		`<span class="rule-name">compressor_wear</span>`, "rules/fridge.yaml:3", `data-label="Pending">2</td>`, `data-label="Firing">1</td>`,
		// compressor_wear opened the offered ticket and the cancelled critical one.
		`<a href="/?rule=compressor_wear&amp;status=all">2 (1)`,
		`<span class="rule-name">door_seal</span>`, "avg: window 7d exceeds the lookback", "3 h ago", "40 (40 failed)",
		// fan_wear opened a ticket but is no longer loaded.
		`<span class="rule-name">fan_wear</span>`, "Not loaded", `<a href="/?rule=fan_wear">1 (1)`)

	t.Run("backtests", func(t *testing.T) {
		run := monday0830.Add(-2 * time.Hour)
		from := run.AddDate(0, 0, -30)
		if err := e.store.SaveBacktest(e.ctx,
			devices.Backtest{Rule: "compressor_wear", RunAt: run, From: from, To: run, Samples: 8640, Fires: 12, Devices: 9,
				TicketsPerDay: 0.4, Scored: true, Failures: 5, Detected: 4, Recall: 0.8, MedianLead: 50 * time.Hour, FalseAlarms: 3,
				Report: json.RawMessage(`{"rule": "compressor_wear", "alerts": 12, "false_alerts": 3, "precision": 0.75}`)},
			devices.Backtest{Rule: "door_seal", RunAt: run, From: from, To: run, Fires: 1, Devices: 1, TicketsPerDay: 1.0 / 30},
			devices.Backtest{Rule: "pump_cavitation", RunAt: run, From: from, To: run, Scored: true}); err != nil {
			t.Fatal(err)
		}
		_, page := b.get("/rules")
		wantIn(t, page, `<th scope="col">Last backtest</th>`,
			"12 fires on 9 devices, 0.40 tickets/day over 30.0 days; caught 4 of 5 failures (80%), median lead 2 days 2 h, 3 false alerts (precision 75%)",
			"1 fire on 1 device, 0.03 tickets/day over 30.0 days</span>",
			// A rule only backtested is listed, with its summary.
			`<span class="rule-name">pump_cavitation</span>`, "0 fires on 0 devices, 0.00 tickets/day over 30.0 days; no known failures of its component, 0 false alerts",
			"(run <time", "2 h ago</time>)",
			// fan_wear was never backtested.
			"Never run")
	})
	t.Run("no engine", func(t *testing.T) {
		e := newEnv(t, testenv.SQLite(t))
		_, page := e.signedIn("dispatcher").get("/rules")
		wantIn(t, page, "The rule engine is not running on this server", "compressor_wear", "fan_wear")
	})
	t.Run("technicians", func(t *testing.T) {
		resp, page := e.signedIn("leo").get("/rules")
		wantStatus(t, resp, page, http.StatusForbidden)
	})
}
