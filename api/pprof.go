package api

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/proactivehq/proactive"
)

// CPU profiling and execution tracing are process-wide: one of each runs at
// a time, and a second request waits for its turn (or for its client to go
// away) instead of failing. Package-level because the resource they guard
// is, whatever number of API handlers the process builds.
var (
	cpuProfiling = make(chan struct{}, 1)
	tracing      = make(chan struct{}, 1)
)

// pprofNames are the runtime profiles served by /debug/pprof/{name}.
var pprofNames = []string{"allocs", "block", "goroutine", "heap", "mutex", "threadcreate"}

// pprofIndex lists the profiles (net/http/pprof's page; its links are
// relative, so they work under the API's prefix).
func (s *server) pprofIndex(w http.ResponseWriter, r *http.Request) error {
	pprof.Index(w, r)
	return nil
}

// pprofProfile serves a runtime profile by name, such as heap.
func (s *server) pprofProfile(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	for _, n := range pprofNames {
		if n == name {
			pprof.Handler(name).ServeHTTP(w, r)
			return nil
		}
	}
	return proactive.Errorf(proactive.ENotFound, "no profile %q: want one of allocs, block, goroutine, heap, mutex, threadcreate, profile, trace", name)
}

// maxProfileSeconds bounds a CPU profile or a trace.
const maxProfileSeconds = 300

// pprofCPU serves a CPU profile of seconds (default 30).
func (s *server) pprofCPU(w http.ResponseWriter, r *http.Request) error {
	secs := 30
	if v := r.URL.Query().Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxProfileSeconds {
			return badRequest(map[string]string{"seconds": "want an integer from 1 to 300"}, "bad query parameter seconds=%q", v)
		}
		secs = n
	}
	return s.exclusive(w, r, cpuProfiling, time.Duration(secs)*time.Second, pprof.Profile)
}

// pprofTrace serves an execution trace of seconds (default 1, fractions
// allowed).
func (s *server) pprofTrace(w http.ResponseWriter, r *http.Request) error {
	secs := 1.0
	if v := r.URL.Query().Get("seconds"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f <= maxProfileSeconds) {
			return badRequest(map[string]string{"seconds": "want a number of seconds above 0, at most 300"}, "bad query parameter seconds=%q", v)
		}
		secs = f
	}
	return s.exclusive(w, r, tracing, time.Duration(secs*float64(time.Second)), pprof.Trace)
}

// exclusive runs h, which streams for d, once it holds slot. The wait for
// the slot and d are outside the server's WriteTimeout.
func (s *server) exclusive(w http.ResponseWriter, r *http.Request, slot chan struct{}, d time.Duration, h http.HandlerFunc) error {
	r = extendWrite(w, r, maxProfileSeconds*time.Second+d)
	select {
	case slot <- struct{}{}:
	case <-r.Context().Done():
		return nil // the client went away while waiting: nobody to answer
	}
	defer func() { <-slot }()
	h(w, r)
	return nil
}
