package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/proactivehq/proactive/api"
)

func testJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// logRouter is a router wired the way NewRouter is meant to be, logging
// JSON at level into buf.
func logRouter(buf *bytes.Buffer, level slog.Level, recovererFirst bool) http.Handler {
	log := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
	r := chi.NewRouter()
	if recovererFirst {
		r.Use(middleware.RequestID, quietRecoverer, api.AccessLog(log))
	} else {
		r.Use(middleware.RequestID, api.AccessLog(log), quietRecoverer)
	}
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { testJSON(w, 200, map[string]string{"status": "ok"}) })
	r.Get("/api/v1/devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		api.RequestLog(log, r).Info("looked up", "device", chi.URLParam(r, "id"))
		testJSON(w, 404, map[string]string{"error": "not found"})
	})
	r.Post("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	r.Get("/silent", func(http.ResponseWriter, *http.Request) {})
	return r
}

// quietRecoverer answers 500 to a panic like middleware.Recoverer, without
// printing the stack into the test output.
func quietRecoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if rec := recover(); rec != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	h := logRouter(&buf, slog.LevelDebug, false)

	t.Run("request", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/api/v1/devices/d1?token=secret-in-query", nil)
		req.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		id := rec.Header().Get("X-Request-Id")
		if id == "" {
			t.Fatal("no X-Request-Id in the answer")
		}
		lines := logLines(t, &buf)
		if len(lines) != 2 {
			t.Fatalf("%d log lines, want the handler's and the access line: %v", len(lines), lines)
		}
		if lines[0]["msg"] != "looked up" || lines[0]["request_id"] != id {
			t.Errorf("handler line %v: want request_id %s", lines[0], id)
		}
		got := lines[1]
		want := map[string]any{"msg": "http request", "level": "DEBUG", "component": "http", "method": "GET",
			"path": "/api/v1/devices/d1", "route": "/api/v1/devices/{id}", "status": float64(404),
			"remote": "192.0.2.1:1234", "request_id": id}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		if _, ok := got["duration_ms"].(float64); !ok {
			t.Errorf("no duration_ms in %v", got)
		}
		if got["bytes"].(float64) <= 0 {
			t.Errorf("bytes = %v", got["bytes"])
		}
		for _, l := range lines {
			b, _ := json.Marshal(l)
			if strings.Contains(string(b), "secret-in-query") {
				t.Errorf("the query string reached the log: %s", b)
			}
		}
	})

	t.Run("incoming request id", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/silent", nil)
		req.Header.Set("X-Request-Id", "from-proxy-42")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		lines := logLines(t, &buf)
		if rec.Header().Get("X-Request-Id") != "from-proxy-42" || len(lines) != 1 ||
			lines[0]["request_id"] != "from-proxy-42" || lines[0]["status"] != float64(200) {
			t.Errorf("header %q, lines %v", rec.Header().Get("X-Request-Id"), lines)
		}
	})

	t.Run("nothing at info but server errors", func(t *testing.T) {
		var info bytes.Buffer
		for _, path := range []string{"/healthz", "/silent", "/api/v1/devices/d1"} {
			logRouter(&info, slog.LevelInfo, false).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
		}
		for _, l := range logLines(t, &info) {
			if l["msg"] == "http request" {
				t.Errorf("a request logged at info: %v", l)
			}
		}
		var dbg bytes.Buffer
		logRouter(&dbg, slog.LevelDebug, false).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
		if lines := logLines(t, &dbg); len(lines) != 1 || lines[0]["level"] != "DEBUG" {
			t.Errorf("probe at debug level: %v", lines)
		}
	})

	for _, first := range []bool{false, true} {
		name := "panic, recoverer after"
		if first {
			name = "panic, recoverer before"
		}
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			rec := httptest.NewRecorder()
			logRouter(&buf, slog.LevelInfo, first).ServeHTTP(rec, httptest.NewRequest("POST", "/boom", nil))
			if rec.Code != 500 {
				t.Errorf("status %d", rec.Code)
			}
			lines := logLines(t, &buf)
			if len(lines) != 1 || lines[0]["status"] != float64(500) || lines[0]["level"] != "WARN" {
				t.Errorf("lines %v, want one warning with status 500", lines)
			}
		})
	}
}
