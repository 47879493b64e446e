package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/browsertest"
	"github.com/proactivehq/proactive/internal/testenv"
)

// TestBrowserOnRealServer drives the dispatcher's web page in headless
// Chromium against the real `proactive serve`: a seeded SQLite database, a
// real influxd with Flux (the chart reads with it), the embedded broker and
// the console sender. Telemetry over MQTT fires a rule, a ticket opens and
// the offer goes out; in the browser the dispatcher signs in, finds the
// ticket on the board, filters, opens it, sees the chart drawn from
// InfluxDB, assigns a technician (on the timeline and in the API), and a
// signed reply from `proactive sms reply` appears on the open page without
// a reload. A backtest of the rule, saved, shows on the rules page.
// Screenshots of each page go to the test's artifact directory.
func TestBrowserOnRealServer(t *testing.T) {
	browsertest.Chromium(t) // before t.Parallel: a missing browser skips at once
	t.Parallel()
	dir := t.TempDir()
	const rule = "rules:\n  - name: compressor_hot\n    component: compressor\n    severity: warning\n" +
		"    when: compressor_current > 10\n    summary: \"Compressor current {{ .Metrics.compressor_current }} A\"\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	influx := testenv.Influx(t) // Flux on: the ticket page's chart queries with it
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	env["PROACTIVE_PUBLIC_URL"] = "http://" + env["PROACTIVE_HTTP_ADDR"]
	env["PROACTIVE_TWILIO_AUTH_TOKEN"] = "browser-e2e-auth-token"

	const phone = "+4915550000002"
	token := seedBrowserDB(t, env["PROACTIVE_DB"], phone)
	// Two days of history before the alert: the chart shows it.
	now := time.Now()
	var lp strings.Builder
	for i := 48; i > 0; i-- {
		fmt.Fprintf(&lp, "telemetry,device_id=fridge-7,model=fridge-a1 compressor_current=%g %d\n",
			5+float64(i%7)/10, now.Add(-time.Duration(i)*time.Hour).UnixMilli())
	}
	influx.Write(t, lp.String())

	p := startServe(t, env)
	p.waitReady(t)
	base := "http://" + p.http
	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "fridge-7", false)
	publish(t, c, "devices/fridge-7/telemetry", `{"metrics": {"compressor_current": 12.5}}`)
	id := waitTicket(t, p, token, "fridge-7", "offered")

	ctx := browsertest.New(t)
	shots := t.ArtifactDir()
	card := fmt.Sprintf("#%d ", id)

	// Sign in with the token.
	brDo(t, ctx, "sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	brShot(t, ctx, shots, "signin")
	brDo(t, ctx, "type the token", chromedp.SendKeys(chromedp.CSS("#token"), token))
	brSubmit(t, ctx, "sign in", "main form button[type=submit]")

	// The board shows the ticket the rule opened.
	brDo(t, ctx, "board", chromedp.WaitVisible(chromedp.CSS("#board")))
	if board := brText(t, ctx, "#board"); !strings.Contains(board, card) {
		t.Fatalf("the board lacks ticket %d:\n%s", id, board)
	}
	brShot(t, ctx, shots, "board")

	// Filter by the rule: the ticket stays, and the address says so.
	brDo(t, ctx, "filter", chromedp.SetValue(chromedp.CSS("#f-rule"), "compressor_hot"))
	brSubmit(t, ctx, "filter", ".filters button[type=submit]")
	if loc := brMust(chromedp.Run(ctx, chromedp.Location())); !strings.Contains(loc, "rule=compressor_hot") {
		t.Errorf("filtered board at %s", loc)
	}
	if board := brText(t, ctx, "#board"); !strings.Contains(board, card) {
		t.Errorf("the filtered board lacks ticket %d:\n%s", id, board)
	}
	brShot(t, ctx, shots, "board-filtered")

	// Open it: the chart of the rule's metric, read from influxd with
	// Flux, is drawn with points.
	brSubmit(t, ctx, "open the ticket", fmt.Sprintf(`#board a[href="/tickets/%d"]`, id))
	brDo(t, ctx, "chart drawn", chromedp.WaitVisible(chromedp.CSS(".plot.drawn canvas")))
	pts := brMust(chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(".plot.drawn").dataset.points`)))
	if n, err := strconv.Atoi(pts); err != nil || n < 10 {
		t.Errorf("the chart drew %q points, want the history's (at least 10)", pts)
	}
	// And they are on the canvas: the line's blue pixels (a draw that
	// throws leaves it blank).
	if blue := brMust(chromedp.Run(ctx, chromedp.Evaluate[int](`(() => {
		const c = document.querySelector(".plot.drawn canvas");
		const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 0; i < px.length; i += 4) {
			if (px[i + 3] > 200 && px[i + 2] > 150 && px[i] < 60) n++;
		}
		return n;
	})()`))); blue < 50 {
		t.Errorf("the chart's canvas has %d pixels of the line: nothing drawn", blue)
	}
	brShot(t, ctx, shots, "ticket")

	// Assign Tess: the timeline says so, and so does the API.
	brDo(t, ctx, "assign", chromedp.SetValue(chromedp.CSS("#a-tech"), "tess"))
	brSubmit(t, ctx, "assign", `form[action$="/assign"] button`)
	brDo(t, ctx, "assigned", chromedp.WaitVisible(chromedp.CSS(".flash")))
	if s := brText(t, ctx, ".timeline"); !strings.Contains(s, "Assigned to tess") {
		t.Errorf("the timeline lacks the assignment:\n%s", s)
	}
	brShot(t, ctx, shots, "ticket-assigned")
	tk := apiTicket(t, p, token, id)
	if tk.Technician != "tess" {
		t.Errorf("the API says ticket %d is assigned to %q, want tess", id, tk.Technician)
	}
	assigned := false
	for _, e := range tk.Timeline {
		var b struct{ Technician string }
		if e.Kind == "assignment" && json.Unmarshal(e.Body, &b) == nil && b.Technician == "tess" {
			assigned = true
		}
	}
	if !assigned {
		t.Errorf("the API's timeline of ticket %d has no assignment to tess: %+v", id, tk.Timeline)
	}

	// The customer answers by SMS, through the signed webhook: the open page
	// shows it without a reload.
	brDo(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"proactive", "sms", "reply", "--from", phone, "Please call me after 6pm"}, envMap(env),
		&out, &errOut); err != nil {
		t.Fatalf("sms reply: %v\n%s", err, errOut.String())
	}
	brDoWithin(t, ctx, 40*time.Second, "the reply appears", chromedp.Poll[chromedp.Void](
		`document.querySelector(".thread").textContent.includes("Please call me after 6pm")`,
		chromedp.WithPollingTimeout(35*time.Second)))
	if still, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded === true`)); err != nil || !still {
		t.Errorf("the page reloaded to show the reply (%v)", err)
	}
	brShot(t, ctx, shots, "ticket-reply")

	// A backtest of the rule over the history: --no-save keeps it to
	// itself; saved, the rules page shows its summary.
	waitCount(t, influx, 49, 20*time.Second, p.logs)
	backtest := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(t.Context(), append([]string{"proactive", "rules", "backtest", "--from", "-3d"}, args...), envMap(env),
			&out, &errOut); err != nil {
			t.Fatalf("rules backtest %v: %v\n%s", args, err, errOut.String())
		}
		return errOut.String()
	}
	if stderr := backtest("--no-save"); strings.Contains(stderr, "saved") {
		t.Errorf("backtest --no-save says:\n%s", stderr)
	}
	if got := savedBacktests(t, env["PROACTIVE_DB"]); len(got) != 0 {
		t.Errorf("backtest --no-save saved %+v", got)
	}
	if stderr := backtest(); !strings.Contains(stderr, "summary of 1 rule(s) saved") {
		t.Errorf("backtest says:\n%s", stderr)
	}
	if b, ok := savedBacktests(t, env["PROACTIVE_DB"])["compressor_hot"]; !ok || b.Fires != 1 || b.Devices != 1 || b.Scored {
		t.Errorf("saved backtest %+v, want compressor_hot firing once on one device", b)
	}
	brDo(t, ctx, "rules page", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS("table.stack")))
	if s := brText(t, ctx, "table.stack"); !strings.Contains(s, "1 fire on 1 device") || !strings.Contains(s, "compressor_hot") {
		t.Errorf("the rules page lacks the backtest summary:\n%s", s)
	}
	brShot(t, ctx, shots, "rules")

	if logs := p.logs.String(); strings.Contains(logs, token) || strings.Contains(logs, env["PROACTIVE_TWILIO_AUTH_TOKEN"]) {
		t.Error("a secret appears in the logs")
	}
	t.Logf("screenshots in %s", shots)
}

// seedBrowserDB registers, before the platform starts, a customer who
// agreed to SMS (at any hour), their fridge in Berlin, a technician who
// repairs compressors everywhere at any time, and a dispatcher's token,
// which it returns.
func seedBrowserDB(t *testing.T, dsn, phone string) string {
	t.Helper()
	ctx := t.Context()
	store, err := devices.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	noQuiet := proactive.QuietHours{}
	brMust(store.CreateCustomer(ctx, proactive.Customer{ID: "c7", Name: "Greta", Phone: phone, Language: "en", QuietHours: &noQuiet}))
	brMust(store.RecordConsent(ctx, "c7", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWebForm, Actor: "test"}))
	brMust(store.CreateDevice(ctx, proactive.Device{ID: "fridge-7", Model: "fridge-a1", CustomerID: "c7", TimeZone: "Europe/Berlin",
		Site: proactive.Address{Line1: "Torstraße 1", City: "Berlin", PostalCode: "10115", Country: "DE"}}))
	hours := brMust(devices.ParseWeeklyHours("mon-sun 00:00-23:59"))
	brMust(store.CreateTechnician(ctx, proactive.Technician{ID: "tess", Name: "Tess", Phone: "+4915550999002", TimeZone: "Europe/Berlin",
		Skills: []string{"compressor"}, ServiceArea: []string{"*"}, Hours: hours}))
	_, token, err := devices.NewTokens(store, devices.TokenOptions{}).Create(ctx, "dispatcher-e2e", devices.RoleDispatcher, "")
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// savedBacktests reads the backtest summaries saved in the database.
func savedBacktests(t *testing.T, dsn string) map[string]devices.Backtest {
	t.Helper()
	store, err := devices.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := store.LatestBacktests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// apiTicket reads a ticket through the API with the token.
func apiTicket(t *testing.T, p *platform, token string, id int64) proactive.Ticket {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("http://%s/api/v1/tickets/%d", p.http, id), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tk proactive.Ticket
	if err := json.NewDecoder(resp.Body).Decode(&tk); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/tickets/%d: %s, %v", id, resp.Status, err)
	}
	return tk
}

// waitTicket waits until the API lists a ticket of the device in status
// and returns its id.
func waitTicket(t *testing.T, p *platform, token, device, status string) int64 {
	t.Helper()
	var last string
	return testenv.EventuallyValue(t, 0, func() (int64, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+p.http+"/api/v1/tickets?device_id="+device, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var page struct {
				Items []struct {
					ID     int64  `json:"id"`
					Status string `json:"status"`
				} `json:"items"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err == nil && len(page.Items) > 0 {
				last = page.Items[0].Status
				if last == status {
					return page.Items[0].ID, nil
				}
			}
		}
		return 0, fmt.Errorf("no %s ticket for %s (last status %q); logs:\n%s", status, device, last, tail(p.logs.String(), 4000))
	})
}

// The browser steps, from internal/browsertest (shared with web's tests).
var (
	brDo       = browsertest.Do
	brDoWithin = browsertest.DoWithin
	brSubmit   = browsertest.Submit
	brText     = browsertest.Text
	brShot     = browsertest.Shot
)

func brMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
