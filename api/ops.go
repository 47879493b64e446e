package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
)

func (s *server) deadLetters(w http.ResponseWriter, r *http.Request) error {
	if s.DeadLetters == nil {
		return unavailable("the dead-letter log")
	}
	n := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			return badRequest(map[string]string{"limit": "want an integer from 1 to 1000"}, "bad query parameter limit=%q", v)
		}
	}
	items := s.DeadLetters(n)
	return writeItems(w, items)
}

// deviceParam reads the {id} of a device route, 400 when it cannot be one.
func deviceParam(r *http.Request) (proactive.DeviceID, error) {
	id := chi.URLParam(r, "id")
	if !proactive.ValidDeviceID(id) {
		return "", badRequest(map[string]string{"id": "must match [A-Za-z0-9_.-]{1,64}"}, "%q is not a device id", id)
	}
	return proactive.DeviceID(id), nil
}

func (s *server) latestTelemetry(w http.ResponseWriter, r *http.Request) error {
	dev, err := deviceParam(r)
	if err != nil {
		return err
	}
	if s.Telemetry == nil {
		return unavailable("telemetry")
	}
	vals, err := s.Telemetry.Latest(r.Context(), dev)
	if err != nil {
		return err
	}
	if vals == nil {
		vals = []influx.MetricValue{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"device_id": dev, "metrics": vals})
}

// parseTime reads an RFC 3339 time, "now", or a time relative to now such
// as -1h, -30m or -7d (the platform's duration grammar: s, m, h, d, w).
func parseTime(v string, now time.Time) (time.Time, bool) {
	if v == "now" {
		return now, true
	}
	if rest, ok := strings.CutPrefix(v, "-"); ok {
		d, err := proactive.ParseDuration(rest)
		if err != nil || d < 0 {
			return time.Time{}, false
		}
		return now.Add(-d), true
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

// rangeResponse is the answer of GET /devices/{id}/telemetry.
type rangeResponse struct {
	Device proactive.DeviceID    `json:"device_id"`
	From   time.Time             `json:"from"`
	To     time.Time             `json:"to"`
	Every  string                `json:"every"`
	Series []influx.MetricSeries `json:"series"`
}

func (s *server) rangeTelemetry(w http.ResponseWriter, r *http.Request) error {
	dev, err := deviceParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	now := s.Now().UTC()
	bad := map[string]string{}
	from, to := now.Add(-time.Hour), now
	if v := q.Get("from"); v != "" {
		var ok bool
		if from, ok = parseTime(v, now); !ok {
			bad["from"] = "want RFC 3339 (2026-03-10T09:30:00Z), now, or relative like -1h, -7d"
		}
	}
	if v := q.Get("to"); v != "" {
		var ok bool
		if to, ok = parseTime(v, now); !ok {
			bad["to"] = "want RFC 3339 (2026-03-10T09:30:00Z), now, or relative like -1h, -7d"
		}
	}
	var metrics []string
	for _, v := range q["metric"] {
		for _, m := range strings.Split(v, ",") {
			if !proactive.ValidMetricName(m) {
				bad["metric"] = strconv.Quote(m) + " is not a metric name ([a-z][a-z0-9_]{0,63})"
			}
			metrics = append(metrics, m)
		}
	}
	points := min(500, s.MaxPoints)
	if v := q.Get("points"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.MaxPoints {
			bad["points"] = "want an integer from 1 to " + strconv.Itoa(s.MaxPoints)
		}
		points = n
	}
	if len(bad) == 0 {
		switch {
		case !from.Before(to):
			bad["from"] = "must be before to"
		case to.Sub(from) > s.MaxRange:
			bad["from"] = "the range may span at most " + proactive.FormatDuration(s.MaxRange)
		}
	}
	if len(bad) > 0 {
		return badRequest(bad, "bad telemetry query")
	}
	if s.Telemetry == nil {
		return unavailable("telemetry")
	}
	series, every, err := s.Telemetry.Range(r.Context(), dev, metrics, from, to, points)
	if err != nil {
		return err
	}
	if series == nil {
		series = []influx.MetricSeries{}
	}
	return writeJSON(w, http.StatusOK, rangeResponse{Device: dev, From: from, To: to, Every: proactive.FormatDuration(every), Series: series})
}

func (s *server) listRules(w http.ResponseWriter, r *http.Request) error {
	if s.Rules == nil {
		return unavailable("the rule engine")
	}
	return writeItems(w, s.rulesWithTrust(r.Context(), s.Rules.Rules()))
}

func (s *server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	if s.Rules == nil {
		return unavailable("the rule engine")
	}
	items := s.Rules.Alerts()
	return writeItems(w, items)
}

// reloadRules reloads the rule files; windows and alert states of rules
// that keep their names survive (rules.Engine.Load).
func (s *server) reloadRules(w http.ResponseWriter, r *http.Request) error {
	if s.Reload == nil {
		return unavailable("rule reloading")
	}
	n, err := s.Reload(r.Context())
	if err != nil {
		return err
	}
	s.log.Info("rules reloaded", "rules", n, "by", tokenOf(r.Context()).ID)
	return writeJSON(w, http.StatusOK, map[string]int{"rules": n})
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request) error {
	toks, err := s.Tokens.List(r.Context())
	if err != nil {
		return err
	}
	return writeItems(w, toks)
}

type tokenRequest struct {
	Name         string       `json:"name"`
	Role         devices.Role `json:"role"`
	TechnicianID string       `json:"technician_id"`
}

// createTokenResponse carries the plaintext, which is shown this once.
type createTokenResponse struct {
	Token  devices.Token `json:"token"`
	Secret string        `json:"secret"`
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req tokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	tok, plain, err := s.Tokens.Create(r.Context(), req.Name, req.Role, req.TechnicianID)
	if err != nil {
		return err
	}
	s.log.Info("token created", "token", tok.ID, "role", tok.Role, "by", tokenOf(r.Context()).ID)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, createTokenResponse{Token: tok, Secret: plain})
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	tok, err := s.Tokens.Revoke(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	s.log.Info("token revoked", "token", tok.ID, "by", tokenOf(r.Context()).ID)
	return writeJSON(w, http.StatusOK, tok)
}
