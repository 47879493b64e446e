package web

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/notify"
)

// visit is one appointment of the day with what the technician needs.
type visit struct {
	notify.Appointment
	Ticket proactive.Ticket
	Device proactive.Device
	// Customer is the device's owner, nil when it has none.
	Customer *proactive.Customer
	// CanMark is whether the visit may be recorded as done now.
	CanMark bool
	// Loc is the site's time zone, which the visit's times are shown in.
	Loc *time.Location
}

type dayData struct {
	pageData
	Tech     proactive.Technician
	Techs    []proactive.Technician // for a dispatcher's choice
	Loc      *time.Location
	Day      time.Time
	Date     string
	Prev     string
	Next     string
	Today    bool
	Visits   []visit
	Outcomes []proactive.Outcome
	// Here is this page's address, where visit forms come back to.
	Here string
}

// customerOf reads a device's customer, nil when it has none: the
// technician who visits calls them and needs their name.
func (s *server) customerOf(ctx context.Context, d proactive.Device) (*proactive.Customer, error) {
	if d.CustomerID == "" {
		return nil, nil
	}
	c, err := s.Store.GetCustomer(ctx, d.CustomerID)
	if proactive.ErrorCode(err) == proactive.ENotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// dayPage is a technician's visits of one day, in their time zone: a
// technician sees their own; a dispatcher chooses whose.
func (s *server) dayPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess := sessionOf(ctx)
	q := r.URL.Query()
	d := dayData{pageData: s.base(r, "My day", "day"), Outcomes: outcomes}
	techID := sess.technician
	if sess.Staff() {
		d.Title = "Technician's day"
		techID = q.Get("technician")
		var err error
		if d.Techs, err = s.technicians(ctx); err != nil {
			s.fail(w, r, err)
			return
		}
		if techID == "" {
			s.render(w, r, http.StatusOK, "day", d)
			return
		}
	} else if v := q.Get("technician"); v != "" && v != techID {
		s.renderError(w, r, http.StatusForbidden, "A technician sees only their own day.")
		return
	}
	tech, err := s.Store.GetTechnician(ctx, techID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.Tech = tech
	d.Loc = s.Location
	if l, err := time.LoadLocation(tech.TimeZone); err == nil && tech.TimeZone != "" {
		d.Loc = l
	}
	now := s.Now().In(d.Loc)
	d.Day = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, d.Loc)
	if v := q.Get("date"); v != "" {
		day, err := time.ParseInLocation("2006-01-02", v, d.Loc)
		if err != nil {
			s.fail(w, r, proactive.Errorf(proactive.EInvalid, "date %q is not a date like 2026-03-09", v))
			return
		}
		d.Day = day
	}
	d.Date = d.Day.Format("2006-01-02")
	d.Today = d.Date == now.Format("2006-01-02")
	link := func(day time.Time) string {
		v := url.Values{"date": {day.Format("2006-01-02")}}
		if sess.Staff() {
			v.Set("technician", tech.ID)
		}
		return "/day?" + v.Encode()
	}
	d.Prev, d.Next, d.Here = link(d.Day.AddDate(0, 0, -1)), link(d.Day.AddDate(0, 0, 1)), link(d.Day)
	if s.Outreach == nil {
		d.Error = "SMS outreach is not running on this server: no visits to show."
		s.render(w, r, http.StatusOK, "day", d)
		return
	}
	apps, err := s.Outreach.Appointments(ctx, notify.AppointmentFilter{Technician: tech.ID, From: d.Day, To: d.Day.AddDate(0, 0, 1)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, a := range apps {
		if a.Status == "cancelled" {
			continue
		}
		v := visit{Appointment: a}
		if v.Ticket, err = s.Store.GetTicket(ctx, a.Ticket); err != nil {
			s.fail(w, r, err)
			return
		}
		if v.Device, err = s.Store.GetDevice(ctx, v.Ticket.Device); err != nil {
			s.fail(w, r, err)
			return
		}
		if v.Customer, err = s.customerOf(ctx, v.Device); err != nil {
			s.fail(w, r, err)
			return
		}
		v.Loc = proactive.LoadZone(v.Device.TimeZone, d.Loc)
		v.Ticket.Timeline = nil
		v.CanMark = a.Status == "booked" && v.Ticket.Status == proactive.TicketScheduled
		d.Visits = append(d.Visits, v)
	}
	s.render(w, r, http.StatusOK, "day", d)
}
