package web

import (
	"fmt"
	"net/http"
	"strconv"

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
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderError(w, r, http.StatusNotFound, fmt.Sprintf("there is no incident %q", r.PathValue("id")))
		return
	}
	i, err := s.Store.DismissIncident(r.Context(), id, sessionOf(r.Context()).Actor(), r.PostFormValue("note"))
	msg := fmt.Sprintf("Incident %d dismissed: its tickets in review are closed as false alarms.", i.ID)
	switch status := statusOf(err); {
	case err == nil:
	case status == http.StatusInternalServerError:
		s.fail(w, r, err)
		return
	case status == http.StatusNotFound:
		s.renderError(w, r, status, proactive.ErrorMessage(err))
		return
	default:
		msg = proactive.ErrorMessage(err)
	}
	s.sessions.setFlash(sessionOf(r.Context()), msg)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
