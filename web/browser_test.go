package web_test

import (
	"context"
	_ "embed"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/browsertest"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/web"
)

// axeSource is axe-core (testdata/README.md), injected into each page the
// browser tests check for accessibility.
//
//go:embed testdata/axe.min.js
var axeSource string

// viewports are the widths every page must work at: a small phone and a
// desktop.
var viewports = []struct {
	name          string
	width, height int64
}{
	{"360", 360, 780},
	{"1440", 1440, 900},
}

// The browser steps of these tests, from internal/browsertest.
var (
	newBrowser  = browsertest.New
	do          = browsertest.Do
	submit      = browsertest.Submit
	waitNewPage = browsertest.WaitNewPage
	text        = browsertest.Text
)

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkPage runs axe-core on the current page at each viewport, saves a
// screenshot of each under the test's artifact directory, and fails the
// test on any violation.
func checkPage(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := t.ArtifactDir()
	for _, vp := range viewports {
		do(t, ctx, "viewport "+vp.name, chromedp.EmulateViewport(vp.width, vp.height))
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
			t.Fatalf("inject axe-core: %v", err)
		}
		vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
			r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))})))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("run axe-core on %s: %v", name, err)
		}
		if checked, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("label, h1, main").length`)); err != nil || checked < 2 {
			t.Fatalf("%s has no content to check (%v)", name, err)
		}
		for _, v := range vs {
			t.Errorf("%s at %s px: axe %s (%s): %s at %s", name, vp.name, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "; "))
		}
		// The page must not scroll sideways.
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		if wide {
			t.Errorf("%s at %s px scrolls horizontally", name, vp.name)
		}
		// A badge ("Enabled", "Critical") is one word on one line: two
		// lines are more than twice its font size high.
		broken, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(".badge")).filter(b =>
			b.getBoundingClientRect().height > 2.2 * parseFloat(getComputedStyle(b).fontSize)).map(b => b.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		if len(broken) > 0 {
			t.Errorf("%s at %s px breaks badges over lines: %q", name, vp.name, broken)
		}
		browsertest.Shot(t, ctx, dir, name+"-"+vp.name)
	}
	do(t, ctx, "reset viewport", chromedp.EmulateViewport(1440, 900))
}

// plainServer serves the pages over HTTP on 127.0.0.1: Chromium keeps
// Secure cookies of a loopback address, a potentially trustworthy origin.
func (e *env) plainServer() string {
	srv := httptest.NewServer(e.h)
	e.t.Cleanup(srv.Close)
	return srv.URL
}

func TestBrowser(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), func(o *web.Options) { o.RefreshEvery = 500 * time.Millisecond })
	ctx := newBrowser(t)
	base := e.plainServer()
	// Paula has a visit today: the critical ticket, booked by phone.
	slots := must(e.n.Slots(e.ctx, e.critical))
	must(e.n.Book(e.ctx, e.critical, slots[0], "test"))
	card := func(id int64) string { return fmt.Sprintf(`#%d `, id) }

	t.Run("dispatcher", func(t *testing.T) {
		do(t, ctx, "sign in",
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
		)
		checkPage(t, ctx, "signin")
		do(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), e.tok["dispatcher"]))
		submit(t, ctx, "sign in", "main form button[type=submit]")
		do(t, ctx, "board", chromedp.WaitVisible(chromedp.CSS("#board")))
		board := text(t, ctx, "#board")
		for _, id := range []int64{e.offered, e.open, e.critical} {
			if !strings.Contains(board, card(id)) {
				t.Errorf("board lacks ticket %d:\n%s", id, board)
			}
		}
		checkPage(t, ctx, "board")

		do(t, ctx, "filter", chromedp.SetValue(chromedp.CSS("#f-rule"), "fan_wear"))
		submit(t, ctx, "filter", ".filters button[type=submit]")
		if loc := must(chromedp.Run(ctx, chromedp.Location())); !strings.Contains(loc, "rule=fan_wear") {
			t.Errorf("filtered at %s", loc)
		}
		if board := text(t, ctx, "#board"); strings.Contains(board, card(e.offered)) || strings.Contains(board, card(e.critical)) {
			t.Errorf("filtered board shows other rules' tickets:\n%s", board)
		}

		submit(t, ctx, "open a ticket", fmt.Sprintf(`a[href="/tickets/%d"]`, e.open))
		do(t, ctx, "ticket page", chromedp.WaitVisible(chromedp.CSS("#a-tech")))
		checkPage(t, ctx, "ticket")
		do(t, ctx, "assign", chromedp.SetValue(chromedp.CSS("#a-tech"), "tech-lyon"))
		submit(t, ctx, "assign", `form[action$="/assign"] button`)
		do(t, ctx, "assigned", chromedp.WaitVisible(chromedp.CSS(".flash")))
		if s := text(t, ctx, ".timeline"); !strings.Contains(s, "Assigned to tech-lyon") {
			t.Errorf("timeline lacks the assignment:\n%s", s)
		}
		if tk := must(e.store.GetTicket(e.ctx, e.open)); tk.Technician != "tech-lyon" {
			t.Errorf("ticket assigned to %q in the store, want tech-lyon", tk.Technician)
		}

		// Consent the customer gives on the phone, from the ticket page.
		submit(t, ctx, "record WhatsApp consent", `form[action$="/customer/consent"]:has(input[value="whatsapp"]) button`)
		do(t, ctx, "consent recorded", chromedp.WaitVisible(chromedp.CSS(".flash")))
		if s := text(t, ctx, "#channel"); !strings.Contains(s, "WhatsApp yes") {
			t.Errorf("after recording WhatsApp consent the page says %q", s)
		}
		if c := must(e.store.GetCustomer(e.ctx, "bruno")); !c.WhatsAppConsent {
			t.Errorf("bruno's WhatsApp consent not recorded in the store")
		}

		// A form whose CSRF token is gone is refused.
		do(t, ctx, "post without CSRF",
			chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action$="/comment"] input[name=csrf]').remove()`),
			chromedp.SendKeys(chromedp.CSS("#n-text"), "forged"),
		)
		submit(t, ctx, "post without CSRF", `form[action$="/comment"] button`)
		if h := text(t, ctx, "main h1"); h != "Forbidden" {
			t.Errorf("a form without its CSRF token: page %q, want Forbidden", h)
		}
		for _, ev := range must(e.store.GetTicket(e.ctx, e.open)).Timeline {
			if ev.Kind == proactive.TicketEventComment {
				t.Errorf("a form without its CSRF token added a comment: %s", ev.Body)
			}
		}
	})

	t.Run("reply appears without reload", func(t *testing.T) {
		do(t, ctx, "open the offered ticket",
			chromedp.Navigate(fmt.Sprintf("%s/tickets/%d", base, e.offered)),
			chromedp.WaitVisible(chromedp.CSS(".thread")),
			chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`),
		)
		if code := e.reply("+33611111111", "Please call me after 6pm"); code != 200 {
			t.Fatalf("webhook answered %d", code)
		}
		do(t, ctx, "wait for the reply",
			chromedp.Poll[chromedp.Void](`document.querySelector(".thread").textContent.includes("Please call me after 6pm")`,
				chromedp.WithPollingTimeout(30*time.Second)),
		)
		if still, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded === true`)); err != nil || !still {
			t.Errorf("the page reloaded (%v)", err)
		}
	})

	t.Run("technician at 360 px", func(t *testing.T) {
		submit(t, ctx, "sign out", ".signout button")
		do(t, ctx, "sign in as Paula",
			chromedp.EmulateViewport(360, 780),
			chromedp.SendKeys(chromedp.CSS("#token"), e.tok["paula"]),
		)
		submit(t, ctx, "sign in as Paula", "main form button[type=submit]")
		do(t, ctx, "day", chromedp.WaitVisible(chromedp.CSS(".visits")))
		day := text(t, ctx, "main")
		if !strings.Contains(day, fmt.Sprintf("Ticket #%d", e.critical)) || strings.Contains(day, fmt.Sprintf("Ticket #%d", e.offered)) {
			t.Errorf("Paula's day shows:\n%s", day)
		}
		checkPage(t, ctx, "day")
		do(t, ctx, "mark done",
			chromedp.EmulateViewport(360, 780),
			chromedp.SetValue(chromedp.CSS(".visit select"), "part_replaced"),
			chromedp.SendKeys(chromedp.CSS(".visit textarea"), "relay replaced"),
		)
		submit(t, ctx, "mark done", ".visit form button")
		do(t, ctx, "marked", chromedp.WaitVisible(chromedp.CSS(".flash")))
		if tk := must(e.store.GetTicket(e.ctx, e.critical)); tk.Status != proactive.TicketClosed || tk.Outcome != proactive.OutcomePartReplaced {
			t.Errorf("after the visit the ticket is %s (%s), want closed with part_replaced (no SMS consent: no survey)", tk.Status, tk.Outcome)
		}
	})
	t.Logf("screenshots in %s", t.ArtifactDir())
}

// TestBrowserChart checks the ticket page's chart of telemetry read from a
// real influxd: uPlot draws it, with points, at both widths, and the page
// passes axe.
func TestBrowserChart(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), withInflux(t))
	ctx := newBrowser(t)
	base := e.plainServer()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+fmt.Sprintf("/tickets/%d", e.offered)),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.tok["dispatcher"]),
	)
	submit(t, ctx, "sign in", "main form button[type=submit]")
	do(t, ctx, "chart drawn", chromedp.WaitVisible(chromedp.CSS(`.plot.drawn canvas`)))
	points := must(chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(".plot.drawn").dataset.points`)))
	if points == "" || points == "0" {
		t.Errorf("the chart drew %q points", points)
	}
	if svg := must(chromedp.Run(ctx, chromedp.Evaluate[bool](`getComputedStyle(document.querySelector(".svgplot")).display === "none"`))); !svg {
		t.Error("the server's SVG still shows beside the chart")
	}
	checkPage(t, ctx, "ticket-chart")
	// At a phone's width the chart follows the figure.
	do(t, ctx, "phone", chromedp.EmulateViewport(360, 780))
	do(t, ctx, "chart narrows", chromedp.Poll[chromedp.Void](
		`document.querySelector(".plot.drawn .uplot").offsetWidth <= document.querySelector(".plot.drawn").clientWidth`,
		chromedp.WithPollingTimeout(15*time.Second)))
	do(t, ctx, "reset", chromedp.EmulateViewport(1440, 900))

	// Without scripts, the server's drawing shows.
	do(t, ctx, "no script", chromedp.Navigate(base+fmt.Sprintf("/tickets/%d?span=3d", e.offered)),
		chromedp.WaitVisible(chromedp.CSS(".plot.drawn canvas")),
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll(".plot").forEach(f => f.classList.remove("drawn"))`),
		chromedp.WaitVisible(chromedp.CSS(".svgplot svg polyline")))
}

// TestBrowserPages checks the schedule, the fleet and the rules pages in
// the browser: axe at both widths, and a reassignment on the schedule made
// with the keyboard alone.
func TestBrowserPages(t *testing.T) {
	seen := telemetryFunc{latest: latestMap{
		"fridge-1": {{Metric: "compressor_current", Value: 6, Time: monday0830.Add(-5 * time.Minute)}}}}
	engine := ruleEngineFunc{rules: func() []rules.RuleStatus {
		return []rules.RuleStatus{
			{Name: "compressor_wear", Component: "compressor", Severity: proactive.SeverityWarning, File: "rules/fridge.yaml", Line: 3,
				Health: "ok", Evaluations: 1200, Pending: 2, Firing: 1},
			{Name: "door_seal", Component: "door", Severity: proactive.SeverityCritical, File: "rules/fridge.yaml", Line: 14, Health: "error",
				LastError: "avg: window 7d exceeds the lookback of 3d", LastErrorAt: monday0830.Add(-time.Hour), Evaluations: 40, Errors: 40},
		}
	}}
	e := newEnv(t, testenv.SQLite(t), func(o *web.Options) { o.Telemetry, o.Rules = seen, engine })
	must(0, e.store.SaveBacktest(e.ctx, devices.Backtest{Rule: "compressor_wear", RunAt: monday0830.Add(-time.Hour),
		From: monday0830.AddDate(0, 0, -30), To: monday0830, Fires: 12, Devices: 9, TicketsPerDay: 0.4,
		Scored: true, Failures: 5, Detected: 4, Recall: 0.8, MedianLead: 50 * time.Hour, FalseAlarms: 3}))
	leo := must(e.store.GetTechnician(e.ctx, "tech-lyon"))
	leo.ServiceArea = []string{"69", "75"} // so that Paula's visit may move to him
	must(e.store.UpdateTechnician(e.ctx, leo))
	slots := must(e.n.Slots(e.ctx, e.offered))
	must(e.n.Book(e.ctx, e.offered, slots[0], "test"))
	ctx := newBrowser(t)
	base := e.plainServer()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/schedule"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.tok["dispatcher"]),
	)
	submit(t, ctx, "sign in", "main form button[type=submit]")
	do(t, ctx, "schedule", chromedp.WaitVisible(chromedp.CSS(".techweek")))
	checkPage(t, ctx, "schedule")

	// Move the visit with the keyboard: open the details, move to the
	// select, choose Leo, move to the button and press it.
	active := func() string {
		return must(chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id || document.activeElement.tagName`)))
	}
	do(t, ctx, "open reassign", chromedp.Focus(chromedp.CSS(".visit-slot summary")), chromedp.KeyEvent(kb.Enter))
	if open := must(chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(".visit-slot details").open`))); !open {
		t.Fatal("Enter on the summary did not open the form to move the visit")
	}
	do(t, ctx, "to the select", chromedp.KeyEvent("\t"))
	if a := active(); !strings.HasPrefix(a, "r-") {
		t.Fatalf("Tab from the summary went to %s, want the technician select", a)
	}
	do(t, ctx, "choose Leo", chromedp.KeyEvent(kb.ArrowUp), chromedp.KeyEvent("\t"))
	if a := active(); a != "BUTTON" {
		t.Fatalf("Tab from the select went to %s, want the button", a)
	}
	do(t, ctx, "press Move visit", chromedp.Evaluate[chromedp.Void](`window.stalePage = true`), chromedp.KeyEvent(kb.Enter))
	waitNewPage(t, ctx, "back on the schedule")
	if flash, want := text(t, ctx, ".flash"), fmt.Sprintf("The visit of ticket #%d moved to Leo (tech-lyon).", e.offered); flash != want {
		t.Errorf("flash %q, want %q", flash, want)
	}
	if tk := must(e.store.GetTicket(e.ctx, e.offered)); tk.Technician != "tech-lyon" {
		t.Errorf("after the keyboard move the ticket is with %q, want tech-lyon", tk.Technician)
	}
	if apps := must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: e.offered})); len(apps) != 1 || apps[0].Technician != "tech-lyon" {
		t.Errorf("after the keyboard move the visits are %+v, want Leo's", apps)
	}
	if loc := must(chromedp.Run(ctx, chromedp.Location())); !strings.Contains(loc, "/schedule?from=") {
		t.Errorf("after moving the visit at %s, want the schedule", loc)
	}
	checkPage(t, ctx, "schedule-moved")

	do(t, ctx, "fleet", chromedp.Navigate(base+"/fleet"), chromedp.WaitVisible(chromedp.CSS("table.stack")))
	if s := text(t, ctx, "table.stack"); !strings.Contains(s, "5 min ago") {
		t.Errorf("fleet shows:\n%s", s)
	}
	checkPage(t, ctx, "fleet")
	do(t, ctx, "rules", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS("table.stack")))
	if s := text(t, ctx, "table.stack"); !strings.Contains(s, "exceeds the lookback") || !strings.Contains(s, "caught 4 of 5 failures (80%)") {
		t.Errorf("rules show:\n%s", s)
	}
	checkPage(t, ctx, "rules")
	do(t, ctx, "board", chromedp.Navigate(base+"/?region=75&age=1d"), chromedp.WaitVisible(chromedp.CSS("#board")))
	checkPage(t, ctx, "board-filtered")
	t.Logf("screenshots in %s", t.ArtifactDir())
}

// TestBrowserFollowUp: a customer's CALL puts a follow-up on the board;
// the dispatcher marks it handled with a note and it leaves the board,
// the timeline saying who handled it.
func TestBrowserFollowUp(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), func(*web.Options) {})
	if code := e.reply("+33611111111", "CALL"); code != 200 {
		t.Fatalf("webhook answered %d", code)
	}
	ctx := newBrowser(t)
	base := e.plainServer()
	item := fmt.Sprintf("#follow-up-%d", e.offered)
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.tok["dispatcher"]),
	)
	submit(t, ctx, "sign in", "main form button[type=submit]")
	do(t, ctx, "follow-up on the board", chromedp.WaitVisible(chromedp.CSS(item)))
	if s := text(t, ctx, item); !strings.Contains(s, "asked to be called back") || !strings.Contains(s, fmt.Sprintf("#%d", e.offered)) {
		t.Errorf("follow-up shows:\n%s", s)
	}
	if s := text(t, ctx, ".columns"); !strings.Contains(s, "Follow up: Call requested") {
		t.Errorf("the ticket's card does not say it needs a follow-up:\n%s", s)
	}
	checkPage(t, ctx, "board-follow-up")
	do(t, ctx, "note", chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#follow-up-note-%d", e.offered)), "called, visit Thursday"))
	submit(t, ctx, "mark handled", item+" button")
	do(t, ctx, "handled", chromedp.WaitVisible(chromedp.CSS(".flash")))
	if n := must(chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".follow-ups").length`))); n != 0 {
		t.Errorf("the follow-up is still on the board")
	}
	tk := must(e.store.GetTicket(e.ctx, e.offered))
	last := tk.Timeline[len(tk.Timeline)-1]
	if tk.FollowUp != nil || last.Kind != proactive.TicketEventFollowUp || !strings.Contains(string(last.Body), "called, visit Thursday") ||
		!strings.Contains(last.Actor, "dispatcher") {
		t.Errorf("after handling: follow-up %+v, last entry %s by %s: %s", tk.FollowUp, last.Kind, last.Actor, last.Body)
	}
	do(t, ctx, "ticket page", chromedp.Navigate(fmt.Sprintf("%s/tickets/%d", base, e.offered)), chromedp.WaitVisible(chromedp.CSS(".timeline")))
	if s := text(t, ctx, ".timeline"); !strings.Contains(s, "Follow up: the customer asked to be called back") ||
		!strings.Contains(s, "Follow-up handled (Call requested): called, visit Thursday") {
		t.Errorf("the ticket's timeline lacks the handling:\n%s", s)
	}
}

// TestBrowserMeasures: the measures page, reached from the navigation,
// passes axe and fits every viewport, with a group's row and the choice of
// grouping.
func TestBrowserMeasures(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), func(*web.Options) {})
	e.surveyed()
	ctx := newBrowser(t)
	base := e.plainServer()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.tok["dispatcher"]),
	)
	submit(t, ctx, "sign in", "main form button[type=submit]")
	do(t, ctx, "board", chromedp.WaitVisible(chromedp.CSS("#board")))
	submit(t, ctx, "measures", `nav[aria-label="Main"] a[href="/measures"]`)
	do(t, ctx, "measures page", chromedp.WaitVisible(chromedp.CSS("table.measures")))
	if s := text(t, ctx, "table.measures"); !strings.Contains(s, "2026-03") {
		t.Errorf("measures by month show:\n%s", s)
	}
	checkPage(t, ctx, "measures")
	submit(t, ctx, "by model", `a[href="/measures?by=model"]`)
	do(t, ctx, "by model", chromedp.WaitVisible(chromedp.CSS("table.measures")))
	if s := text(t, ctx, "table.measures"); !strings.Contains(s, "fridge-a200") {
		t.Errorf("measures by model show:\n%s", s)
	}
	checkPage(t, ctx, "measures-by-model")
}
