package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/notify"
)

// scheduleDays is how many days the schedule shows.
const scheduleDays = 7

// minFree is the shortest free time the schedule shows.
const minFree = 30 * time.Minute

// span is a period [Start, End).
type span struct{ Start, End time.Time }

// scheduleVisit is a booked visit in the schedule, with its ticket.
type scheduleVisit struct {
	notify.Appointment
	Ticket proactive.Ticket
	// CanReassign is whether the visit may move to another technician:
	// one of Choices, who repair its component and serve its site.
	CanReassign bool
	Choices     []proactive.Technician
}

// scheduleDay is one technician's day.
type scheduleDay struct {
	Date   time.Time
	Today  bool
	Off    bool // no shift that day, or away all of it
	Visits []scheduleVisit
	Free   []span
}

// scheduleRow is one technician's week.
type scheduleRow struct {
	Tech   proactive.Technician
	Loc    *time.Location
	Days   []scheduleDay
	Booked int
}

type scheduleData struct {
	pageData
	Start      time.Time
	Days       []time.Time
	Today      time.Time
	Prev, Next string
	// ThisWeek links back to today from another week; empty on it.
	ThisWeek string
	Rows     []scheduleRow
	Techs    []proactive.Technician
	// Here is this page's address, where reassignments come back to.
	Here string
}

// schedulePage shows technicians × the next 7 days: their booked visits
// with the ticket of each, which a dispatcher may move to another
// technician, and their free working time.
func (s *server) schedulePage(w http.ResponseWriter, r *http.Request) {
	s.showSchedule(w, r, r.URL.Query().Get("from"), http.StatusOK, "")
}

// showSchedule renders the 7 days from the date from (today when empty)
// with status, and the message of a failed action when there was one.
func (s *server) showSchedule(w http.ResponseWriter, r *http.Request, from string, status int, errMsg string) {
	ctx := r.Context()
	d := scheduleData{pageData: s.base(r, "Schedule", "schedule")}
	d.Error = errMsg
	now := s.Now().In(s.Location)
	d.Today = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.Location)
	d.Start = d.Today
	if v := from; v != "" {
		day, err := time.ParseInLocation("2006-01-02", v, s.Location)
		if err != nil {
			s.fail(w, r, proactive.Errorf(proactive.EInvalid, "from %q is not a date like 2026-03-09", v))
			return
		}
		d.Start = day
	}
	link := func(day time.Time) string {
		return "/schedule?" + url.Values{"from": {day.Format("2006-01-02")}}.Encode()
	}
	d.Prev, d.Next = link(d.Start.AddDate(0, 0, -scheduleDays)), link(d.Start.AddDate(0, 0, scheduleDays))
	if !d.Start.Equal(d.Today) {
		d.ThisWeek = "/schedule"
	}
	d.Here = link(d.Start)
	for i := range scheduleDays {
		d.Days = append(d.Days, d.Start.AddDate(0, 0, i))
	}
	var err error
	if d.Techs, err = s.technicians(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Outreach == nil {
		d.Error = "SMS outreach is not running on this server: no visits to show."
		s.render(w, r, status, "schedule", d)
		return
	}
	// A day either side: technicians' days are in their own zones.
	apps, err := s.Outreach.Appointments(ctx, notify.AppointmentFilter{From: d.Start.AddDate(0, 0, -1), To: d.Start.AddDate(0, 0, scheduleDays+1)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	apps = slices.DeleteFunc(apps, func(a notify.Appointment) bool { return a.Status == "cancelled" })
	tickets, err := s.ticketsByID(ctx, apps)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	choices, err := s.visitChoices(ctx, apps, tickets, d.Techs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	byTech := map[string][]notify.Appointment{}
	for _, a := range apps {
		byTech[a.Technician] = append(byTech[a.Technician], a)
	}
	for _, t := range d.Techs {
		d.Rows = append(d.Rows, s.scheduleRow(t, d.Start, byTech[t.ID], tickets, choices))
	}
	s.render(w, r, status, "schedule", d)
}

// visitChoices lists, per booked visit, the other technicians who repair
// its ticket's component and serve its device's site: those it may move
// to (whether they are free then, the move itself checks).
func (s *server) visitChoices(ctx context.Context, apps []notify.Appointment, tickets map[int64]proactive.Ticket,
	techs []proactive.Technician) (map[int64][]proactive.Technician, error) {
	postal := map[proactive.DeviceID]string{}
	out := map[int64][]proactive.Technician{}
	for _, a := range apps {
		tk, ok := tickets[a.Ticket]
		if a.Status != "booked" || !ok {
			continue
		}
		pc, ok := postal[tk.Device]
		if !ok {
			dev, err := s.Store.GetDevice(ctx, tk.Device)
			if err != nil && proactive.ErrorCode(err) != proactive.ENotFound {
				return nil, err
			}
			pc = dev.Site.PostalCode
			postal[tk.Device] = pc
		}
		for _, t := range techs {
			if t.ID != a.Technician && slices.Contains(t.Skills, tk.Component) && t.Serves(pc) {
				out[a.ID] = append(out[a.ID], t)
			}
		}
	}
	return out, nil
}

// reassign moves a booked visit to another technician, from the schedule:
// back to it (the "next" path) with a message on success; on a refusal,
// the schedule again with the reason and the status its code maps to.
func (s *server) reassign(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	next := localPath(r.PostFormValue("next"))
	if next == "" {
		next = "/schedule"
	}
	id, err := ticketID(r)
	if err == nil {
		err = s.needOutreach()
	}
	tech := r.PostFormValue("technician")
	if err == nil {
		_, err = s.Outreach.Reassign(ctx, id, tech, sessionOf(ctx).Actor())
	}
	if err != nil {
		switch status := statusOf(err); status {
		case http.StatusInternalServerError:
			s.fail(w, r, err)
		case http.StatusNotFound, http.StatusForbidden:
			s.renderError(w, r, status, proactive.ErrorMessage(err))
		default:
			from := ""
			if u, perr := url.Parse(next); perr == nil && u.Path == "/schedule" {
				from = u.Query().Get("from")
			}
			s.showSchedule(w, r, from, status, proactive.ErrorMessage(err))
		}
		return
	}
	name := tech
	if t, err := s.Store.GetTechnician(ctx, tech); err == nil {
		name = t.Name + " (" + t.ID + ")"
	}
	s.sessions.setFlash(sessionOf(ctx), fmt.Sprintf("The visit of ticket #%d moved to %s.", id, name))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// ticketsByID reads the tickets of apps.
func (s *server) ticketsByID(ctx context.Context, apps []notify.Appointment) (map[int64]proactive.Ticket, error) {
	ids := make([]int64, 0, len(apps))
	for _, a := range apps {
		ids = append(ids, a.Ticket)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[int64]proactive.Ticket, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		page, err := s.Store.ListTickets(ctx, devices.TicketFilter{IDs: chunk, ListOptions: devices.ListOptions{Limit: 500}})
		if err != nil {
			return nil, err
		}
		for _, t := range page.Items {
			out[t.ID] = t
		}
	}
	return out, nil
}

// scheduleRow lays out one technician's visits and free time over the
// days from start, each day the same date in the technician's zone.
func (s *server) scheduleRow(t proactive.Technician, start time.Time, apps []notify.Appointment, tickets map[int64]proactive.Ticket,
	choices map[int64][]proactive.Technician) scheduleRow {
	loc := s.Location
	if l, err := time.LoadLocation(t.TimeZone); err == nil && t.TimeZone != "" {
		loc = l
	}
	row := scheduleRow{Tech: t, Loc: loc}
	now := s.Now()
	today := now.In(loc).Format("2006-01-02")
	for i := range scheduleDays {
		date := start.AddDate(0, 0, i)
		day0 := time.Date(date.Year(), date.Month(), date.Day(), 0, 0, 0, 0, loc)
		day := scheduleDay{Date: day0, Today: day0.Format("2006-01-02") == today}
		var busy []span
		for _, a := range apps {
			if st := a.Start.In(loc); st.Year() == day0.Year() && st.YearDay() == day0.YearDay() {
				tk := tickets[a.Ticket]
				day.Visits = append(day.Visits, scheduleVisit{Appointment: a, Ticket: tk, Choices: choices[a.ID],
					CanReassign: a.Status == "booked" && tk.ID != 0 && !tk.Status.Terminal() && len(choices[a.ID]) > 0 &&
						a.Start.After(now)})
			}
			busy = append(busy, span{a.Start, a.End})
		}
		for _, o := range t.TimeOff {
			busy = append(busy, span{o.Start, o.End})
		}
		var shifts []span
		for _, sh := range t.Hours[day0.Weekday()] {
			shifts = append(shifts, span{
				time.Date(day0.Year(), day0.Month(), day0.Day(), int(sh.Start)/60, int(sh.Start)%60, 0, 0, loc),
				time.Date(day0.Year(), day0.Month(), day0.Day(), int(sh.End)/60, int(sh.End)%60, 0, 0, loc)})
		}
		day.Free = freeTime(shifts, busy, now)
		day.Off = len(shifts) == 0 || (len(day.Free) == 0 && len(day.Visits) == 0 && allAway(shifts, t))
		row.Booked += len(day.Visits)
		row.Days = append(row.Days, day)
	}
	return row
}

// allAway reports whether t is on time off through every shift.
func allAway(shifts []span, t proactive.Technician) bool {
	for _, sh := range shifts {
		if !t.Away(sh.Start) || !t.Away(sh.End.Add(-time.Minute)) {
			return false
		}
	}
	return true
}

// freeTime returns the parts of shifts that no busy span covers and that
// are after now, at least minFree long.
func freeTime(shifts, busy []span, now time.Time) []span {
	var out []span
	for _, sh := range shifts {
		free := []span{sh}
		if now.After(sh.Start) {
			free[0].Start = now.Truncate(time.Minute)
		}
		for _, b := range busy {
			var next []span
			for _, f := range free {
				if !b.Start.Before(f.End) || !b.End.After(f.Start) {
					next = append(next, f)
					continue
				}
				if b.Start.After(f.Start) {
					next = append(next, span{f.Start, b.Start})
				}
				if b.End.Before(f.End) {
					next = append(next, span{b.End, f.End})
				}
			}
			free = next
		}
		for _, f := range free {
			if f.End.Sub(f.Start) >= minFree {
				out = append(out, f)
			}
		}
	}
	slices.SortFunc(out, func(a, b span) int { return a.Start.Compare(b.Start) })
	return out
}
