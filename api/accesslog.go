package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// requestIDHeader carries the request id both ways: a proxy in front may set
// it (chi's middleware.RequestID keeps it), and every answer names it, so a
// user's report can be matched with the log line.
const requestIDHeader = "X-Request-Id"

// AccessLog returns middleware that logs one line per request when it is
// answered: method, path (never the query string, which may hold secrets),
// route pattern, status, bytes, duration, remote address and request id.
// Server errors log at warn, the rest at debug: every page load, poll and
// probe at info would bury what a running platform says there (the demo's
// SMS, a rule's trouble); failed sign-ins have their own metric.
// It must come after middleware.RequestID and before middleware.Recoverer,
// so that a recovered panic is logged with its 500.
func AccessLog(log *slog.Logger) func(http.Handler) http.Handler {
	log = log.With("component", "http")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := middleware.GetReqID(r.Context())
			if id != "" {
				w.Header().Set(requestIDHeader, id)
			}
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			defer func() {
				// A panic not yet recovered (Recoverer placed before this
				// middleware) is logged as the 500 it will become, then
				// passed on.
				rec := recover()
				if rec != nil {
					defer panic(rec)
				}
				status := ww.Status()
				switch {
				case rec != nil:
					status = http.StatusInternalServerError
				case status == 0:
					status = http.StatusOK // the handler wrote nothing
				}
				level := slog.LevelDebug
				if status >= 500 {
					level = slog.LevelWarn
				}
				if !log.Enabled(r.Context(), level) {
					return
				}
				attrs := []slog.Attr{
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Int("status", status),
					slog.Int("bytes", ww.BytesWritten()),
					slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
					slog.String("remote", r.RemoteAddr),
				}
				if rc := chi.RouteContext(r.Context()); rc != nil {
					if p := rc.RoutePattern(); p != "" {
						attrs = append(attrs, slog.String("route", p))
					}
				}
				if id != "" {
					attrs = append(attrs, slog.String("request_id", id))
				}
				log.LogAttrs(context.WithoutCancel(r.Context()), level, "http request", attrs...)
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// RequestLog returns log with the request's id, for a handler that logs
// about the request it serves, so that its line and the access line match.
func RequestLog(log *slog.Logger, r *http.Request) *slog.Logger {
	if id := middleware.GetReqID(r.Context()); id != "" {
		return log.With("request_id", id)
	}
	return log
}
