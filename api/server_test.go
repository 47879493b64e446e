package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// serveRouter serves the service's routes with o (the API of f mounted,
// with apiOpt applied) on a server made by api.NewServer with so, and
// returns its URL.
func serveRouter(t *testing.T, f *fixture, o api.RouterOptions, so api.ServerOptions, apiOpt func(*api.Options)) string {
	t.Helper()
	ao := api.Options{Store: f.store, Tokens: f.tokens, Checks: o.Checks}
	if apiOpt != nil {
		apiOpt(&ao)
	}
	o.API = api.New(ao)
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	o.Logger = slog.New(slog.DiscardHandler)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = api.NewServer(api.NewRouter(o), so)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, u, token string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var badToken = "pat_0123456789abcdef_" + strings.Repeat("0", 64)

// Behind a trusted proxy, failed authentications count against the client
// the proxy names: someone else's bad tokens do not lock a valid admin out.
// From a peer that is not a trusted proxy, X-Forwarded-For is ignored, so a
// client cannot dodge the limit by making up addresses.
func TestAuthFailuresPerForwardedClient(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t))
	limit := func(o *api.Options) { o.AuthFailures = 3 }
	proxies, err := api.ParseProxies([]string{"127.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	behind := serveRouter(t, f, api.RouterOptions{TrustedProxies: proxies}, api.ServerOptions{}, limit)
	for range 3 {
		if code, _, _ := get(t, behind+"/api/v1/me", badToken, "X-Forwarded-For", "203.0.113.5"); code != 401 {
			t.Fatalf("bad token: %d, want 401", code)
		}
	}
	if code, h, _ := get(t, behind+"/api/v1/me", f.token[devices.RoleAdmin], "X-Forwarded-For", "203.0.113.5"); code != 429 || h.Get("Retry-After") == "" {
		t.Errorf("the guessing client: %d (Retry-After %q), want 429", code, h.Get("Retry-After"))
	}
	// A forged left-most hop does not help: the proxy appended the real one.
	if code, _, _ := get(t, behind+"/api/v1/me", badToken, "X-Forwarded-For", "198.51.100.1, 203.0.113.5"); code != 429 {
		t.Errorf("the guessing client with a forged hop: %d, want 429", code)
	}
	if code, _, body := get(t, behind+"/api/v1/me", f.token[devices.RoleAdmin], "X-Forwarded-For", "198.51.100.7"); code != 200 {
		t.Errorf("an admin behind the same proxy: %d %s, want 200", code, body)
	}

	direct := serveRouter(t, f, api.RouterOptions{}, api.ServerOptions{}, limit)
	for i := range 3 {
		get(t, direct+"/api/v1/me", badToken, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))
	}
	if code, _, _ := get(t, direct+"/api/v1/me", badToken, "X-Forwarded-For", "192.0.2.99"); code != 429 {
		t.Errorf("made-up X-Forwarded-For from an untrusted peer: %d, want 429", code)
	}
}

// /readyz, unauthenticated, names the failing dependency and a reason but
// no connection details; an admin reads the error at /api/v1/health.
func TestReadyzHidesConnectionDetails(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t))
	raw := fmt.Errorf("ping postgres: failed to connect to `user=proactive database=prod`: 10.1.2.3:5432 (db.internal): dial error: %w",
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	u := serveRouter(t, f, api.RouterOptions{Checks: []api.Check{
		{Name: "database", Fn: func(context.Context) error { return raw }},
		{Name: "mqtt", Fn: func(context.Context) error { return nil }},
	}}, api.ServerOptions{}, nil)

	code, h, body := get(t, u+"/readyz", "")
	if code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("/readyz: %d (Retry-After %q), want 503", code, h.Get("Retry-After"))
	}
	if !strings.Contains(body, `"database":"connection refused"`) || !strings.Contains(body, `"mqtt":"ok"`) {
		t.Errorf("/readyz lacks the reasons: %s", body)
	}
	for _, secret := range []string{"proactive", "prod", "10.1.2.3", "5432", "db.internal"} {
		if strings.Contains(body, secret) {
			t.Errorf("/readyz shows %q: %s", secret, body)
		}
	}
	if code, _, body := get(t, u+"/api/v1/health", f.token[devices.RoleAdmin]); code != 503 || !strings.Contains(body, "10.1.2.3:5432") {
		t.Errorf("/api/v1/health as admin: %d %s, want 503 with the error", code, body)
	}
	if code, _, _ := get(t, u+"/api/v1/health", f.token[devices.RoleDispatcher]); code != 403 {
		t.Errorf("/api/v1/health as dispatcher: %d, want 403", code)
	}
}

// With http.metrics_token set, /metrics needs it.
func TestMetricsToken(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t))
	u := serveRouter(t, f, api.RouterOptions{MetricsToken: "s3cret"}, api.ServerOptions{}, nil)
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 401}, {"s3cret", 200}} {
		if code, _, _ := get(t, u+"/metrics", c.token); code != c.want {
			t.Errorf("/metrics with token %q: %d, want %d", c.token, code, c.want)
		}
	}
	open := serveRouter(t, f, api.RouterOptions{}, api.ServerOptions{}, nil)
	if code, _, _ := get(t, open+"/metrics", ""); code != 200 {
		t.Errorf("/metrics without a configured token: %d, want 200", code)
	}
}

// A request whose body trickles in is cut off at the read timeout instead
// of holding its connection; a CPU profile longer than the write timeout
// still completes, as its route sets its own deadline.
func TestServerTimeouts(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t))
	u := serveRouter(t, f, api.RouterOptions{}, api.ServerOptions{ReadTimeout: 300 * time.Millisecond, WriteTimeout: 500 * time.Millisecond}, nil)
	addr := strings.TrimPrefix(u, "http://")

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/v1/devices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", f.token[devices.RoleAdmin])
	// Trickle a byte at a time until the server hangs up; the bound is a
	// failure, not a figure.
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		closed <- err
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(20 * time.Second)
	for done := false; !done; {
		select {
		case <-closed:
			done = true
		case <-tick.C:
			_, _ = c.Write([]byte(" "))
		case <-timeout:
			t.Fatal("the server kept a trickling request's connection open")
		}
	}

	code, _, body := get(t, u+"/api/v1/debug/pprof/profile?seconds=1", f.token[devices.RoleAdmin])
	if code != 200 || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("a CPU profile longer than the write timeout: %d %.60q", code, body)
	}
}

// While the database is down, the API answers 503 with Retry-After, not
// 500, and serves again once it is back.
func TestDatabaseDownIs503(t *testing.T) {
	dsn := testenv.Postgres(t)
	pu, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, pu.Host)
	pu.Host = proxy.Addr()
	f := newFixture(t, pu.String())
	admin := f.token[devices.RoleAdmin]
	u := serveRouter(t, f, api.RouterOptions{}, api.ServerOptions{}, nil)
	if code, _, body := get(t, u+"/api/v1/devices", admin); code != 200 {
		t.Fatalf("before: %d %s", code, body)
	}
	proxy.Refuse()
	code, h, body := get(t, u+"/api/v1/devices", admin)
	if code != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, `"code":"unavailable"`) {
		t.Errorf("database down: %d (Retry-After %q) %s, want 503 unavailable", code, h.Get("Retry-After"), body)
	}
	proxy.Resume()
	testenv.Eventually(t, 10*time.Second, func() error {
		if code, _, body := get(t, u+"/api/v1/devices", admin); code != 200 {
			return errors.New(body)
		}
		return nil
	})
}
