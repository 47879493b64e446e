package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/proactivehq/proactive/api"
)

// check is one readiness condition: nil when the dependency is usable.
type check struct {
	name string
	fn   func(ctx context.Context) error
}

type routerOptions struct {
	Registry *prometheus.Registry
	Checks   []check
	Logger   *slog.Logger
	// API is mounted at api.Prefix, Webhooks at /webhooks/twilio/ and Web
	// (the pages) at /, when set.
	API      http.Handler
	Webhooks http.Handler
	Web      http.Handler
}

// newRouter returns the HTTP routes of the running service.
func newRouter(o routerOptions) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, accessLog(o.Logger), middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", readyHandler(o.Checks))
	r.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	if o.API != nil {
		r.Mount(api.Prefix, o.API)
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
func readyHandler(checks []check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, body := http.StatusOK, map[string]any{}
		results := map[string]string{}
		for _, c := range checks {
			if err := c.fn(ctx); err != nil {
				results[c.name] = err.Error()
				status = http.StatusServiceUnavailable
				continue
			}
			results[c.name] = "ok"
		}
		body["checks"] = results
		body["status"] = "ready"
		if status != http.StatusOK {
			body["status"] = "not ready"
		}
		writeJSON(w, status, body)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
