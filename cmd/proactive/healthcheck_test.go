package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(r.URL.Path))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	port := addr[strings.LastIndex(addr, ":"):]

	check := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		getenv := envMap(map[string]string{"PROACTIVE_HTTP_ADDR": port})
		err := healthcheck(t.Context(), env{args: args, getenv: getenv, stdout: &out, stderr: &errOut})
		return out.String(), err
	}
	if out, err := check(); err != nil || out != "/healthz" {
		t.Errorf("healthcheck: %q, %v", out, err)
	}
	if out, err := check("--ready"); err != nil || out != "/readyz" {
		t.Errorf("healthcheck --ready: %q, %v", out, err)
	}
	if out, err := check("--url", srv.URL+"/healthz"); err != nil || out != "/healthz" {
		t.Errorf("healthcheck --url: %q, %v", out, err)
	}
	status = http.StatusServiceUnavailable
	if _, err := check("--ready"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("not ready: %v", err)
	}
	srv.Close()
	if _, err := check(); err == nil {
		t.Error("nothing listening: no error")
	}
}
