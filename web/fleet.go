package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/rules"
)

// fleetSize is the devices per page of the fleet.
const fleetSize = 50

// fleetTimeout bounds the fleet page's telemetry reads, and fleetReaders
// how many run at once.
const (
	fleetTimeout = 2 * time.Second
	fleetReaders = 8
)

// fleetDevice is a row of the fleet.
type fleetDevice struct {
	proactive.Device
	// LastSeen is the device's latest telemetry; zero when it sent none
	// recently, or when it is not known (Unknown).
	LastSeen time.Time
	Unknown  bool
	Metrics  int
	// Open counts its active tickets; Firing and Pending its alerts.
	Open            int
	Firing, Pending int
}

type fleetData struct {
	pageData
	Now     time.Time
	Model   string
	Devices []fleetDevice
	Next    string
	First   string
	// Telemetry is false when the server reads no telemetry.
	Telemetry bool
	// TelemetryProblem is set when some last-seen times could not be read.
	TelemetryProblem bool
}

// fleetPage lists the registered devices, a page at a time, with when each
// was last heard from and its open tickets.
func (s *server) fleetPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	d := fleetData{pageData: s.base(r, "Fleet", "fleet"), Now: s.Now(), Model: strings.TrimSpace(q.Get("model")),
		Telemetry: s.Telemetry != nil}
	page, err := s.Store.ListDevices(ctx, devices.DeviceFilter{Model: d.Model,
		ListOptions: devices.ListOptions{Limit: fleetSize, Cursor: q.Get("after")}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	link := func(after string) string {
		v := url.Values{}
		if d.Model != "" {
			v.Set("model", d.Model)
		}
		if after != "" {
			v.Set("after", after)
		}
		if len(v) == 0 {
			return "/fleet"
		}
		return "/fleet?" + v.Encode()
	}
	if page.Next != "" {
		d.Next = link(page.Next)
	}
	if q.Get("after") != "" {
		d.First = link("")
	}
	var alerts map[string][2]int // device → firing, pending
	if s.Rules != nil {
		alerts = map[string][2]int{}
		for _, a := range s.Rules.Alerts() {
			c := alerts[string(a.Device)]
			if a.State == proactive.AlertFiring {
				c[0]++
			} else {
				c[1]++
			}
			alerts[string(a.Device)] = c
		}
	}
	for _, dev := range page.Items {
		fd := fleetDevice{Device: dev}
		c := alerts[string(dev.ID)]
		fd.Firing, fd.Pending = c[0], c[1]
		counts, err := s.Store.CountTickets(ctx, devices.TicketFilter{Device: dev.ID, Active: true})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, n := range counts {
			fd.Open += n
		}
		d.Devices = append(d.Devices, fd)
	}
	if s.Telemetry != nil {
		d.TelemetryProblem = s.lastSeen(ctx, d.Devices)
	}
	s.render(w, r, http.StatusOK, "fleet", d)
}

// lastSeen fills the devices' last-seen times from the telemetry store,
// several at once and within fleetTimeout; it reports whether any failed
// (logged once).
func (s *server) lastSeen(ctx context.Context, devs []fleetDevice) (failed bool) {
	ctx, cancel := context.WithTimeout(ctx, fleetTimeout)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lastErr error
		sem     = make(chan struct{}, fleetReaders)
	)
	for i := range devs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			vals, err := s.Telemetry.Latest(ctx, devs[i].ID)
			if err != nil {
				devs[i].Unknown = true
				mu.Lock()
				lastErr = err
				mu.Unlock()
				return
			}
			devs[i].Metrics = len(vals)
			for _, v := range vals {
				if v.Time.After(devs[i].LastSeen) {
					devs[i].LastSeen = v.Time
				}
			}
		})
	}
	wg.Wait()
	if lastErr != nil {
		s.log.Warn("read last-seen times for the fleet", "err", lastErr)
		return true
	}
	return false
}

// ruleRow is a rule as the rules page shows it.
type ruleRow struct {
	rules.RuleStatus
	// Loaded is false for a rule that opened tickets but is no longer
	// loaded.
	Loaded bool
	// Active and Tickets count its open and all tickets; Board links them.
	Active, Tickets int
	Board           string
	// Backtest is its last saved backtest, nil when none was run.
	Backtest *backtestView
	// Trust is its measured trust; nil without an outcome.
	Trust *trustView
}

// trustView is a rule's measured trust as the rules page says it.
type trustView struct {
	notify.Trust
	// Percent is the precision as a percentage.
	Percent string
}

// backtestView is a rule's last backtest as the rules page says it.
type backtestView struct {
	devices.Backtest
	// Days is the period's length, PerDay the tickets a day, Recall and
	// Precision percentages and Lead the median lead time, formatted.
	Days, PerDay, Recall, Precision, Lead string
}

func newBacktestView(b devices.Backtest) *backtestView {
	v := &backtestView{Backtest: b, Days: strconv.FormatFloat(b.To.Sub(b.From).Hours()/24, 'f', 1, 64),
		PerDay: strconv.FormatFloat(b.TicketsPerDay, 'f', 2, 64)}
	if b.Scored && b.Failures > 0 {
		v.Recall = strconv.FormatFloat(100*b.Recall, 'f', 0, 64) + "%"
	}
	if b.Scored && b.MedianLead > 0 {
		v.Lead = humanDuration(b.MedianLead)
	}
	// The precision is in the saved report (rules.RuleReport's JSON), as
	// the backtest scored it.
	var rep struct {
		Precision *float64 `json:"precision"`
	}
	if b.Scored && json.Unmarshal(b.Report, &rep) == nil && rep.Precision != nil {
		v.Precision = strconv.FormatFloat(100**rep.Precision, 'f', 0, 64) + "%"
	}
	return v
}

type rulesData struct {
	pageData
	Now time.Time
	// Engine is false when the server runs no rule engine.
	Engine bool
	Rules  []ruleRow
	Errors int
}

// rulesPage shows each rule's state: pending and firing alerts, health and
// last error from the engine, the tickets it opened, and the summary of its
// last backtest when one was saved (`proactive rules backtest`).
func (s *server) rulesPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := rulesData{pageData: s.base(r, "Rules", "rules"), Now: s.Now(), Engine: s.Rules != nil}
	seen := map[string]bool{}
	if s.Rules != nil {
		for _, st := range s.Rules.Rules() {
			seen[st.Name] = true
			d.Rules = append(d.Rules, ruleRow{RuleStatus: st, Loaded: true})
			if st.Health != "ok" {
				d.Errors++
			}
		}
	}
	names, err := s.Store.TicketRules(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	backtests, err := s.Store.LatestBacktests(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			d.Rules = append(d.Rules, ruleRow{RuleStatus: rules.RuleStatus{Name: n}})
		}
	}
	tested := make([]string, 0, len(backtests))
	for n := range backtests {
		if !seen[n] {
			tested = append(tested, n)
		}
	}
	slices.Sort(tested)
	for _, n := range tested {
		d.Rules = append(d.Rules, ruleRow{RuleStatus: rules.RuleStatus{Name: n}})
	}
	var trust map[string]notify.Trust
	if s.Outreach != nil {
		if trust, err = s.Outreach.Trust(ctx); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	for i := range d.Rules {
		row := &d.Rules[i]
		if t, ok := trust[row.Name]; ok {
			row.Trust = &trustView{Trust: t, Percent: strconv.FormatFloat(100*t.Precision, 'f', 0, 64) + "%"}
		}
		counts, err := s.Store.CountTickets(ctx, devices.TicketFilter{Rule: row.Name})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for st, n := range counts {
			row.Tickets += n
			if !st.Terminal() {
				row.Active += n
			}
		}
		if b, ok := backtests[row.Name]; ok {
			row.Backtest = newBacktestView(b)
		}
		row.Board = "/?" + url.Values{"rule": {row.Name}}.Encode()
		if row.Tickets > row.Active {
			row.Board = "/?" + url.Values{"rule": {row.Name}, "status": {"all"}}.Encode()
		}
	}
	s.render(w, r, http.StatusOK, "rules", d)
}
