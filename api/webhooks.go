package api

import (
	"errors"
	"net/http"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// webhookRequest registers a webhook.
type webhookRequest struct {
	URL    string                `json:"url"`
	Events []proactive.EventType `json:"events"`
	Secret string                `json:"secret"`
	Format string                `json:"format"`
}

// webhookPatch changes a webhook: only enabled, for now.
type webhookPatch struct {
	Enabled *bool `json:"enabled"`
}

func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	hooks, err := s.Store.Webhooks(r.Context())
	if err != nil {
		return err
	}
	if hooks == nil {
		hooks = []proactive.Webhook{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": hooks})
}

// createWebhook registers a webhook. A bad URL, an unknown event type or a
// short secret is a 400 that names the field (and the valid event types).
func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	var req webhookRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	tok := tokenOf(r.Context())
	hook, err := s.Store.CreateWebhook(r.Context(), proactive.Webhook{URL: req.URL, Events: req.Events, Format: req.Format,
		CreatedBy: tok.Name}, req.Secret)
	var fe *devices.FieldErrors
	if errors.As(err, &fe) {
		return badRequest(fe.Fields, "%s", fe.Err.Message)
	} else if err != nil {
		return err
	}
	s.log.Info("webhook created", "webhook", hook.ID, "events", len(hook.Events), "by", tok.ID)
	return writeJSON(w, http.StatusCreated, hook)
}

func (s *server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[webhookPatch](r)
	if err != nil {
		return err
	}
	if req.Enabled == nil {
		return badRequest(map[string]string{"enabled": "required: true or false"}, "nothing to change: send {\"enabled\": false}")
	}
	hook, err := s.Store.EnableWebhook(r.Context(), id, *req.Enabled)
	if err != nil {
		return err
	}
	s.log.Info("webhook changed", "webhook", id, "enabled", hook.Enabled, "by", tokenOf(r.Context()).ID)
	return writeJSON(w, http.StatusOK, hook)
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	if err := s.Store.DeleteWebhook(r.Context(), id); err != nil {
		return err
	}
	s.log.Info("webhook deleted", "webhook", id, "by", tokenOf(r.Context()).ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) webhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := s.Store.WebhookDeliveries(r.Context(), id, opt)
	if err != nil {
		return err
	}
	if page.Items == nil {
		page.Items = []devices.Delivery{}
	}
	return writeJSON(w, http.StatusOK, page)
}

// retryWebhookDelivery sends a dead delivery again: 404 for a delivery of
// another webhook, 409 for one that is not dead.
func (s *server) retryWebhookDelivery(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	delivery, err := int64Param(r, "delivery")
	if err != nil {
		return err
	}
	d, err := s.Store.RetryWebhookDelivery(r.Context(), id, delivery)
	if err != nil {
		return err
	}
	s.log.Info("webhook delivery retried", "webhook", id, "delivery", delivery, "event", d.EventID, "by", tokenOf(r.Context()).ID)
	return writeJSON(w, http.StatusOK, d)
}
