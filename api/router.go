package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition of /readyz: Fn returns nil when the
// dependency Name is usable.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// RouterOptions are the parts of the service's HTTP routes.
type RouterOptions struct {
	// Registry is served at /metrics, behind MetricsToken (a bearer
	// token) when that is set.
	Registry     *prometheus.Registry
	MetricsToken string
	// Checks are /readyz's conditions; it names the failing ones with a
	// reason free of connection details (their errors are for admins, at
	// GET /api/v1/health: give the API the same Checks).
	Checks []Check
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (see clientIP); from any other peer the header is
	// ignored.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	// API (New) is mounted at Prefix, Webhooks at /webhooks/twilio/,
	// Unsubscribe (the emails' unsubscribe pages) at /email/ and Web (the
	// pages) at /, when set.
	API         http.Handler
	Webhooks    http.Handler
	Unsubscribe http.Handler
	Web         http.Handler
}

// NewRouter returns the HTTP routes of the running service: /healthz,
// /readyz, /metrics and the parts of o, behind request ids and the access
// log (AccessLog).
func NewRouter(o RouterOptions) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, clientIP(o.TrustedProxies), AccessLog(o.Logger), middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", readyHandler(o.Checks))
	r.Handle("/metrics", metricsAuth(o.MetricsToken, promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry})))
	if o.API != nil {
		r.Mount(Prefix, o.API)
	}
	if o.Webhooks != nil {
		r.Mount("/webhooks/twilio", o.Webhooks)
	}
	if o.Unsubscribe != nil {
		r.Mount("/email", o.Unsubscribe)
	}
	if o.Web != nil {
		r.Mount("/", o.Web)
	}
	return r
}

// readyHandler answers 200 when every check passes and 503 with each
// failing check's reason otherwise: a reason, not the error, since the
// route is unauthenticated and a database error names user, host, port and
// database.
func readyHandler(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, results := runChecks(r.Context(), checks, reason)
		body := map[string]any{"checks": results, "status": "ready"}
		if status != http.StatusOK {
			body["status"] = "not ready"
			body["details"] = "GET " + Prefix + "/health with an admin token"
			w.Header().Set("Retry-After", retryAfter)
		}
		_ = writeJSON(w, status, body)
	}
}

// runChecks runs checks within two seconds: 200 and "ok" for each when all
// pass, 503 and say(err) for each that fails otherwise.
func runChecks(ctx context.Context, checks []Check, say func(error) string) (int, map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, results := http.StatusOK, map[string]string{}
	for _, c := range checks {
		if err := c.Fn(ctx); err != nil {
			results[c.Name] = say(err)
			status = http.StatusServiceUnavailable
			continue
		}
		results[c.Name] = "ok"
	}
	return status, results
}
