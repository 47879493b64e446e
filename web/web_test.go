package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/web"
)

func TestSignIn(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	b := e.browser()

	resp, page := b.get("/")
	wantStatus(t, resp, page, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/signin?next=%2F" {
		t.Errorf("redirect to %q, want the sign-in page and back", loc)
	}
	resp, page = b.get("/signin?next=%2Ftickets%2F1")
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, `<label for="token">API token</label>`, `name="csrf"`, `value="/tickets/1"`)

	resp, page = b.post("/signin", url.Values{"token": {"pat_0123456789abcdef_" + strings.Repeat("0", 64)}})
	wantStatus(t, resp, page, http.StatusUnauthorized)
	wantIn(t, page, "not valid")

	resp, page = b.post("/signin", url.Values{"token": {e.tok["dispatcher"]}, "next": {"/tickets/1"}})
	wantStatus(t, resp, page, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/tickets/1" {
		t.Errorf("signed in, redirect to %q, want /tickets/1", loc)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "proactive_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	if !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/", session)
	}
	if strings.Contains(session.Value, "pat_") || strings.Contains(e.tok["dispatcher"], session.Value) || len(session.Value) < 40 {
		t.Errorf("session cookie %q looks like the token, or is short", session.Value)
	}

	resp, page = b.get("/")
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "<h1>Tickets</h1>", fmt.Sprintf(`href="/tickets/%d"`, e.offered), "fridge-2", "Sign out")

	// Signing out ends the session for good, even with the old cookie.
	resp, page = b.post("/signout", url.Values{})
	wantStatus(t, resp, page, http.StatusSeeOther)
	replay := e.browser()
	u, _ := url.Parse(e.srv.URL)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "proactive_session", Value: session.Value}})
	resp, page = replay.get("/")
	wantStatus(t, resp, page, http.StatusSeeOther)
}

func TestSignInNeedsItsCSRFToken(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	for name, form := range map[string]url.Values{
		"no token":    {"token": {e.tok["admin"]}, "csrf": {""}},
		"wrong token": {"token": {e.tok["admin"]}, "csrf": {"forged"}},
	} {
		t.Run(name, func(t *testing.T) {
			b := e.browser()
			b.get("/signin")
			resp, page := b.post("/signin", form)
			wantStatus(t, resp, page, http.StatusForbidden)
		})
	}
	// A form posted from elsewhere carries no sign-in cookie.
	b := e.browser()
	resp, page := b.post("/signin", url.Values{"token": {e.tok["admin"]}, "csrf": {"anything"}})
	wantStatus(t, resp, page, http.StatusForbidden)
}

func TestPostWithoutCSRFIsRefused(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	b := e.signedIn("dispatcher")
	b.get(fmt.Sprintf("/tickets/%d", e.open))
	path := fmt.Sprintf("/tickets/%d/assign", e.open)
	for name, csrf := range map[string][]string{"missing": nil, "empty": {""}, "forged": {"forged"}} {
		t.Run(name, func(t *testing.T) {
			form := url.Values{"technician": {"tech-paris"}}
			if csrf != nil {
				form["csrf"] = csrf
			}
			resp, page := b.do(http.MethodPost, path, form) // as is: post would add the token
			wantStatus(t, resp, page, http.StatusForbidden)
		})
	}
	// Another session's token is no better.
	other := e.signedIn("admin")
	other.get("/")
	resp, page := b.post(path, url.Values{"technician": {"tech-paris"}, "csrf": {other.csrf}})
	wantStatus(t, resp, page, http.StatusForbidden)
	if tk := must(e.store.GetTicket(e.ctx, e.open)); tk.Technician != "" {
		t.Fatalf("a refused form assigned the ticket to %q", tk.Technician)
	}
	// Without a session, a POST is refused too.
	resp, page = e.browser().post(path, url.Values{"technician": {"tech-paris"}, "csrf": {b.csrf}})
	wantStatus(t, resp, page, http.StatusForbidden)
}

func TestRoles(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	must(e.store.Assign(e.ctx, e.open, "tech-paris", "test"))
	paula := e.signedIn("paula")

	resp, page := paula.get("/")
	wantStatus(t, resp, page, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/day" {
		t.Errorf("technician's home redirects to %q, want /day", loc)
	}
	resp, page = paula.get(fmt.Sprintf("/tickets/%d", e.open))
	wantStatus(t, resp, page, http.StatusOK)
	wantNotIn(t, page, "/assign", "/message", "/close", "/cancel", "Alice Martin", "+336")
	resp, page = paula.get(fmt.Sprintf("/tickets/%d", e.critical))
	wantStatus(t, resp, page, http.StatusNotFound)

	for _, action := range []string{"assign", "comment", "message", "close", "cancel", "book"} {
		t.Run(action, func(t *testing.T) {
			resp, page := paula.post(fmt.Sprintf("/tickets/%d/%s", e.open, action),
				url.Values{"technician": {"tech-paris"}, "text": {"hi"}, "note": {"x"}, "outcome": {"fault_confirmed"}})
			wantStatus(t, resp, page, http.StatusForbidden)
		})
	}
	tk := must(e.store.GetTicket(e.ctx, e.open))
	if tk.Status != proactive.TicketOpen || len(tk.Timeline) != 2 {
		t.Errorf("refused actions changed the ticket: %s, %d events", tk.Status, len(tk.Timeline))
	}
	resp, page = paula.get("/day?technician=tech-lyon")
	wantStatus(t, resp, page, http.StatusForbidden)

	// Admins and dispatchers both run the desk.
	for _, who := range []string{"admin", "dispatcher"} {
		resp, page := e.signedIn(who).get(fmt.Sprintf("/tickets/%d", e.critical))
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, "/assign", "/cancel", "Bruno Petit")
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	b := e.signedIn("dispatcher")
	if resp, page := b.get("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("board: %s\n%s", resp.Status, excerpt(page))
	}
	toks := must(e.tokens.List(e.ctx))
	for _, tk := range toks {
		if tk.Name == "dispatcher" {
			must(e.tokens.Revoke(e.ctx, tk.ID))
		}
	}
	e.clock.Add(11 * time.Second)
	resp, page := b.get("/")
	wantStatus(t, resp, page, http.StatusSeeOther)
}

func TestActions(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		b := e.signedIn("dispatcher")
		ticketPath := fmt.Sprintf("/tickets/%d", e.offered)
		resp, page := b.get(ticketPath)
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, "compressor wearing out on fridge-1", "Alice Martin", "compressor_current", "Messages",
			`<legend>Book a visit for the customer</legend>`, "Reply", `<dd id="channel">SMS · consent: SMS yes, WhatsApp no, email no</dd>`,
			`Us (Offer) · SMS · <time`)

		t.Run("assign", func(t *testing.T) {
			resp, page := b.post(ticketPath+"/assign", url.Values{"technician": {"tech-lyon"}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			tk := must(e.store.GetTicket(e.ctx, e.offered))
			if tk.Technician != "tech-lyon" {
				t.Fatalf("technician = %q, want tech-lyon", tk.Technician)
			}
			last := tk.Timeline[len(tk.Timeline)-1]
			if last.Kind != proactive.TicketEventAssignment || last.Actor != "dispatcher" {
				t.Errorf("last event %s by %s, want an assignment by dispatcher", last.Kind, last.Actor)
			}
			// The page's own refresh, landing between the POST and the
			// redirect's GET, leaves the confirmation to the page.
			req, _ := http.NewRequestWithContext(e.ctx, http.MethodGet, e.srv.URL+ticketPath, nil)
			req.Header.Set("X-Requested-With", "fetch")
			refresh, err := b.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(refresh.Body)
			refresh.Body.Close()
			wantNotIn(t, string(body), "Ticket assigned to tech-lyon.")
			_, page = b.get(ticketPath)
			wantIn(t, page, "Ticket assigned to tech-lyon.", "Assigned to Leo", "Assigned to tech-lyon")
		})
		t.Run("assign unknown technician", func(t *testing.T) {
			resp, page := b.post(ticketPath+"/assign", url.Values{"technician": {"nobody"}})
			wantStatus(t, resp, page, http.StatusNotFound)
		})
		t.Run("comment", func(t *testing.T) {
			resp, page := b.post(ticketPath+"/comment", url.Values{"text": {"Customer prefers mornings"}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			_, page = b.get(ticketPath)
			wantIn(t, page, "Customer prefers mornings")
		})
		t.Run("empty comment", func(t *testing.T) {
			resp, page := b.post(ticketPath+"/comment", url.Values{"text": {"  "}})
			wantStatus(t, resp, page, http.StatusUnprocessableEntity)
			wantIn(t, page, `role="alert"`)
		})
		t.Run("message", func(t *testing.T) {
			resp, page := b.post(ticketPath+"/message", url.Values{"text": {"We can also come on Saturday."}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			if err := e.n.Poll(e.ctx); err != nil {
				t.Fatal(err)
			}
			got := e.sms.to("+33611111111")
			if len(got) != 2 || !strings.Contains(got[1], "We can also come on Saturday.") {
				t.Fatalf("SMS to Alice: %q", got)
			}
			_, page = b.get(ticketPath)
			wantIn(t, page, "We can also come on Saturday.")
		})
		var slot string
		t.Run("book", func(t *testing.T) {
			_, page := b.get(ticketPath)
			m := strings.Index(page, `name="slot" value="`)
			if m < 0 {
				t.Fatalf("no slot on the page\n%s", excerpt(page))
			}
			rest := page[m+len(`name="slot" value="`):]
			slot = rest[:strings.IndexByte(rest, '"')]
			resp, page := b.post(ticketPath+"/book", url.Values{"slot": {slot}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			tk := must(e.store.GetTicket(e.ctx, e.offered))
			if tk.Status != proactive.TicketScheduled || tk.Technician != "tech-paris" {
				t.Fatalf("after booking: %s, technician %q; want scheduled with tech-paris", tk.Status, tk.Technician)
			}
			apps := must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: e.offered}))
			if len(apps) != 1 || apps[0].Status != "booked" || apps[0].BookedBy != "dispatcher" {
				t.Fatalf("appointments %+v", apps)
			}
		})
		t.Run("book a taken slot", func(t *testing.T) {
			resp, page := b.post(fmt.Sprintf("/tickets/%d/book", e.critical), url.Values{"slot": {slot}})
			wantStatus(t, resp, page, http.StatusConflict)
		})
		t.Run("close before the visit", func(t *testing.T) {
			resp, page := b.post(ticketPath+"/close", url.Values{"outcome": {"fault_confirmed"}})
			wantStatus(t, resp, page, http.StatusConflict)
			wantIn(t, page, "scheduled")
		})
		t.Run("visit done by the technician", func(t *testing.T) {
			paula := e.signedIn("paula")
			resp, page := paula.get("/day")
			wantStatus(t, resp, page, http.StatusOK)
			wantIn(t, page, "My day", "10 rue Oberkampf", fmt.Sprintf("Ticket #%d", e.offered), "Mark done")
			wantNotIn(t, page, fmt.Sprintf("Ticket #%d", e.critical))
			// The technician sees whom they visit, how to call them and where
			// to go; the map is a link, nothing loaded by the page.
			wantIn(t, page, "Alice Martin", `href="tel:&#43;33611111111"`,
				`href="https://www.openstreetmap.org/search?query=10%20rue%20Oberkampf%2C%2075011%20Paris%2C%20FR"`)
			resp, page = paula.get(ticketPath)
			wantStatus(t, resp, page, http.StatusOK)
			wantIn(t, page, "Alice Martin", `href="tel:&#43;33611111111"`, "https://www.openstreetmap.org/search?query=10%20rue%20Oberkampf")
			resp, page = paula.post(ticketPath+"/visit", url.Values{"outcome": {"part_replaced"}, "notes": {"new relay"}, "next": {"/day"}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			if loc := resp.Header.Get("Location"); loc != "/day" {
				t.Errorf("redirect to %q, want back to /day", loc)
			}
			tk := must(e.store.GetTicket(e.ctx, e.offered))
			if tk.Status != proactive.TicketVisited {
				t.Fatalf("after the visit: %s, want visited (survey pending)", tk.Status)
			}
		})
		t.Run("close with outcome", func(t *testing.T) {
			resp, page := b.post(ticketPath+"/close", url.Values{"outcome": {"part_replaced"}, "notes": {"relay replaced"}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			tk := must(e.store.GetTicket(e.ctx, e.offered))
			if tk.Status != proactive.TicketClosed || tk.Outcome != proactive.OutcomePartReplaced {
				t.Fatalf("after closing: %s, %s", tk.Status, tk.Outcome)
			}
		})
		t.Run("cancel", func(t *testing.T) {
			resp, page := b.post(fmt.Sprintf("/tickets/%d/cancel", e.open), url.Values{"note": {"duplicate"}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			if tk := must(e.store.GetTicket(e.ctx, e.open)); tk.Status != proactive.TicketCancelled {
				t.Fatalf("after cancelling: %s", tk.Status)
			}
		})
		t.Run("message without consent", func(t *testing.T) {
			resp, page := b.post(fmt.Sprintf("/tickets/%d/message", e.critical), url.Values{"text": {"hello"}})
			wantStatus(t, resp, page, http.StatusConflict)
		})
	})
}

func TestTechnicianSeesOnlyTheirVisits(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	slots := must(e.n.Slots(e.ctx, e.offered))
	if len(slots) == 0 {
		t.Fatal("no slots")
	}
	must(e.n.Book(e.ctx, e.offered, slots[0], "test"))
	day := slots[0].Start.In(paris).Format("2006-01-02")

	leo := e.signedIn("leo")
	resp, page := leo.get("/day?date=" + day)
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "No visits this day.")
	wantNotIn(t, page, "Oberkampf")
	resp, page = leo.get(fmt.Sprintf("/tickets/%d", e.offered))
	wantStatus(t, resp, page, http.StatusNotFound)
	resp, page = leo.get("/day?technician=tech-paris")
	wantStatus(t, resp, page, http.StatusForbidden)
	leo.get("/day")
	resp, page = leo.post(fmt.Sprintf("/tickets/%d/visit", e.offered), url.Values{"outcome": {"fault_confirmed"}})
	wantStatus(t, resp, page, http.StatusNotFound)
	if tk := must(e.store.GetTicket(e.ctx, e.offered)); tk.Status != proactive.TicketScheduled {
		t.Fatalf("another technician moved the ticket to %s", tk.Status)
	}

	paula := e.signedIn("paula")
	resp, page = paula.get("/day?date=" + day)
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "10 rue Oberkampf", "Mark done")

	// A dispatcher chooses whose day to see.
	disp := e.signedIn("dispatcher")
	resp, page = disp.get("/day")
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, `<label for="d-tech">Technician</label>`, `<option value="tech-paris"`)
	resp, page = disp.get("/day?technician=tech-paris&date=" + day)
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "Paula's day", "10 rue Oberkampf")
}

func TestBoardFilters(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		b := e.signedIn("dispatcher")
		card := func(id int64) string { return fmt.Sprintf(`href="/tickets/%d"`, id) }
		for _, c := range []struct {
			query      string
			want, not  []int64
			wantStatus int
		}{
			{"", []int64{e.offered, e.open, e.critical}, nil, 200},
			{"?severity=critical", []int64{e.critical}, []int64{e.offered, e.open}, 200},
			{"?rule=fan_wear", []int64{e.open}, []int64{e.offered, e.critical}, 200},
			{"?status=offered", []int64{e.offered}, []int64{e.open, e.critical}, 200},
			{"?status=all&q=FRIDGE-2", []int64{e.open, e.critical}, []int64{e.offered}, 200},
			{"?q=" + url.QueryEscape(fmt.Sprintf("#%d", e.critical)), []int64{e.critical}, []int64{e.offered}, 200},
			{"?q=100%25", nil, []int64{e.offered, e.open, e.critical}, 200},
			{"?status=finished", nil, []int64{e.offered, e.open, e.critical}, 200},
			{"?status=bogus", nil, nil, 422},
			{"?severity=high", nil, nil, 422},
			{"?region=75", []int64{e.offered, e.open, e.critical}, nil, 200},
			{"?region=75+01", []int64{e.offered, e.open, e.critical}, nil, 200},
			{"?region=69", nil, []int64{e.offered, e.open, e.critical}, 200},
			{"?region=7%25", nil, nil, 422},
			{"?age=1d&severity=warning", []int64{e.offered, e.open}, []int64{e.critical}, 200},
			{"?age=gt7d", nil, []int64{e.offered, e.open, e.critical}, 200},
			{"?age=old", nil, nil, 422},
		} {
			t.Run(c.query, func(t *testing.T) {
				resp, page := b.get("/" + c.query)
				wantStatus(t, resp, page, c.wantStatus)
				for _, id := range c.want {
					wantIn(t, page, card(id))
				}
				for _, id := range c.not {
					wantNotIn(t, page, card(id))
				}
			})
		}
		t.Run("a week on", func(t *testing.T) {
			e.clock.Add(8 * 24 * time.Hour)
			b := e.signedIn("dispatcher") // the last session has ended meanwhile
			_, page := b.get("/?age=gt7d&region=75")
			wantIn(t, page, card(e.offered), card(e.open), card(e.critical), `<option value="gt7d" selected>`, `value="75"`)
			_, page = b.get("/?age=7d")
			wantNotIn(t, page, card(e.offered), card(e.open), card(e.critical))
		})
	})
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	b := e.browser()
	_, page := b.get("/signin")
	for _, name := range []string{"app.css", "app.js"} {
		i := strings.Index(page, "/static/"+name+"?v=")
		if i < 0 {
			t.Fatalf("page does not link %s", name)
		}
		link := page[i : i+strings.IndexByte(page[i:], '"')]
		resp, body := b.get(link)
		wantStatus(t, resp, body, http.StatusOK)
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age") {
			t.Errorf("%s: Cache-Control %q", name, cc)
		}
		if len(body) < 200 {
			t.Errorf("%s is %d bytes", name, len(body))
		}
	}
	resp, _ := b.get("/signin")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("page Cache-Control %q, want no-store", cc)
	}
}

// TestMountedAtRoot checks the wiring cmd/proactive uses: the pages mounted
// at / of the chi router beside the routes it serves itself.
func TestMountedAtRoot(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	r.Mount("/", web.New(web.Options{Store: e.store, Tokens: e.tokens, Outreach: e.n}))
	srv := httptest.NewServer(r)
	defer srv.Close()
	for path, want := range map[string]int{"/healthz": 200, "/signin": 200, "/static/app.css": 200, "/nope": 303,
		"/static/": 404, "/static/nope.css": 404} {
		req, _ := http.NewRequestWithContext(e.ctx, http.MethodGet, srv.URL+path, nil)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	b := e.signedIn("dispatcher")
	e.clock.Add(11 * time.Hour)
	resp, page := b.get("/")
	wantStatus(t, resp, page, http.StatusOK) // used within the idle limit
	e.clock.Add(12*time.Hour + time.Minute)
	resp, page = b.get("/")
	wantStatus(t, resp, page, http.StatusSeeOther)
}

func TestSignInStaysOnSite(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	for _, next := range []string{"//evil.example/x", "https://evil.example/", `/\evil.example`, "/signin", "javascript:alert(1)"} {
		t.Run(next, func(t *testing.T) {
			b := e.browser()
			b.get("/signin")
			resp, page := b.post("/signin", url.Values{"token": {e.tok["admin"]}, "next": {next}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			if loc := resp.Header.Get("Location"); loc != "/" {
				t.Errorf("next=%q: redirect to %q, want /", next, loc)
			}
		})
	}
}

// Failed sign-ins are limited per client address: past the limit sign-in
// answers 429 with Retry-After, even for a valid token from that address.
func TestSignInFailuresLimited(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), func(o *web.Options) { o.SignInFailures = 3 })
	b := e.browser()
	b.get("/signin")
	for range 3 {
		resp, page := b.post("/signin", url.Values{"token": {"pat_0123456789abcdef_" + strings.Repeat("0", 64)}})
		wantStatus(t, resp, page, http.StatusUnauthorized)
	}
	resp, page := b.post("/signin", url.Values{"token": {e.tok["admin"]}})
	wantStatus(t, resp, page, http.StatusTooManyRequests)
	wantIn(t, page, "Too many failed sign-ins")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// While the database is down a page answers 503 with Retry-After, not 500.
func TestDatabaseDownIs503(t *testing.T) {
	pu, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, pu.Host)
	pu.Host = proxy.Addr()
	e := newEnv(t, pu.String())
	b := e.signedIn("dispatcher")
	proxy.Refuse()
	resp, page := b.get("/")
	wantStatus(t, resp, page, http.StatusServiceUnavailable)
	wantIn(t, page, "database is unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}
