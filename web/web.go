// Package web is the field-service team's web page, served at / by the same
// binary as the API: sign-in with an API token, the ticket board (filters
// by status, rule, severity, region and age, and search), a ticket's whole
// story with a chart of its rule's metrics around the alert and the actions
// a dispatcher takes on it, the schedule (technicians × 7 days, visits,
// free time, moving a visit to another technician), a technician's day on a phone, the fleet (last
// seen, open tickets) and the rules' state.
//
// Pages are rendered on the server with html/template and work without
// JavaScript: every action is a plain form POST answered with a redirect
// (303) to the page it changed, and the chart is an SVG drawn on the
// server. Small embedded scripts add what needs them: the board and the
// ticket's story refresh themselves every 10 seconds, and on the ticket
// page uPlot (from npm, copied into static/ by `make web-assets`, loaded
// there only) makes the chart interactive. Assets are embedded; nothing is
// loaded from elsewhere, so sites can run offline.
//
// # Sessions and CSRF
//
// Signing in exchanges an API token (see devices.Tokens) for a session: the
// browser keeps a random session id in a Secure, HttpOnly, SameSite=Strict
// cookie, and the server keeps the token's id, role and technician against
// it, never the token itself. Sessions live in memory: a restart signs
// everyone out. Every form carries the session's CSRF token, and every POST
// without the right one is refused with 403, as is sign-in without the
// pre-session cookie's.
//
// # The customer's page
//
// /c/{code} is the customer's view of one ticket behind the link the SMS
// carry (see customer.go): outside the sign-in, its own layout and
// language, the code as its only key.
//
// # Roles
//
// Admins and dispatchers see everything. A technician sees their own day,
// and the tickets assigned to them (any other answers 404, as in the API);
// of the actions, they may only record their own visits as done.
package web

import (
	"context"
	"embed"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/go-chi/httprate"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/rules"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Outreach is what the pages need of the SMS conversation and the
// technicians' calendars; *notify.Notifier satisfies it. Each method may
// block on the database; errors carry a proactive.Error code.
type Outreach interface {
	// Slots lists the free visit slots for a ticket now, earliest first.
	Slots(ctx context.Context, ticket int64) ([]notify.Slot, error)
	// Book books one of Slots for the ticket on the customer's behalf.
	// EConflict when the slot was taken meanwhile.
	Book(ctx context.Context, ticket int64, s notify.Slot, actor string) (notify.Appointment, error)
	// VisitDoneBy records the ticket's booked visit as made, with its
	// outcome, by actor; technician, when not empty, must be the visit's
	// (EForbidden).
	VisitDoneBy(ctx context.Context, ticket int64, technician string, outcome proactive.Outcome, notes, actor string) (notify.Appointment, error)
	// Reassign moves the ticket's upcoming booked visit, at the same time,
	// to another technician and assigns the ticket to them. EConflict when
	// the technician is not free then; EInvalid when they do not repair
	// the component or serve the site; ENotFound without a booked visit.
	Reassign(ctx context.Context, ticket int64, technician, actor string) (notify.Appointment, error)
	// SendMessage queues a free-text SMS to the ticket's customer.
	SendMessage(ctx context.Context, ticket int64, actor, text string) (int64, error)
	// Appointments lists visits, earliest first.
	Appointments(ctx context.Context, f notify.AppointmentFilter) ([]notify.Appointment, error)
	// Messages lists a ticket's outgoing messages, oldest first.
	Messages(ctx context.Context, ticket int64, customer string) ([]notify.OutboundMessage, error)
	// Approve lets a ticket in review text its customer (or moves it to
	// open when the customer cannot be texted). EConflict when it is not
	// in review.
	Approve(ctx context.Context, ticket int64, actor string) (proactive.Ticket, error)
	// Dismiss closes an open or review ticket as a false alarm.
	Dismiss(ctx context.Context, ticket int64, actor, note string) (proactive.Ticket, error)
	// Trust returns each rule's measured trust, by rule.
	Trust(ctx context.Context) (map[string]notify.Trust, error)
	// Outcomes computes the survey and fix measures grouped by month,
	// model or rule (devices.ByNone: all tickets in one group).
	Outcomes(ctx context.Context, by devices.GroupBy) ([]devices.Outcomes, error)
}

var _ Outreach = (*notify.Notifier)(nil)

// RuleEngine reports the state of the loaded rules; *rules.Engine satisfies
// it. Rules must not block: it is called while a page renders.
type RuleEngine interface {
	// Rules returns every loaded rule's state, in load order.
	Rules() []rules.RuleStatus
	// Alerts returns the pending and firing alerts, by device then rule.
	Alerts() []rules.AlertStatus
}

var _ RuleEngine = (*rules.Engine)(nil)

// Options configure the pages. Store and Tokens are required; a nil
// Outreach hides the actions that need it (booking, messages, visits and
// the schedule).
// Other zero fields get the defaults given on each.
type Options struct {
	Store *devices.Store
	// Customers serves the customer's page behind the links the SMS carry
	// (/c/{code}, no sign-in); nil answers every link with the page that
	// says it does not work.
	Customers CustomerPages
	// Tokens authenticates sign-ins; share the process's one (the API's), so
	// that a revocation ends its sessions at once.
	Tokens   *devices.Tokens
	Outreach Outreach
	// Telemetry draws the ticket page's chart and the fleet's last-seen
	// times; nil leaves them out.
	Telemetry Telemetry
	// Rules is the rule engine, for the rules page; nil shows only the
	// rules tickets name.
	Rules RuleEngine
	// Logger gets internal errors, once each; default discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Location is the dispatchers' time zone for the times pages show;
	// default time.Local. A technician's day is in the technician's zone.
	Location *time.Location
	// SessionIdle ends a session unused this long, default 12h;
	// SessionMax ends any session this old, default 7 days.
	SessionIdle time.Duration
	SessionMax  time.Duration
	// MaxSessions bounds the sessions kept, default 10,000; signing in
	// beyond it ends the least recently used one.
	MaxSessions int
	// InsecureCookies leaves the Secure flag off the cookies, for a site
	// served over plain HTTP on a name other than localhost (browsers keep
	// Secure cookies of http://localhost). Leave it false behind HTTPS.
	InsecureCookies bool
	// RefreshEvery is how often the board's script reloads it, default 10s.
	RefreshEvery time.Duration
	// SignInFailures is how many failed sign-ins one client address may
	// make a minute, default 30; past it sign-in answers 429 until the
	// minute moves on, so that guessing tokens goes nowhere.
	SignInFailures int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = 12 * time.Hour
	}
	if o.SessionMax <= 0 {
		o.SessionMax = 7 * 24 * time.Hour
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10_000
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = 10 * time.Second
	}
	if o.SignInFailures <= 0 {
		o.SignInFailures = 30
	}
	return o
}

// server holds the handlers' dependencies.
type server struct {
	Options
	log      *slog.Logger
	sessions *sessions
	pages    *pages
	// signInFailures counts failed sign-ins per client address.
	signInFailures *httprate.RateLimiter
	customerLimits *customerLimits
}

// New returns the web pages' handler, to serve at /. It panics without a
// Store or Tokens, a programming error.
func New(o Options) http.Handler {
	if o.Store == nil || o.Tokens == nil {
		panic("web.New: Options.Store and Options.Tokens are required")
	}
	o = o.withDefaults()
	s := &server{Options: o, log: o.Logger.With("component", "web")}
	s.sessions = newSessions(o.Now, o.SessionIdle, o.SessionMax, o.MaxSessions)
	s.signInFailures = httprate.NewRateLimiter(o.SignInFailures, signInWindow)
	s.pages = mustParsePages(o.Location)
	s.customerLimits = newCustomerLimits()

	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(filesOnly(static))))
	mux.Handle("GET /favicon.ico", cacheStatic(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "icon.svg")
	})))
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.signIn)
	// The customer's page: outside the staff's sign-in, the code is the key.
	mux.HandleFunc("GET "+notify.LinkPath+"{code}", s.customer)
	mux.HandleFunc("POST "+notify.LinkPath+"{code}", s.customer)
	mux.Handle("POST /signout", s.auth(s.csrf(http.HandlerFunc(s.signOut))))

	mux.Handle("GET /{$}", s.auth(http.HandlerFunc(s.home)))
	mux.Handle("GET /tickets/{id}", s.auth(http.HandlerFunc(s.ticketPage)))
	mux.Handle("POST /tickets/{id}/assign", s.auth(s.csrf(s.staff(s.assign))))
	mux.Handle("POST /tickets/{id}/book", s.auth(s.csrf(s.staff(s.book))))
	mux.Handle("POST /tickets/{id}/reassign", s.auth(s.csrf(s.staff(s.reassign))))
	mux.Handle("POST /tickets/{id}/message", s.auth(s.csrf(s.staff(s.message))))
	mux.Handle("POST /tickets/{id}/comment", s.auth(s.csrf(s.staff(s.comment))))
	mux.Handle("POST /tickets/{id}/close", s.auth(s.csrf(s.staff(s.close))))
	mux.Handle("POST /tickets/{id}/cancel", s.auth(s.csrf(s.staff(s.cancel))))
	mux.Handle("POST /tickets/{id}/approve", s.auth(s.csrf(s.staff(s.approve))))
	mux.Handle("POST /tickets/{id}/dismiss", s.auth(s.csrf(s.staff(s.dismiss))))
	mux.Handle("POST /tickets/{id}/visit", s.auth(s.csrf(http.HandlerFunc(s.visitDone))))
	mux.Handle("POST /incidents/{id}/dismiss", s.auth(s.csrf(s.staff(s.dismissIncident))))
	mux.Handle("POST /tickets/{id}/follow-up", s.auth(s.csrf(s.staff(s.handleFollowUp))))
	mux.Handle("POST /tickets/{id}/customer/channel", s.auth(s.csrf(s.staff(s.setChannel))))
	mux.Handle("POST /tickets/{id}/customer/consent", s.auth(s.csrf(s.staff(s.setConsent))))
	mux.Handle("GET /day", s.auth(http.HandlerFunc(s.dayPage)))
	mux.Handle("GET /schedule", s.auth(s.staff(s.schedulePage)))
	mux.Handle("GET /fleet", s.auth(s.staff(s.fleetPage)))
	mux.Handle("GET /rules", s.auth(s.staff(s.rulesPage)))
	mux.Handle("GET /measures", s.auth(s.staff(s.measuresPage)))
	mux.Handle("GET /webhooks", s.auth(s.admin(s.webhooksPage)))
	mux.Handle("POST /webhooks", s.auth(s.csrf(s.admin(s.createWebhook))))
	mux.Handle("GET /webhooks/{id}", s.auth(s.admin(s.webhookPage)))
	mux.Handle("POST /webhooks/{id}/enable", s.auth(s.csrf(s.admin(s.enableWebhook))))
	mux.Handle("POST /webhooks/{id}/delete", s.auth(s.csrf(s.admin(s.deleteWebhook))))
	mux.Handle("POST /webhooks/{id}/deliveries/{delivery}/retry", s.auth(s.csrf(s.admin(s.retryWebhookDelivery))))
	mux.Handle("/", s.auth(http.HandlerFunc(s.notFound)))
	return securityHeaders(mux)
}

// securityHeaders sets the headers every answer carries: a content security
// policy that allows only this site's own scripts, styles and forms, and no
// framing or caching of pages.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if h.Get("Cache-Control") == "" {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// filesOnly serves the files of fsys and answers 404 for a directory,
// "/static/" itself included, so that the assets are not listed.
func filesOnly(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimSuffix(path.Clean("/" + r.URL.Path)[1:], "/")
		if fi, err := fs.Stat(fsys, name); name == "" || err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// cacheStatic lets browsers keep the embedded assets for a day.
func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		next.ServeHTTP(w, r)
	})
}
