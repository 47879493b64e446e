package api

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/proactivehq/proactive/rules"
)

// The contact policy's routes: a dispatcher approves or dismisses a ticket
// in review, and the rules list shows each rule's measured trust.

func (s *server) approveTicket(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	t, err := o.Approve(r.Context(), id, actor(tokenOf(r.Context())))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

type dismissRequest struct {
	Note string `json:"note"`
}

func (s *server) dismissTicket(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	// The body is optional: no body is no note.
	var req dismissRequest
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return badRequest(nil, "read body: %v", err)
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	t, err := o.Dismiss(r.Context(), id, actor(tokenOf(r.Context())), req.Note)
	if err != nil {
		return asField(err, "note")
	}
	return writeJSON(w, http.StatusOK, t)
}

// ruleItem is a rule of GET /rules: the engine's state and the rule's
// measured trust.
type ruleItem struct {
	rules.RuleStatus
	// Precision is the share of the rule's outcomes that confirmed a
	// fault, null without any; Outcomes the count behind it.
	Precision *float64 `json:"precision"`
	Outcomes  int      `json:"outcomes"`
	Confirmed int      `json:"confirmed"`
	// Held is set when the rule's new tickets wait in review for its low
	// precision.
	Held bool `json:"held"`
}

// rulesWithTrust joins the rules' trust to their state. Without the
// outreach loop, or when the database fails (logged), trust is left out:
// the rule engine's state is still worth showing.
func (s *server) rulesWithTrust(ctx context.Context, rs []rules.RuleStatus) []ruleItem {
	out := make([]ruleItem, len(rs))
	for i, r := range rs {
		out[i].RuleStatus = r
	}
	if s.Outreach == nil {
		return out
	}
	trust, err := s.Outreach.Trust(ctx)
	if err != nil {
		s.log.Error("read rules' trust", "err", err)
		return out
	}
	for i := range out {
		if t, ok := trust[out[i].Name]; ok {
			p := t.Precision
			out[i].Precision, out[i].Outcomes, out[i].Confirmed, out[i].Held = &p, t.Outcomes, t.Confirmed, t.Held
		}
	}
	return out
}
