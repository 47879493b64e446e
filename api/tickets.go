package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// listTickets lists tickets newest first. status takes a comma-separated
// list (or repeats); a technician sees only their own tickets.
func (s *server) listTickets(w http.ResponseWriter, r *http.Request) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := devices.TicketFilter{Device: proactive.DeviceID(q.Get("device_id")), Technician: q.Get("technician_id"),
		Rule: q.Get("rule"), ListOptions: opt}
	for _, v := range q["status"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if !proactive.TicketStatus(st).Valid() {
				return badRequest(map[string]string{"status": fmt.Sprintf("%q is not a ticket status", st)},
					"bad query parameter status=%q", v)
			}
			f.Status = append(f.Status, proactive.TicketStatus(st))
		}
	}
	if v := q.Get("active"); v != "" {
		if f.Active, err = strconv.ParseBool(v); err != nil {
			return badRequest(map[string]string{"active": "want true or false"}, "bad query parameter active=%q", v)
		}
	}
	if v := q.Get("updated_since"); v != "" {
		if f.UpdatedSince, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return badRequest(map[string]string{"updated_since": "want an RFC 3339 time, like 2026-03-10T09:30:00Z"},
				"bad query parameter updated_since=%q", v)
		}
	}
	if v := q.Get("follow_up"); v != "" {
		if f.FollowUp, err = strconv.ParseBool(v); err != nil {
			return badRequest(map[string]string{"follow_up": "want true or false"}, "bad query parameter follow_up=%q", v)
		}
	}
	if tok := tokenOf(r.Context()); tok.Role == devices.RoleTechnician {
		if f.Technician != "" && f.Technician != tok.TechnicianID {
			return forbidden("a technician token sees only the tickets of technician %s", tok.TechnicianID)
		}
		f.Technician = tok.TechnicianID
	}
	page, err := s.Store.ListTickets(r.Context(), f)
	if err != nil {
		var fe *devices.FieldErrors
		if errors.As(err, &fe) { // a malformed cursor
			return &httpError{status: http.StatusBadRequest, code: "bad_request", msg: proactive.ErrorMessage(err), fields: fe.Fields}
		}
		return err
	}
	return writeJSON(w, http.StatusOK, nonNilPage(page))
}

// visible returns the ticket if the token may see it: staff see every
// ticket, a technician those assigned to them; others are ENotFound, so as
// not to tell which ids exist.
func visible(tok devices.Token, t proactive.Ticket, err error) (proactive.Ticket, error) {
	if err != nil {
		return proactive.Ticket{}, err
	}
	if tok.Role == devices.RoleTechnician && t.Technician != tok.TechnicianID {
		return proactive.Ticket{}, proactive.Errorf(proactive.ENotFound, "ticket %d not found", t.ID)
	}
	return t, nil
}

func (s *server) getTicket(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	t, err := s.Store.GetTicket(r.Context(), id)
	if t, err = visible(tokenOf(r.Context()), t, err); err != nil {
		return err
	}
	if t.Timeline == nil {
		t.Timeline = []proactive.TicketEvent{}
	}
	return writeJSON(w, http.StatusOK, t)
}

// change runs fn on ticket id in one transaction after checking, for a
// technician, that the ticket is theirs. The check and the change are one
// transaction, so a reassignment cannot slip between them.
func (s *server) change(ctx context.Context, id int64, fn func(tx *devices.Tx, tok devices.Token) error) error {
	tok := tokenOf(ctx)
	return s.Store.WithTx(ctx, func(tx *devices.Tx) error {
		if tok.Role == devices.RoleTechnician {
			t, err := tx.LockTicket(ctx, id)
			if proactive.ErrorCode(err) == proactive.ENotFound || (err == nil && t.Technician != tok.TechnicianID) {
				return proactive.Errorf(proactive.ENotFound, "ticket %d not found", id)
			} else if err != nil {
				return fmt.Errorf("check ticket assignment: %w", err)
			}
		}
		return fn(tx, tok)
	})
}

type followUpRequest struct {
	Note string `json:"note"`
}

// handleFollowUp marks a ticket's follow-up handled by the caller.
func (s *server) handleFollowUp(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[followUpRequest](r)
	if err != nil {
		return err
	}
	var t proactive.Ticket
	err = s.change(r.Context(), id, func(tx *devices.Tx, tok devices.Token) error {
		t, err = tx.HandleFollowUp(r.Context(), id, actor(tok), req.Note)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

type assignRequest struct {
	// TechnicianID is who to assign; empty unassigns.
	TechnicianID *string `json:"technician_id"`
}

func (s *server) assignTicket(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[assignRequest](r)
	if err != nil {
		return err
	}
	if req.TechnicianID == nil {
		return &devices.FieldErrors{Err: proactive.Errorf(proactive.EInvalid, "invalid assignment: technician_id: required"),
			Fields: map[string]string{"technician_id": `required: a technician's id, or "" to unassign`}}
	}
	t, err := s.Store.Assign(r.Context(), id, *req.TechnicianID, actor(tokenOf(r.Context())))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

type transitionRequest struct {
	Status proactive.TicketStatus `json:"status"`
	Note   string                 `json:"note"`
}

// transitionTicket moves a ticket along the state machine. A technician may
// only mark their own scheduled visit visited.
func (s *server) transitionTicket(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[transitionRequest](r)
	if err != nil {
		return err
	}
	if tok := tokenOf(r.Context()); tok.Role == devices.RoleTechnician && req.Status != proactive.TicketVisited {
		return forbidden("a technician may only move a ticket to visited (and close it with POST .../close)")
	}
	var t proactive.Ticket
	err = s.change(r.Context(), id, func(tx *devices.Tx, tok devices.Token) error {
		t, err = tx.Transition(r.Context(), id, req.Status, actor(tok), req.Note)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

type closeRequest struct {
	Outcome proactive.Outcome `json:"outcome"`
	Notes   string            `json:"notes"`
}

func (s *server) closeTicket(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[closeRequest](r)
	if err != nil {
		return err
	}
	var t proactive.Ticket
	err = s.change(r.Context(), id, func(tx *devices.Tx, tok devices.Token) error {
		t, err = tx.CloseTicket(r.Context(), id, req.Outcome, req.Notes, actor(tok))
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

type commentRequest struct {
	Text string `json:"text"`
}

func (s *server) commentTicket(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[commentRequest](r)
	if err != nil {
		return err
	}
	var e proactive.TicketEvent
	err = s.change(r.Context(), id, func(tx *devices.Tx, tok devices.Token) error {
		e, err = tx.Comment(r.Context(), id, actor(tok), req.Text)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, e)
}
