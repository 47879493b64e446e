package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// queryParams maps "METHOD /pattern" to the query parameters the OpenAPI
// document declares for it, so that the document is also what checks
// requests: a parameter it does not name (a typo such as device= for
// device_id=) is a 400 instead of a silently ignored filter.
func queryParams(doc []byte) (map[string][]string, error) {
	type param struct {
		Name string `json:"name"`
		In   string `json:"in"`
	}
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	out := map[string][]string{}
	for path, ops := range d.Paths {
		var shared []param
		if raw, ok := ops["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("openapi.json %s parameters: %w", path, err)
			}
		}
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			var op struct {
				Parameters []param `json:"parameters"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("openapi.json %s %s: %w", method, path, err)
			}
			names := []string{}
			for _, p := range append(slices.Clone(shared), op.Parameters...) {
				if p.In == "query" {
					names = append(names, p.Name)
				}
			}
			sort.Strings(names)
			out[strings.ToUpper(method)+" "+path] = names
		}
	}
	return out, nil
}

// strictQuery refuses a request naming a query parameter outside known.
func (s *server) strictQuery(known []string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for name := range r.URL.Query() {
				if !slices.Contains(known, name) {
					want := "none"
					if len(known) > 0 {
						want = strings.Join(known, ", ")
					}
					s.writeError(w, r, badRequest(map[string]string{name: "unknown query parameter"},
						"unknown query parameter %q; this route takes: %s", name, want))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
