package web

import (
	"fmt"
	"net/http"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// boardIncidents is how many open incidents the board shows.
const boardIncidents = 20

// openIncidents are the incidents the board's panel shows, newest first.
func (s *server) openIncidents(r *http.Request) ([]proactive.Incident, error) {
	return s.Store.ListIncidents(r.Context(), devices.IncidentFilter{Status: proactive.IncidentOpen, Limit: boardIncidents})
}

// dismissIncident dismisses an incident from the board's panel: its tickets
// in review close as false alarms. A refusal (dismissed already) is the
// board's flash message, as is the success.
func (s *server) dismissIncident(w http.ResponseWriter, r *http.Request) {
	s.flashAction(w, r, "incident", func(id int64) (string, string, error) {
		_, err := s.Store.DismissIncident(r.Context(), id, sessionOf(r.Context()).Actor(), r.PostFormValue("note"))
		return fmt.Sprintf("Incident %d dismissed: its tickets in review are closed as false alarms.", id), "/", err
	})
}
