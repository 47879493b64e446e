package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// admin admits admins only: webhooks send the platform's events elsewhere.
func (s *server) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sessionOf(r.Context()).Admin() {
			s.renderError(w, r, http.StatusForbidden, "Only admins may manage webhooks.")
			return
		}
		h(w, r)
	})
}

type webhooksData struct {
	pageData
	Hooks []proactive.Webhook
	Types []proactive.EventType
	// Form is what was typed in a registration that was refused (the
	// secret left out), and Problems its problems by field.
	Form     webhookForm
	Problems map[string]string
}

type webhookForm struct {
	URL    string
	Events map[proactive.EventType]bool
	Format string
}

// webhooksPage lists the webhooks, with a form to register one.
func (s *server) webhooksPage(w http.ResponseWriter, r *http.Request) {
	s.renderWebhooks(w, r, http.StatusOK, webhookForm{Format: proactive.WebhookJSON}, nil)
}

func (s *server) renderWebhooks(w http.ResponseWriter, r *http.Request, status int, form webhookForm, problems map[string]string) {
	hooks, err := s.Store.Webhooks(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := webhooksData{pageData: s.base(r, "Webhooks", "webhooks"), Hooks: hooks, Types: proactive.EventTypes,
		Form: form, Problems: problems}
	if len(problems) > 0 {
		d.Error = "The webhook was not registered: see the fields below."
	}
	s.render(w, r, status, "webhooks", d)
}

// createWebhook registers a webhook from the form; a refusal shows the form
// again with each problem.
func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) {
	form := webhookForm{URL: r.PostFormValue("url"), Format: r.PostFormValue("format"), Events: map[proactive.EventType]bool{}}
	hook := proactive.Webhook{URL: form.URL, Format: form.Format, CreatedBy: sessionOf(r.Context()).Actor()}
	for _, e := range r.PostForm["events"] {
		form.Events[proactive.EventType(e)] = true
		hook.Events = append(hook.Events, proactive.EventType(e))
	}
	created, err := s.Store.CreateWebhook(r.Context(), hook, r.PostFormValue("secret"))
	var fe *devices.FieldErrors
	if errors.As(err, &fe) {
		s.renderWebhooks(w, r, http.StatusBadRequest, form, fe.Fields)
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	s.sessions.setFlash(sessionOf(r.Context()), fmt.Sprintf("Webhook %d registered: events go to %s.", created.ID, created.URL))
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
}

// enableWebhook enables or disables a webhook, as the form's enabled says.
func (s *server) enableWebhook(w http.ResponseWriter, r *http.Request) {
	s.flashAction(w, r, "webhook", func(id int64) (string, string, error) {
		on := r.PostFormValue("enabled") == "true"
		_, err := s.Store.EnableWebhook(r.Context(), id, on)
		if on {
			return fmt.Sprintf("Webhook %d enabled.", id), "/webhooks", err
		}
		return fmt.Sprintf("Webhook %d disabled: it gets no new events.", id), "/webhooks", err
	})
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	s.flashAction(w, r, "webhook", func(id int64) (string, string, error) {
		return fmt.Sprintf("Webhook %d deleted.", id), "/webhooks", s.Store.DeleteWebhook(r.Context(), id)
	})
}

// retryWebhookDelivery sends a dead delivery again and goes back to the
// log; one that is no longer dead (retried in another tab) is a flash.
func (s *server) retryWebhookDelivery(w http.ResponseWriter, r *http.Request) {
	s.flashAction(w, r, "webhook", func(id int64) (string, string, error) {
		back := fmt.Sprintf("/webhooks/%d", id)
		delivery, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
		if err != nil || delivery <= 0 {
			return "", back, proactive.Errorf(proactive.ENotFound, "there is no delivery %q", r.PathValue("delivery"))
		}
		d, err := s.Store.RetryWebhookDelivery(r.Context(), id, delivery)
		return fmt.Sprintf("Delivery of %s (%s) queued again: it goes out now.", d.EventID, d.Type), back, err
	})
}

type deliveriesData struct {
	pageData
	Hook       proactive.Webhook
	Deliveries []devices.Delivery
	More       bool
}

// webhookPage shows a webhook's latest deliveries.
func (s *server) webhookPage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderError(w, r, http.StatusNotFound, fmt.Sprintf("there is no webhook %q", r.PathValue("id")))
		return
	}
	hook, err := s.Store.Webhook(r.Context(), id)
	if err == nil {
		var page devices.Page[devices.Delivery]
		page, err = s.Store.WebhookDeliveries(r.Context(), id, devices.ListOptions{Limit: 200})
		if err == nil {
			d := deliveriesData{pageData: s.base(r, fmt.Sprintf("Webhook %d", id), "webhooks"), Hook: hook,
				Deliveries: page.Items, More: page.Next != ""}
			s.render(w, r, http.StatusOK, "webhook", d)
			return
		}
	}
	if statusOf(err) == http.StatusNotFound {
		s.renderError(w, r, http.StatusNotFound, proactive.ErrorMessage(err))
		return
	}
	s.fail(w, r, err)
}
