package api

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// listIncidents answers {"items": [...]}, newest first, each with its
// devices and tickets; ?status=open|dismissed and ?limit=1..500 narrow it.
func (s *server) listIncidents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := devices.IncidentFilter{Status: proactive.IncidentStatus(q.Get("status"))}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return badRequest(map[string]string{"limit": "want an integer from 1 to 500"}, "bad query parameter limit=%q", v)
		}
		f.Limit = n
	}
	items, err := s.Store.ListIncidents(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *server) getIncident(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	i, err := s.Store.GetIncident(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, i)
}

// dismissIncident closes an open incident as a false alarm: its tickets in
// review close with the outcome false_alarm. The body {"note": "..."} is
// optional.
func (s *server) dismissIncident(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	var req dismissRequest
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	i, err := s.Store.DismissIncident(r.Context(), id, actor(tokenOf(r.Context())), req.Note)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, i)
}

// decodeOptional decodes a JSON body like decode, and leaves v as it is
// when the body is empty.
func decodeOptional(r *http.Request, v any) error {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return decode(r, v) // as decode reports it (too large, ...)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return decode(r, v)
}
