package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/go-chi/chi/v5"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The window of visits a calendar feed carries: the last month's, for the
// record, and the next three months'.
const (
	calendarPast   = 31 * 24 * time.Hour
	calendarFuture = 92 * 24 * time.Hour
)

// calendar is GET /technicians/{id}/calendar.ics: the technician's visits
// as an iCalendar feed (RFC 5545) that calendar apps subscribe to. Those
// send no headers, so the feed's URL may carry the token as ?token=
// (authenticate takes it there for .ics paths only); a technician's token
// is that technician's secret URL.
func (s *server) calendar(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if tok := tokenOf(r.Context()); tok.Role == devices.RoleTechnician && tok.TechnicianID != id {
		return forbidden("a technician token may read only its own calendar, %s's", tok.TechnicianID)
	}
	tech, err := s.Store.GetTechnician(r.Context(), id)
	if err != nil {
		return err
	}
	now := s.Now()
	visits, err := s.Store.Appointments(r.Context(), devices.AppointmentFilter{Technician: id,
		From: now.Add(-calendarPast), To: now.Add(calendarFuture)})
	if err != nil {
		return err
	}
	cal := ics.NewCalendar()
	cal.SetMethod(ics.MethodPublish)
	cal.SetProductId("-//proactive//visits//EN")
	cal.SetName("Visits of " + tech.Name)
	cal.SetXWRCalName("Visits of " + tech.Name)
	cal.SetRefreshInterval("PT1H")
	for _, v := range visits {
		if v.Status == "cancelled" {
			continue
		}
		ev := cal.AddEvent(fmt.Sprintf("visit-%d@proactive", v.ID))
		ev.SetDtStampTime(v.BookedAt)
		ev.SetStartAt(v.Start)
		ev.SetEndAt(v.End)
		summary, where, notes := s.visitText(r, v)
		ev.SetSummary(summary)
		if where != "" {
			ev.SetLocation(where)
		}
		ev.SetDescription(notes)
		if v.Status == "done" {
			ev.SetStatus(ics.ObjectStatusCompleted)
		} else {
			ev.SetStatus(ics.ObjectStatusConfirmed)
		}
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Cache-Control", "private, max-age=300")
	return cal.SerializeTo(w)
}

// visitText is what a visit's calendar entry says: the part and the
// device, the site's address, and who to call. A ticket, device or
// customer that cannot be read leaves its part out rather than the feed.
func (s *server) visitText(r *http.Request, v devices.Appointment) (summary, where, notes string) {
	ctx := r.Context()
	summary = fmt.Sprintf("Visit, ticket %d", v.Ticket)
	var b strings.Builder
	fmt.Fprintf(&b, "Ticket %d", v.Ticket)
	t, err := s.Store.GetTicket(ctx, v.Ticket)
	if err != nil {
		return summary, "", b.String()
	}
	summary = fmt.Sprintf("%s: %s (ticket %d)", t.Component, t.Device, t.ID)
	if t.Summary != "" {
		fmt.Fprintf(&b, "\n%s", t.Summary)
	}
	d, err := s.Store.GetDevice(ctx, t.Device)
	if err != nil {
		return summary, "", b.String()
	}
	where = address(d.Site)
	if d.CustomerID != "" {
		if c, err := s.Store.GetCustomer(ctx, d.CustomerID); err == nil {
			fmt.Fprintf(&b, "\nCustomer: %s, %s", c.Name, c.Phone)
		}
	}
	return summary, where, b.String()
}

// address writes a site on one line.
func address(a proactive.Address) string {
	var parts []string
	for _, p := range []string{a.Line1, a.Line2, strings.TrimSpace(a.PostalCode + " " + a.City), a.Country} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}
