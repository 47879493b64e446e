// Package api is the platform's authenticated JSON API: the registry
// (devices, customers with their consent trail, technicians), tickets and
// their SMS outreach (slots, bookings, visit reports, the SMS thread),
// appointments and outreach measures, dead letters, device telemetry, rules
// and alerts, API tokens, and the runtime profiles under /debug/pprof.
//
// # Mounting
//
// New returns a handler whose routes are relative to the API's base: mount it
// at Prefix (/api/v1), for example with chi's Router.Mount(api.Prefix, h),
// which strips the prefix. The OpenAPI 3 description, served at
// /api/v1/openapi.json, names Prefix as its server URL.
//
// # Authentication and roles
//
// Every route takes `Authorization: Bearer pat_...`, a token made by
// `proactive token create` or POST /tokens (see devices.Tokens). Roles:
//
//   - admin: everything, and alone may manage tokens, delete registry
//     entries, create technicians, reload rules and read profiles.
//   - dispatcher: the registry (no deletes), tickets (booking visits and
//     texting customers included), appointments, measures, telemetry, rules
//     and alerts, dead letters.
//   - technician: their own record, their own appointments, and the
//     tickets assigned to them, which they may read (with the SMS thread),
//     comment on, move from scheduled to visited, report the visit of, and
//     close with an outcome. A ticket assigned to someone else answers 404,
//     as if it did not exist.
//
// # Errors
//
// Failures answer {"error": {"code", "message", "fields"}}: 400 bad_request
// for a malformed request (not JSON, an unknown field, a bad query
// parameter), 401 unauthorized, 403 forbidden, 404 not_found, 409 conflict
// (an illegal or lost ticket transition, with the reason), 413 too_large,
// 422 invalid (fields maps each bad field to its problem), 429 rate_limited
// (with Retry-After), 503 unavailable, 500 internal (details only logged).
package api

import (
	"context"
	_ "embed"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/rules"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3 description, as served at
// /api/v1/openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// RulesService is the rule engine's state, as *rules.Engine gives it.
type RulesService interface {
	// Rules returns the status of every loaded rule; it does not block on
	// evaluation for long.
	Rules() []rules.RuleStatus
	// Alerts returns the pending and firing alerts.
	Alerts() []rules.AlertStatus
}

// Telemetry reads a device's history, as *influx.Store does.
type Telemetry interface {
	// Latest returns the last value of every metric of device.
	Latest(ctx context.Context, device proactive.DeviceID) ([]influx.MetricValue, error)
	// Range returns device's metrics (all when metrics is empty) in
	// [from, to), at most maxPoints per metric, and the window each point
	// averages.
	Range(ctx context.Context, device proactive.DeviceID, metrics []string, from, to time.Time, maxPoints int) ([]influx.MetricSeries, time.Duration, error)
}

// Options configure the API. Store is required; a nil Rules, Reload,
// DeadLetters, Telemetry or Outreach makes its routes answer 503. Other zero fields get
// the defaults given on each.
type Options struct {
	Store *devices.Store
	// Tokens authenticates requests and manages tokens; default
	// devices.NewTokens(Store, devices.TokenOptions{}). Share one with
	// anything else in the process that revokes tokens, so that revocations
	// apply at once.
	Tokens *devices.Tokens
	Rules  RulesService
	// Reload reloads the rule files and returns how many rules run. An
	// error that is rules.Problems answers 422 with each problem; the
	// running rules then stay.
	Reload func(ctx context.Context) (int, error)
	// DeadLetters returns up to n recent dead letters, newest first, as
	// (*ingest.DeadLetters).Recent does.
	DeadLetters func(n int) []ingest.DeadLetter
	Telemetry   Telemetry
	// Outreach is the SMS outreach loop (a *notify.Notifier): visit slots
	// and bookings, visit reports, the SMS thread, appointments, measures.
	Outreach Outreach
	// Logger gets internal errors (once each, never secrets); default discard.
	Logger *slog.Logger
	// Now is the clock for relative telemetry times; default time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds a request body, default 1 MiB; larger is 413.
	MaxBodyBytes int64
	// RateLimit is how many requests one token may make per RateWindow,
	// default 600 per minute (10/s on average, in bursts); more is 429.
	RateLimit  int
	RateWindow time.Duration
	// AuthFailures is how many failed authentications one client address
	// may make per RateWindow, default 30; past it every request from the
	// address is 429 until the window moves on, so that guessing tokens or
	// flooding the token store with unknown ids goes nowhere.
	AuthFailures int
	// MaxRange bounds a telemetry range query, default 90 days.
	MaxRange time.Duration
	// MaxPoints bounds the points per metric of a telemetry range, default
	// 2000; a request asks for 500 unless it says otherwise.
	MaxPoints int
	// Checks are the readiness conditions, as /readyz runs them; GET
	// /health shows admins their errors in full.
	Checks []Check
}

func (o Options) withDefaults() Options {
	if o.Tokens == nil {
		o.Tokens = devices.NewTokens(o.Store, devices.TokenOptions{})
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.RateLimit <= 0 {
		o.RateLimit = 600
	}
	if o.RateWindow <= 0 {
		o.RateWindow = time.Minute
	}
	if o.AuthFailures <= 0 {
		o.AuthFailures = 30
	}
	if o.MaxRange <= 0 {
		o.MaxRange = 90 * 24 * time.Hour
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = 2000
	}
	return o
}

// server holds the handlers' dependencies.
type server struct {
	Options
	log *slog.Logger
	// failures counts failed authentications per client address.
	failures *httprate.RateLimiter
}

// Role sets used by the routes.
var (
	anyone    = []devices.Role{devices.RoleAdmin, devices.RoleDispatcher, devices.RoleTechnician}
	staff     = []devices.Role{devices.RoleAdmin, devices.RoleDispatcher}
	adminOnly = []devices.Role{devices.RoleAdmin}
)

// New returns the API handler, to mount at Prefix. It panics if o.Store is nil.
func New(o Options) http.Handler {
	if o.Store == nil {
		panic("api.New: Options.Store is nil")
	}
	s := &server{Options: o.withDefaults()}
	s.failures = httprate.NewRateLimiter(s.AuthFailures, s.RateWindow)
	s.log = s.Logger.With("component", "api")

	r := chi.NewRouter()
	r.Use(s.limitBody, s.authenticate)
	r.Use(httprate.LimitBy(s.RateLimit, s.RateWindow,
		func(r *http.Request) (string, error) { return tokenOf(r.Context()).ID, nil },
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, &httpError{status: http.StatusTooManyRequests, code: "rate_limited",
				msg: "too many requests for this token: retry after the time in Retry-After"})
		})))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &httpError{status: http.StatusNotFound, code: proactive.ENotFound, msg: "no such route: " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			msg: r.Method + " is not allowed on " + r.URL.Path})
	})

	params, err := queryParams(openAPI)
	if err != nil {
		panic(err) // the embedded document is checked by the tests
	}
	route := func(method, pattern string, roles []devices.Role, h func(http.ResponseWriter, *http.Request) error) {
		r.With(allow(s, roles...), s.strictQuery(params[method+" "+pattern])).Method(method, pattern, s.handle(h))
	}
	route(http.MethodGet, "/openapi.json", anyone, s.openAPI)
	route(http.MethodGet, "/me", anyone, s.me)
	route(http.MethodGet, "/health", adminOnly, s.health)

	route(http.MethodGet, "/devices", staff, s.listDevices)
	route(http.MethodPost, "/devices", staff, s.createDevice)
	route(http.MethodGet, "/devices/{id}", staff, s.getDevice)
	route(http.MethodPut, "/devices/{id}", staff, s.updateDevice)
	route(http.MethodDelete, "/devices/{id}", adminOnly, s.deleteDevice)
	route(http.MethodGet, "/devices/{id}/telemetry/latest", staff, s.latestTelemetry)
	route(http.MethodGet, "/devices/{id}/telemetry", staff, s.rangeTelemetry)
	route(http.MethodGet, "/devices/{id}/maintenance", staff, s.listMaintenance)
	route(http.MethodPost, "/devices/{id}/maintenance", staff, s.addMaintenance)

	route(http.MethodGet, "/customers", staff, s.listCustomers)
	route(http.MethodPost, "/customers", staff, s.createCustomer)
	route(http.MethodGet, "/customers/{id}", staff, s.getCustomer)
	route(http.MethodPut, "/customers/{id}", staff, s.updateCustomer)
	route(http.MethodDelete, "/customers/{id}", adminOnly, s.deleteCustomer)
	route(http.MethodGet, "/customers/{id}/consent", staff, s.consentHistory)
	route(http.MethodPost, "/customers/{id}/consent", staff, s.recordConsent)

	route(http.MethodGet, "/technicians", staff, s.listTechnicians)
	route(http.MethodPost, "/technicians", adminOnly, s.createTechnician)
	route(http.MethodGet, "/technicians/{id}", anyone, s.getTechnician)
	route(http.MethodGet, "/technicians/{id}/calendar.ics", anyone, s.calendar)
	route(http.MethodPut, "/technicians/{id}", staff, s.updateTechnician)
	route(http.MethodDelete, "/technicians/{id}", adminOnly, s.deleteTechnician)

	route(http.MethodGet, "/tickets", anyone, s.listTickets)
	route(http.MethodGet, "/tickets/{id}", anyone, s.getTicket)
	route(http.MethodPost, "/tickets/{id}/assign", staff, s.assignTicket)
	route(http.MethodPost, "/tickets/{id}/transition", anyone, s.transitionTicket)
	route(http.MethodPost, "/tickets/{id}/comment", anyone, s.commentTicket)
	route(http.MethodPost, "/tickets/{id}/follow-up/handled", anyone, s.handleFollowUp)
	route(http.MethodPost, "/tickets/{id}/close", anyone, s.closeTicket)
	route(http.MethodGet, "/tickets/{id}/slots", staff, s.ticketSlots)
	route(http.MethodPost, "/tickets/{id}/book", staff, s.bookTicket)
	route(http.MethodPost, "/tickets/{id}/reassign", staff, s.reassignTicket)
	route(http.MethodPost, "/tickets/{id}/visit", anyone, s.recordVisit)
	route(http.MethodGet, "/tickets/{id}/messages", anyone, s.ticketMessages)
	route(http.MethodPost, "/tickets/{id}/messages", staff, s.sendMessage)
	route(http.MethodGet, "/incidents", staff, s.listIncidents)
	route(http.MethodGet, "/incidents/{id}", staff, s.getIncident)
	route(http.MethodPost, "/incidents/{id}/dismiss", staff, s.dismissIncident)
	route(http.MethodPost, "/tickets/{id}/approve", staff, s.approveTicket)
	route(http.MethodPost, "/tickets/{id}/dismiss", staff, s.dismissTicket)
	route(http.MethodGet, "/appointments", anyone, s.listAppointments)
	route(http.MethodGet, "/measures", staff, s.measures)

	route(http.MethodGet, "/dead-letters", staff, s.deadLetters)
	route(http.MethodGet, "/rules", staff, s.listRules)
	route(http.MethodPost, "/rules/reload", adminOnly, s.reloadRules)
	route(http.MethodGet, "/alerts", staff, s.listAlerts)

	route(http.MethodGet, "/tokens", adminOnly, s.listTokens)
	route(http.MethodPost, "/tokens", adminOnly, s.createToken)
	route(http.MethodDelete, "/tokens/{id}", adminOnly, s.revokeToken)

	route(http.MethodGet, "/webhooks", adminOnly, s.listWebhooks)
	route(http.MethodPost, "/webhooks", adminOnly, s.createWebhook)
	route(http.MethodPatch, "/webhooks/{id}", adminOnly, s.updateWebhook)
	route(http.MethodDelete, "/webhooks/{id}", adminOnly, s.deleteWebhook)
	route(http.MethodGet, "/webhooks/{id}/deliveries", adminOnly, s.webhookDeliveries)
	route(http.MethodPost, "/webhooks/{id}/deliveries/{delivery}/retry", adminOnly, s.retryWebhookDelivery)

	route(http.MethodGet, "/debug/pprof/", adminOnly, s.pprofIndex)
	route(http.MethodGet, "/debug/pprof/profile", adminOnly, s.pprofCPU)
	route(http.MethodGet, "/debug/pprof/trace", adminOnly, s.pprofTrace)
	route(http.MethodGet, "/debug/pprof/{name}", adminOnly, s.pprofProfile)
	return r
}

func (s *server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPI)
	return err
}

// health runs the readiness checks with each failure's error in full,
// connection details included: /readyz, unauthenticated, gives only a
// reason.
func (s *server) health(w http.ResponseWriter, r *http.Request) error {
	status, results := runChecks(r.Context(), s.Checks, error.Error)
	body := map[string]any{"checks": results, "status": "ready"}
	if status != http.StatusOK {
		body["status"] = "not ready"
	}
	return writeJSON(w, status, body)
}

func (s *server) me(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, tokenOf(r.Context()))
}
