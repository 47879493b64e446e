package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/notify"
)

// The board's statuses: the active ones get a column each; the terminal
// ones are reached through the status filter.
var (
	activeStatuses   = []proactive.TicketStatus{proactive.TicketOpen, proactive.TicketReview, proactive.TicketOffered, proactive.TicketScheduled, proactive.TicketVisited}
	terminalStatuses = []proactive.TicketStatus{proactive.TicketClosed, proactive.TicketDeclined, proactive.TicketExpired, proactive.TicketCancelled}
	severities       = []proactive.Severity{proactive.SeverityCritical, proactive.SeverityWarning, proactive.SeverityInfo}
)

// Board sizes: tickets per column, and per page of a single-status list.
const (
	columnSize = 20
	listSize   = 50
)

// ages are the board's age filter: the value, its label, and the span of
// opening times it keeps (newer than, or older than, a duration ago).
var ages = []ageChoice{
	{"1d", "New: last 24 h", 24 * time.Hour, false},
	{"7d", "Last 7 days", 7 * 24 * time.Hour, false},
	{"gt7d", "Over 7 days old", 7 * 24 * time.Hour, true},
	{"gt30d", "Over 30 days old", 30 * 24 * time.Hour, true},
}

type ageChoice struct {
	Value, Label string
	span         time.Duration
	older        bool
}

// boardFilter is the board's query string.
type boardFilter struct {
	// Status is empty for the active columns, a ticket status, "finished"
	// (the terminal ones) or "all".
	Status   string
	Rule     string
	Severity string
	Q        string
	// Region is the start of the sites' postal codes, such as 75.
	Region string
	// Age is one of ages' values, or empty.
	Age string
	// Before pages a list: tickets with smaller ids.
	Before int64
}

func parseBoardFilter(q url.Values) (boardFilter, error) {
	f := boardFilter{Status: q.Get("status"), Rule: strings.TrimSpace(q.Get("rule")),
		Severity: q.Get("severity"), Q: strings.TrimSpace(q.Get("q")), Region: strings.TrimSpace(q.Get("region")),
		Age: q.Get("age")}
	var bad []string
	switch st := proactive.TicketStatus(f.Status); {
	case f.Status == "", f.Status == "all", f.Status == "finished", st.Terminal(), len(st.Next()) > 0:
	default:
		bad = append(bad, fmt.Sprintf("status %q is not a ticket status", f.Status))
	}
	if f.Severity != "" && !proactive.Severity(f.Severity).Valid() {
		bad = append(bad, fmt.Sprintf("severity %q is not info, warning or critical", f.Severity))
	}
	if len(f.Q) > 200 {
		bad = append(bad, "the search is longer than 200 characters")
	}
	if len(f.Region) > 16 || strings.ContainsFunc(f.Region, func(r rune) bool {
		return r != ' ' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) {
		bad = append(bad, fmt.Sprintf("region %q is not the start of a postal code (letters and digits)", f.Region))
	}
	if f.Age != "" && !slices.ContainsFunc(ages, func(a ageChoice) bool { return a.Value == f.Age }) {
		bad = append(bad, fmt.Sprintf("age %q is not one of 1d, 7d, gt7d, gt30d", f.Age))
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			bad = append(bad, fmt.Sprintf("before %q is not a ticket number", v))
		}
		f.Before = n
	}
	if len(bad) > 0 {
		return f, proactive.Errorf(proactive.EInvalid, "%s", strings.Join(bad, "; "))
	}
	return f, nil
}

// statuses returns the statuses a list shows: nil for the active columns.
func (f boardFilter) statuses() []proactive.TicketStatus {
	switch f.Status {
	case "":
		return nil
	case "all":
		return append(append([]proactive.TicketStatus(nil), activeStatuses...), terminalStatuses...)
	case "finished":
		return terminalStatuses
	}
	return []proactive.TicketStatus{proactive.TicketStatus(f.Status)}
}

// query returns the URL query of f, with status replaced when st is not nil.
func (f boardFilter) query(st *string, before int64) string {
	v := url.Values{}
	status := f.Status
	if st != nil {
		status = *st
	}
	for k, s := range map[string]string{"status": status, "rule": f.Rule, "severity": f.Severity, "q": f.Q,
		"region": f.Region, "age": f.Age} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// ticketFilter returns the store's filter for f's rule, severity, search,
// region and age at now, with statuses sts.
func (f boardFilter) ticketFilter(now time.Time, sts []proactive.TicketStatus) devices.TicketFilter {
	tf := devices.TicketFilter{Status: sts, Rule: f.Rule, Query: f.Q, Region: f.Region}
	if f.Severity != "" {
		tf.Severity = []proactive.Severity{proactive.Severity(f.Severity)}
	}
	for _, a := range ages {
		if a.Value != f.Age {
			continue
		}
		if a.older {
			tf.OpenedBefore = now.Add(-a.span)
		} else {
			tf.OpenedAfter = now.Add(-a.span)
		}
	}
	return tf
}

// listTickets lists the newest tickets matching f with any status of sts,
// at most n; before > 0 keeps ids below it.
func (s *server) listTickets(ctx context.Context, f boardFilter, sts []proactive.TicketStatus, n int, before int64) ([]proactive.Ticket, error) {
	tf := f.ticketFilter(s.Now(), sts)
	tf.Limit = n
	if before > 0 {
		tf.Cursor = strconv.FormatInt(before, 10)
	}
	page, err := s.Store.ListTickets(ctx, tf)
	if err != nil {
		return nil, err
	}
	return page.Items, nil
}

type column struct {
	Status  proactive.TicketStatus
	Count   int
	Tickets []proactive.Ticket
	// More links to the full list of the status when the column is cut.
	More string
}

type statusCount struct {
	Status  proactive.TicketStatus
	Count   int
	Link    string
	Current bool
}

type boardData struct {
	pageData
	Now      time.Time
	Filter   boardFilter
	Rules    []string
	Statuses []proactive.TicketStatus
	Severity []proactive.Severity
	Counts   []statusCount
	// VisitsToday counts today's booked visits; -1 without Outreach.
	VisitsToday int
	// Columns is the active board; List a single list when filtered by
	// status, with Older linking to its next page.
	Columns []column
	List    []proactive.Ticket
	Ages    []ageChoice
	Older   string
	Techs   map[string]string
	// Incidents are the open incidents, for the panel above the board.
	Incidents []proactive.Incident
	// FollowUps are the tickets whose customer waits for a person, oldest
	// request first, for the panel above the board.
	FollowUps []proactive.Ticket
	// Zones are the sites' time zones of the tickets shown with a time
	// (a prediction, a visit), by ticket; Visits the booked visits of the
	// scheduled ones, in their site's local time.
	Zones  map[int64]*time.Location
	Visits map[int64]string
}

// home is the dispatcher's board, or a technician's day.
func (s *server) home(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r.Context())
	if !sess.Staff() {
		http.Redirect(w, r, "/day", http.StatusSeeOther)
		return
	}
	f, err := parseBoardFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	d := boardData{pageData: s.base(r, "Tickets", "board"), Now: s.Now(), Filter: f, VisitsToday: -1,
		Statuses: append(append([]proactive.TicketStatus(nil), activeStatuses...), terminalStatuses...), Severity: severities,
		Ages: ages}
	d.Refresh = s.RefreshEvery.Milliseconds()
	if d.Rules, err = s.Store.TicketRules(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.Store.CountTickets(ctx, f.ticketFilter(d.Now, nil))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, st := range d.Statuses {
		name := string(st)
		d.Counts = append(d.Counts, statusCount{Status: st, Count: counts[st], Link: f.query(&name, 0), Current: f.Status == name})
	}
	if sts := f.statuses(); sts == nil {
		for _, st := range activeStatuses {
			c := column{Status: st, Count: counts[st]}
			if c.Tickets, err = s.listTickets(ctx, f, []proactive.TicketStatus{st}, columnSize, 0); err != nil {
				s.fail(w, r, err)
				return
			}
			if c.Count > len(c.Tickets) {
				name := string(st)
				c.More = f.query(&name, 0)
			}
			d.Columns = append(d.Columns, c)
		}
	} else {
		if d.List, err = s.listTickets(ctx, f, sts, listSize+1, f.Before); err != nil {
			s.fail(w, r, err)
			return
		}
		if len(d.List) > listSize {
			d.List = d.List[:listSize]
			d.Older = f.query(nil, d.List[listSize-1].ID)
		}
	}
	if s.Outreach != nil {
		now := s.Now().In(s.Location)
		day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.Location)
		apps, err := s.Outreach.Appointments(ctx, notify.AppointmentFilter{From: day, To: day.AddDate(0, 0, 1)})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.VisitsToday = 0
		for _, a := range apps {
			if a.Status != "cancelled" {
				d.VisitsToday++
			}
		}
	}
	if err := s.boardTimes(ctx, &d); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.Techs, err = s.technicianNames(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.Incidents, err = s.openIncidents(r); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.FollowUps, err = s.followUps(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "board", d)
}

// followUps lists the tickets with a follow-up waiting (the first 100),
// oldest request first: whoever waits longest is called first.
func (s *server) followUps(ctx context.Context) ([]proactive.Ticket, error) {
	page, err := s.Store.ListTickets(ctx, devices.TicketFilter{FollowUp: true, ListOptions: devices.ListOptions{Limit: 100}})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(page.Items, func(a, b proactive.Ticket) int { return a.FollowUp.Since.Compare(b.FollowUp.Since) })
	return page.Items, nil
}

// handleFollowUp marks a ticket's follow-up handled by the signed-in
// person, with the form's note, and returns to the page it came from.
func (s *server) handleFollowUp(w http.ResponseWriter, r *http.Request) {
	s.flashAction(w, r, "ticket", func(id int64) (string, string, error) {
		_, err := s.Store.HandleFollowUp(r.Context(), id, sessionOf(r.Context()).Actor(), r.PostFormValue("note"))
		back := "/"
		if r.PostFormValue("back") == "ticket" {
			back = fmt.Sprintf("/tickets/%d", id)
		}
		return fmt.Sprintf("Follow-up of ticket %d marked handled.", id), back, err
	})
}

// flashAction runs do for the object the path's id names (what says which,
// for a 404) and returns to the page do names, with do's message or the
// refusal's as the flash; a missing object is an error page, a failure of
// ours the error page of a 500.
func (s *server) flashAction(w http.ResponseWriter, r *http.Request, what string, do func(id int64) (msg, back string, err error)) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderError(w, r, http.StatusNotFound, fmt.Sprintf("there is no %s %q", what, r.PathValue("id")))
		return
	}
	msg, back, err := do(id)
	switch status := statusOf(err); {
	case err == nil:
	case status == http.StatusInternalServerError:
		s.fail(w, r, err)
		return
	case status == http.StatusNotFound:
		s.renderError(w, r, status, proactive.ErrorMessage(err))
		return
	default:
		msg = proactive.ErrorMessage(err)
	}
	s.sessions.setFlash(sessionOf(r.Context()), msg)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// technicianNames maps technician ids to names.
func (s *server) technicianNames(ctx context.Context) (map[string]string, error) {
	techs, err := s.technicians(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(techs))
	for _, t := range techs {
		m[t.ID] = t.Name
	}
	return m, nil
}

// technicians lists every technician (the first 2,000), by id.
func (s *server) technicians(ctx context.Context) ([]proactive.Technician, error) {
	var out []proactive.Technician
	opt := devices.TechnicianFilter{ListOptions: devices.ListOptions{Limit: 500}}
	for range 4 {
		page, err := s.Store.ListTechnicians(ctx, opt)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			break
		}
		opt.Cursor = page.Next
	}
	return out, nil
}

// boardTimes finds the site's zone of each ticket on the board that shows
// a time, and the booked visit of each scheduled one: the board shows
// them in the site's local time, as the customer got them.
func (s *server) boardTimes(ctx context.Context, d *boardData) error {
	d.Zones, d.Visits = map[int64]*time.Location{}, map[int64]string{}
	zones := map[proactive.DeviceID]*time.Location{}
	add := func(t proactive.Ticket) error {
		scheduled := t.Status == proactive.TicketScheduled && s.Outreach != nil
		if t.PredictedFailure.IsZero() && !scheduled {
			return nil
		}
		loc, ok := zones[t.Device]
		if !ok {
			dev, err := s.Store.GetDevice(ctx, t.Device)
			if err != nil && proactive.ErrorCode(err) != proactive.ENotFound {
				return err
			}
			loc = proactive.LoadZone(dev.TimeZone, s.Location)
			zones[t.Device] = loc
		}
		d.Zones[t.ID] = loc
		if !scheduled {
			return nil
		}
		apps, err := s.Outreach.Appointments(ctx, notify.AppointmentFilter{Ticket: t.ID})
		if err != nil {
			return err
		}
		if a := bookedVisit(apps); a != nil {
			d.Visits[t.ID] = proactive.FormatLocalSpan(a.Start, a.End, loc)
		}
		return nil
	}
	for _, c := range d.Columns {
		for _, t := range c.Tickets {
			if err := add(t); err != nil {
				return err
			}
		}
	}
	for _, t := range d.List {
		if err := add(t); err != nil {
			return err
		}
	}
	return nil
}
