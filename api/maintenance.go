package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// maintenanceRequest is the body of POST /devices/{id}/maintenance. Time is
// RFC 3339 or Unix milliseconds, as in the CSV import.
type maintenanceRequest struct {
	Time      json.RawMessage           `json:"time"`
	Component string                    `json:"component"`
	Kind      proactive.MaintenanceKind `json:"kind"`
	Notes     string                    `json:"notes"`
}

// maintenanceTime reads a body's time: a JSON string (RFC 3339, or Unix
// milliseconds as text) or a JSON number of Unix milliseconds. Missing is
// the zero time, which validation reports as required.
func maintenanceTime(raw json.RawMessage) (time.Time, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return time.Time{}, nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
	} else if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return time.Time{}, errors.New("want an RFC 3339 string or Unix milliseconds")
	}
	return devices.ParseMaintenanceTime(s)
}

// addMaintenance records maintenance of the device: 201 with the record,
// whose id is the stored one's when the same record (device, time,
// component, kind) was recorded before.
func (s *server) addMaintenance(w http.ResponseWriter, r *http.Request) error {
	var req maintenanceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	at, timeErr := maintenanceTime(req.Time)
	m := proactive.Maintenance{Device: proactive.DeviceID(chi.URLParam(r, "id")), Time: at,
		Component: req.Component, Kind: req.Kind, Notes: req.Notes}
	ids, err := s.Store.AddMaintenance(r.Context(), []proactive.Maintenance{m})
	var fe *devices.FieldErrors
	if timeErr != nil && errors.As(err, &fe) {
		// The store saw no time; say what was wrong with the one given.
		fe.Fields["time"] = timeErr.Error()
		fe.Err = proactive.Errorf(proactive.EInvalid, "%s",
			strings.Replace(fe.Err.Message, "time: required", "time: "+timeErr.Error(), 1))
	}
	if err != nil {
		return err
	}
	m.ID, m.Time = ids[0], m.Time.Truncate(time.Microsecond)
	return writeJSON(w, http.StatusCreated, m)
}

// listMaintenance answers a device's maintenance history, oldest first.
func (s *server) listMaintenance(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.Store.DeviceMaintenance(r.Context(), proactive.DeviceID(chi.URLParam(r, "id")))
	if err != nil {
		return err
	}
	return writeItems(w, ms)
}
