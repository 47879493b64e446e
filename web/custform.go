package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/proactivehq/proactive"
)

// ticketCustomer reads the customer of a ticket's device: ENotFound when
// the ticket or its device has none, so the forms answer 404 for them.
func (s *server) ticketCustomer(r *http.Request, id int64) (proactive.Customer, error) {
	ctx := r.Context()
	t, err := s.Store.GetTicket(ctx, id)
	if err != nil {
		return proactive.Customer{}, err
	}
	d, err := s.Store.GetDevice(ctx, t.Device)
	if err != nil {
		return proactive.Customer{}, err
	}
	c, err := s.customerOf(ctx, d)
	if err != nil {
		return proactive.Customer{}, err
	}
	if c == nil {
		return proactive.Customer{}, proactive.Errorf(proactive.ENotFound, "ticket %d has no customer", id)
	}
	return *c, nil
}

// setChannel changes the preferred channel, and the email address, of the
// ticket's customer, as PUT /api/v1/customers/{id} does: the store
// validates (email needs an address), and a refusal comes back as the flash
// with nothing changed.
func (s *server) setChannel(w http.ResponseWriter, r *http.Request) {
	s.flashAction(w, r, "ticket", func(id int64) (string, string, error) {
		back := fmt.Sprintf("/tickets/%d", id)
		c, err := s.ticketCustomer(r, id)
		if err != nil {
			return "", back, err
		}
		c.PreferredChannel = proactive.Channel(r.PostFormValue("channel"))
		if c.PreferredChannel == "" {
			return "", back, proactive.Errorf(proactive.EInvalid, "choose a channel")
		}
		// An empty field keeps the address on file: the field is for
		// changing it, not for erasing it by leaving it blank.
		if e := strings.TrimSpace(r.PostFormValue("email")); e != "" {
			c.Email = e
		}
		c, err = s.Store.UpdateCustomer(r.Context(), c)
		if err != nil {
			return "", back, err
		}
		return fmt.Sprintf("%s is now reached by %s.", c.Name, channelName(c.PreferredChannel)), back, nil
	})
}

// setConsent records on the ticket's customer's consent trail that they
// gave or withdrew consent to a channel on the phone, with the signed-in
// person as the actor, as POST /api/v1/customers/{id}/consent does.
func (s *server) setConsent(w http.ResponseWriter, r *http.Request) {
	s.flashAction(w, r, "ticket", func(id int64) (string, string, error) {
		back := fmt.Sprintf("/tickets/%d", id)
		var granted bool
		switch r.PostFormValue("granted") {
		case "true":
			granted = true
		case "false":
		default:
			return "", back, proactive.Errorf(proactive.EInvalid, "say whether consent was given or withdrawn")
		}
		ch := proactive.Channel(r.PostFormValue("channel"))
		if !ch.Valid() {
			return "", back, proactive.Errorf(proactive.EInvalid, "%q is not one of sms, whatsapp, email", ch)
		}
		c, err := s.ticketCustomer(r, id)
		if err != nil {
			return "", back, err
		}
		_, err = s.Store.RecordConsent(r.Context(), c.ID, proactive.ConsentEvent{Channel: ch, Granted: granted,
			Method: proactive.ConsentPhoneCall, Actor: sessionOf(r.Context()).Actor(),
			Note: fmt.Sprintf("recorded on the page of ticket %d", id)})
		if err != nil {
			return "", back, err
		}
		if granted {
			return fmt.Sprintf("%s's consent to %s recorded.", c.Name, channelName(ch)), back, nil
		}
		return fmt.Sprintf("%s's consent to %s withdrawn.", c.Name, channelName(ch)), back, nil
	})
}
