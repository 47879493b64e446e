package api

import (
	"context"
	"log/slog"
	"net/http"
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
	// Registry is served at /metrics.
	Registry *prometheus.Registry
	Checks   []Check
	Logger   *slog.Logger
	// API (New) is mounted at Prefix, Webhooks at /webhooks/twilio/ and
	// Web (the pages) at /, when set.
	API      http.Handler
	Webhooks http.Handler
	Web      http.Handler
}

// NewRouter returns the HTTP routes of the running service: /healthz,
// /readyz, /metrics and the parts of o, behind request ids and the access
// log (AccessLog).
func NewRouter(o RouterOptions) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, AccessLog(o.Logger), middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", readyHandler(o.Checks))
	r.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	if o.API != nil {
		r.Mount(Prefix, o.API)
	}
	if o.Webhooks != nil {
		r.Mount("/webhooks/twilio", o.Webhooks)
	}
	if o.Web != nil {
		r.Mount("/", o.Web)
	}
	return r
}

// readyHandler answers 200 when every check passes and 503 with each
// failing check's reason otherwise.
func readyHandler(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, body := http.StatusOK, map[string]any{}
		results := map[string]string{}
		for _, c := range checks {
			if err := c.Fn(ctx); err != nil {
				results[c.Name] = err.Error()
				status = http.StatusServiceUnavailable
				continue
			}
			results[c.Name] = "ok"
		}
		body["checks"] = results
		body["status"] = "ready"
		if status != http.StatusOK {
			body["status"] = "not ready"
		}
		_ = writeJSON(w, status, body)
	}
}
