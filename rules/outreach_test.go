package rules_test

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// A backtest hands its firing alerts, its fleet and the truth of each alert
// to the outreach replay, and counts the tickets and texts it returns per
// rule, true and false.
func TestBacktestOutreach(t *testing.T) {
	set := mustCompile(t,
		rules.Spec{Name: "hot", When: "temp > 10", For: 30 * time.Minute},
		rules.Spec{Name: "never", Component: "door", When: "temp > 100"},
	)
	// f2 fires at 06:30 on both days and fails at 40h: both its alerts are
	// true; f1's at 12:30 on day one is false.
	failures := []rules.Failure{{Device: "f2", Component: "compressor", Time: t0.Add(40 * time.Hour)}}
	var in rules.OutreachInput
	replay := func(_ context.Context, got rules.OutreachInput) (rules.Outreach, error) {
		in = got
		var out rules.Outreach
		for i, a := range got.Alerts {
			// The second of f2's alerts is held: a ticket, no text.
			out.Tickets = append(out.Tickets, rules.OutreachTicket{Rule: a.Rule, Device: a.Device, Component: a.Component,
				FiredAt: a.FiredAt, Texted: i < 2})
		}
		out.Note = "replayed"
		return out, nil
	}
	rep := mustBacktest(t, set, rules.SliceSource(hotFleet()), rules.BacktestOptions{From: t0, To: t0.Add(48 * time.Hour),
		Failures: failures, Outreach: replay})

	if len(in.Alerts) != 3 || !in.From.Equal(t0) || !in.To.Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("replay input: %d alerts, %v..%v; want the three fires over the period", len(in.Alerts), in.From, in.To)
	}
	for _, a := range in.Alerts {
		if a.State != proactive.AlertFiring {
			t.Errorf("alert %+v handed to the replay: want firing ones only", a)
		}
	}
	if len(in.Fleet) != 3 || in.Fleet["f3"] != "fridge-a1" {
		t.Errorf("fleet %v, want f1..f3 of model fridge-a1", in.Fleet)
	}
	if in.True == nil || !in.True(in.Alerts[0]) || in.True(in.Alerts[1]) {
		t.Errorf("truth: want f2's 06:30 alert true and f1's false")
	}

	hot := rep.Rules[0]
	if hot.Tickets != 3 || hot.Texts != 2 || hot.TicketsPerDay != 1.5 || hot.TextsPerDay != 1 {
		t.Errorf("hot: %d tickets (%v/day), %d texts (%v/day); want 3 (1.5), 2 (1)", hot.Tickets, hot.TicketsPerDay, hot.Texts, hot.TextsPerDay)
	}
	if *hot.TrueTickets != 2 || *hot.FalseTickets != 1 || *hot.TrueTexts != 1 || *hot.FalseTexts != 1 {
		t.Errorf("hot: tickets %d true %d false, texts %d true %d false; want 2, 1, 1, 1",
			*hot.TrueTickets, *hot.FalseTickets, *hot.TrueTexts, *hot.FalseTexts)
	}
	if n := rep.Rules[1]; n.Tickets != 0 || n.Texts != 0 || *n.TrueTickets != 0 {
		t.Errorf("never: %+v, want no tickets", n)
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table, true); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^Tickets and texts: replayed$`,
		`(?m)^rule hot \(component compressor\)\n  fires +3\n  devices +2\n  tickets +3 +1\.50/day +2 true, 1 false\n  texts +2 +1\.00/day +1 true, 1 false\n`,
	} {
		if !regexp.MustCompile(re).MatchString(table.String()) {
			t.Errorf("table does not match %s:\n%s", re, table.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js, true); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Outreach string `json:"outreach"`
		Rules    []map[string]any
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"tickets": 3, "texts": 2, "tickets_per_day": 1.5, "texts_per_day": 1,
		"true_tickets": 2, "false_tickets": 1, "true_texts": 1, "false_texts": 1}
	for k, v := range want {
		if got.Rules[0][k] != v {
			t.Errorf("JSON %s = %v, want %v", k, got.Rules[0][k], v)
		}
	}
	if got.Outreach != "replayed" {
		t.Errorf("JSON outreach %q", got.Outreach)
	}

	// Without failures: counts only.
	rep = mustBacktest(t, set, rules.SliceSource(hotFleet()), rules.BacktestOptions{From: t0, To: t0.Add(48 * time.Hour), Outreach: replay})
	if in.True != nil || rep.Rules[0].Tickets != 3 || rep.Rules[0].TrueTickets != nil {
		t.Errorf("unscored: truth given %v, hot %+v", in.True != nil, rep.Rules[0])
	}
	table.Reset()
	if err := rep.WriteTable(&table, false); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^  tickets +3 +1\.50/day\n  texts +2 +1\.00/day\n`).MatchString(table.String()) {
		t.Errorf("unscored table:\n%s", table.String())
	}
}
