package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// pathID checks that a body's id, if it has one, is the path's.
func pathID(r *http.Request, bodyID string) (string, error) {
	id := chi.URLParam(r, "id")
	if bodyID != "" && bodyID != id {
		return "", &devices.FieldErrors{
			Err:    proactive.Errorf(proactive.EInvalid, "invalid body: id: %q is not the id in the path, %q", bodyID, id),
			Fields: map[string]string{"id": "differs from the id in the path"},
		}
	}
	return id, nil
}

func (s *server) listDevices(w http.ResponseWriter, r *http.Request) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := s.Store.ListDevices(r.Context(), devices.DeviceFilter{CustomerID: q.Get("customer_id"), Model: q.Get("model"), ListOptions: opt})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNilPage(page))
}

func (s *server) createDevice(w http.ResponseWriter, r *http.Request) error {
	var d proactive.Device
	if err := decode(r, &d); err != nil {
		return err
	}
	d, err := s.Store.CreateDevice(r.Context(), d)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, d)
}

func (s *server) getDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := s.Store.GetDevice(r.Context(), proactive.DeviceID(chi.URLParam(r, "id")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *server) updateDevice(w http.ResponseWriter, r *http.Request) error {
	var d proactive.Device
	if err := decode(r, &d); err != nil {
		return err
	}
	id, err := pathID(r, string(d.ID))
	if err != nil {
		return err
	}
	d.ID = proactive.DeviceID(id)
	if d, err = s.Store.UpdateDevice(r.Context(), d); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	if err := s.Store.DeleteDevice(r.Context(), proactive.DeviceID(chi.URLParam(r, "id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) listCustomers(w http.ResponseWriter, r *http.Request) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := s.Store.ListCustomers(r.Context(), opt)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNilPage(page))
}

func (s *server) createCustomer(w http.ResponseWriter, r *http.Request) error {
	var c proactive.Customer
	if err := decode(r, &c); err != nil {
		return err
	}
	c, err := s.Store.CreateCustomer(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *server) getCustomer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Store.GetCustomer(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *server) updateCustomer(w http.ResponseWriter, r *http.Request) error {
	var c proactive.Customer
	if err := decode(r, &c); err != nil {
		return err
	}
	id, err := pathID(r, c.ID)
	if err != nil {
		return err
	}
	c.ID = id
	if c, err = s.Store.UpdateCustomer(r.Context(), c); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *server) deleteCustomer(w http.ResponseWriter, r *http.Request) error {
	if err := s.Store.DeleteCustomer(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) consentHistory(w http.ResponseWriter, r *http.Request) error {
	evs, err := s.Store.ConsentHistory(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return writeItems(w, evs)
}

// consentRequest is the body of POST /customers/{id}/consent; the actor is
// the token's holder.
type consentRequest struct {
	Granted *bool                   `json:"granted"`
	Channel proactive.Channel       `json:"channel"`
	Method  proactive.ConsentMethod `json:"method"`
	At      time.Time               `json:"at"`
	Note    string                  `json:"note"`
}

func (s *server) recordConsent(w http.ResponseWriter, r *http.Request) error {
	var req consentRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Granted == nil {
		return &devices.FieldErrors{Err: proactive.Errorf(proactive.EInvalid, "invalid consent event: granted: required"),
			Fields: map[string]string{"granted": "required: true or false"}}
	}
	if req.Method == "" {
		req.Method = proactive.ConsentAPI
	}
	ev, err := s.Store.RecordConsent(r.Context(), chi.URLParam(r, "id"), proactive.ConsentEvent{
		Channel: req.Channel, Granted: *req.Granted, Method: req.Method, At: req.At, Note: req.Note, Actor: actor(tokenOf(r.Context())),
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, ev)
}

func (s *server) listTechnicians(w http.ResponseWriter, r *http.Request) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := s.Store.ListTechnicians(r.Context(), devices.TechnicianFilter{Skill: q.Get("skill"), PostalCode: q.Get("postal_code"), ListOptions: opt})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNilPage(page))
}

func (s *server) createTechnician(w http.ResponseWriter, r *http.Request) error {
	var t proactive.Technician
	if err := decode(r, &t); err != nil {
		return err
	}
	t, err := s.Store.CreateTechnician(r.Context(), t)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, t)
}

// getTechnician serves staff any technician, and a technician themself.
func (s *server) getTechnician(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if tok := tokenOf(r.Context()); tok.Role == devices.RoleTechnician && tok.TechnicianID != id {
		return forbidden("a technician token may read only its own technician, %s", tok.TechnicianID)
	}
	t, err := s.Store.GetTechnician(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *server) updateTechnician(w http.ResponseWriter, r *http.Request) error {
	var t proactive.Technician
	if err := decode(r, &t); err != nil {
		return err
	}
	id, err := pathID(r, t.ID)
	if err != nil {
		return err
	}
	t.ID = id
	if t, err = s.Store.UpdateTechnician(r.Context(), t); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *server) deleteTechnician(w http.ResponseWriter, r *http.Request) error {
	if err := s.Store.DeleteTechnician(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// nonNilPage makes an empty page's items [] rather than null.
func nonNilPage[T any](p devices.Page[T]) devices.Page[T] {
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}
