package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// ServerOptions bound how long a client may hold a connection of the
// service's HTTP server; zero fields get the defaults.
type ServerOptions struct {
	// ReadTimeout bounds reading a whole request, body included, default
	// 30 s: a client trickling its body a byte at a time is cut off then.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its answer, default 60 s. Routes that stream for longer (CPU
	// profiles and traces) set their own deadline through
	// http.ResponseController.
	WriteTimeout time.Duration
	// IdleTimeout bounds a kept-alive connection between requests,
	// default 120 s.
	IdleTimeout time.Duration
	Logger      *slog.Logger
}

// NewServer returns the HTTP server of h with the timeouts of o.
func NewServer(h http.Handler, o ServerOptions) *http.Server {
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, o.ReadTimeout),
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
	}
	if o.Logger != nil {
		srv.ErrorLog = slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)
	}
	return srv
}

// ParseProxies parses CIDRs (or single addresses) of trusted reverse
// proxies, returning every bad one at once.
func ParseProxies(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(c); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			errs = append(errs, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an address", c))
		}
	}
	return out, errors.Join(errs...)
}

// clientIP returns middleware that sets r.RemoteAddr to the client's
// address as the trusted proxies forwarded it: when the connection comes
// from one of trusted, the right-most address of X-Forwarded-For that is
// not itself a trusted proxy (each proxy appends the peer it saw, so
// addresses to the left of it may be forged by the client). From any
// other peer the header is ignored. The failed-authentication limits and
// the access log then see the client, not the proxy.
func clientIP(trusted []netip.Prefix) func(http.Handler) http.Handler {
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(next http.Handler) http.Handler {
		if len(trusted) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			peer, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil || !isTrusted(peer.Addr()) {
				next.ServeHTTP(w, r)
				return
			}
			var hops []string
			for _, h := range r.Header.Values("X-Forwarded-For") {
				hops = append(hops, strings.Split(h, ",")...)
			}
			for i := len(hops) - 1; i >= 0; i-- {
				a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
				if err != nil {
					break // a garbled hop: trust nothing to its left
				}
				if isTrusted(a) && i > 0 {
					continue
				}
				r2 := *r
				r2.RemoteAddr = netip.AddrPortFrom(a.Unmap(), 0).String()
				next.ServeHTTP(w, &r2)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// metricsAuth guards /metrics with a bearer token when token is set.
func metricsAuth(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need Authorization: Bearer <http.metrics_token>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// reason says why a readiness check failed in words that hold no
// connection details (no user, host, port or database name), for the
// unauthenticated /readyz; admins read the errors themselves at
// GET /api/v1/health.
func reason(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection lost"
	case errors.As(err, &dns):
		return "name not resolved"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return "failing"
}

// extendWrite lets a route that streams for d (a CPU profile, a trace)
// run past the server's WriteTimeout: its own write deadline is d and a
// margin. net/http/pprof refuses a duration past the server's WriteTimeout
// whatever the deadline, so the request it gets names no server.
func extendWrite(w http.ResponseWriter, r *http.Request, d time.Duration) *http.Request {
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + 10*time.Second)); err != nil {
		return r // not a server connection (a test recorder): no deadline to move
	}
	return r.WithContext(context.WithValue(r.Context(), http.ServerContextKey, &http.Server{}))
}
