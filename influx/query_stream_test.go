package influx

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A query's timeout bounds each pause in its streamed result, not the whole
// stream: a rebuild of a large fleet reads for minutes and must not be cut
// short (it was, at 10 s, and fell back to a raw replay), while a stream
// that stops gets an error. influxd cannot be made to pause mid-stream, so
// this server plays one that streams chunks slowly and then stalls.
func TestQueryStreamTimeout(t *testing.T) {
	const chunks = 6
	stall := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Token tok" {
			http.Error(w, "unauthorized: "+got, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		for i := range chunks {
			fmt.Fprintf(w, `{"results":[{"statement_id":0,"series":[{"name":"telemetry","columns":["time","v"],"values":[[%d,1]],"partial":true}],"partial":true}]}`+"\n", i)
			w.(http.Flusher).Flush()
			// Each pause is well inside the timeout; together they are
			// longer than it.
			select {
			case <-time.After(250 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		if r.URL.Query().Get("q") == "SELECT stall" {
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(stall)
	s := New(Options{URL: srv.URL, Token: "tok", Bucket: "telemetry", Timeout: time.Second})
	defer s.Close()

	rows := 0
	if err := s.influxQL(context.Background(), "SELECT slow", func(_ int, sr *resultSeries) error {
		rows += len(sr.Values)
		return nil
	}); err != nil {
		t.Fatalf("a slow stream that keeps coming: %v", err)
	}
	if rows != chunks {
		t.Errorf("read %d rows, want %d", rows, chunks)
	}

	rows = 0
	err := s.influxQL(context.Background(), "SELECT stall", func(_ int, sr *resultSeries) error {
		rows += len(sr.Values)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "no data for 1s") {
		t.Errorf("a stream that stops: err = %v, want it to say no data for 1s", err)
	}
	if rows != chunks {
		t.Errorf("read %d rows before the stall, want %d", rows, chunks)
	}
}
