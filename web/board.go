package web

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
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
	activeStatuses   = []proactive.TicketStatus{proactive.TicketOpen, proactive.TicketOffered, proactive.TicketScheduled, proactive.TicketVisited}
	terminalStatuses = []proactive.TicketStatus{proactive.TicketClosed, proactive.TicketDeclined, proactive.TicketExpired, proactive.TicketCancelled}
	severities       = []proactive.Severity{proactive.SeverityCritical, proactive.SeverityWarning, proactive.SeverityInfo}
)

// Board sizes: tickets per column, and per page of a single-status list.
const (
	columnSize = 20
	listSize   = 50
)

// boardFilter is the board's query string.
type boardFilter struct {
	// Status is empty for the active columns, a ticket status, "finished"
	// (the terminal ones) or "all".
	Status   string
	Rule     string
	Severity string
	Q        string
	// Before pages a list: tickets with smaller ids.
	Before int64
}

func parseBoardFilter(q url.Values) (boardFilter, error) {
	f := boardFilter{Status: q.Get("status"), Rule: strings.TrimSpace(q.Get("rule")),
		Severity: q.Get("severity"), Q: strings.TrimSpace(q.Get("q"))}
	var bad []string
	switch st := proactive.TicketStatus(f.Status); {
	case f.Status == "", f.Status == "all", f.Status == "finished", devices.Terminal(st), len(devices.NextStatuses(st)) > 0:
	default:
		bad = append(bad, fmt.Sprintf("status %q is not a ticket status", f.Status))
	}
	if f.Severity != "" && !proactive.Severity(f.Severity).Valid() {
		bad = append(bad, fmt.Sprintf("severity %q is not info, warning or critical", f.Severity))
	}
	if len(f.Q) > 200 {
		bad = append(bad, "the search is longer than 200 characters")
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
	for k, s := range map[string]string{"status": status, "rule": f.Rule, "severity": f.Severity, "q": f.Q} {
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

// where returns the SQL condition of f's rule, severity and search, with
// its arguments appended to args ($n placeholders, as devices.Store takes).
func (f boardFilter) where(args []any) (string, []any) {
	var conds []string
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Rule != "" {
		add("rule = ?", f.Rule)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if q := strings.TrimPrefix(f.Q, "#"); q != "" {
		pattern := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(q)) + "%"
		text := `(LOWER(device_id) LIKE ? ESCAPE '\' OR LOWER(summary) LIKE ? ESCAPE '\' OR rule LIKE ? ESCAPE '\'
			OR component LIKE ? ESCAPE '\' OR LOWER(COALESCE(technician_id, '')) LIKE ? ESCAPE '\'`
		args = append(args, pattern)
		text = strings.ReplaceAll(text, "?", "$"+strconv.Itoa(len(args)))
		if n, err := strconv.ParseInt(q, 10, 64); err == nil && n > 0 {
			args = append(args, n)
			text += " OR id = $" + strconv.Itoa(len(args))
		}
		conds = append(conds, text+")")
	}
	if len(conds) == 0 {
		return "1 = 1", args
	}
	return strings.Join(conds, " AND "), args
}

// boardTicket is a ticket as a board card shows it.
type boardTicket struct {
	ID               int64
	Device           string
	Component        string
	Rule             string
	Status           proactive.TicketStatus
	Severity         proactive.Severity
	Summary          string
	PredictedFailure time.Time
	OpenedAt         time.Time
	Technician       string
}

// boardColumns lists the newest tickets matching f with each status in
// sts, at most n per status, in the order of sts; before > 0 keeps ids
// below it. The query is the devices schema's tickets table, read through
// the store's read pool: devices.TicketFilter has no severity or search yet.
func (s *server) listTickets(ctx context.Context, f boardFilter, sts []proactive.TicketStatus, n int, before int64) ([]boardTicket, error) {
	cond, args := f.where(nil)
	ph := make([]string, len(sts))
	for i, st := range sts {
		args = append(args, string(st))
		ph[i] = "$" + strconv.Itoa(len(args))
	}
	q := `SELECT id, device_id, component, rule, status, severity, summary, predicted_failure_at, opened_at, COALESCE(technician_id, '')
		FROM tickets WHERE status IN (` + strings.Join(ph, ", ") + `) AND ` + cond
	if before > 0 {
		args = append(args, before)
		q += " AND id < $" + strconv.Itoa(len(args))
	}
	args = append(args, n)
	q += " ORDER BY id DESC LIMIT $" + strconv.Itoa(len(args))
	rows, err := s.Store.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tickets for the board: %w", err)
	}
	defer rows.Close()
	var out []boardTicket
	for rows.Next() {
		var t boardTicket
		var predicted sql.NullTime
		if err := rows.Scan(&t.ID, &t.Device, &t.Component, &t.Rule, &t.Status, &t.Severity, &t.Summary, &predicted,
			&t.OpenedAt, &t.Technician); err != nil {
			return nil, fmt.Errorf("list tickets for the board: %w", err)
		}
		if predicted.Valid {
			t.PredictedFailure = predicted.Time
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tickets for the board: %w", err)
	}
	return out, nil
}

// countTickets counts the tickets matching f's rule, severity and search
// by status.
func (s *server) countTickets(ctx context.Context, f boardFilter) (map[proactive.TicketStatus]int, error) {
	cond, args := f.where(nil)
	rows, err := s.Store.QueryContext(ctx, `SELECT status, COUNT(*) FROM tickets WHERE `+cond+` GROUP BY status`, args...)
	if err != nil {
		return nil, fmt.Errorf("count tickets: %w", err)
	}
	defer rows.Close()
	out := map[proactive.TicketStatus]int{}
	for rows.Next() {
		var st proactive.TicketStatus
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count tickets: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

// ruleNames lists the rules that opened tickets, for the filter.
func (s *server) ruleNames(ctx context.Context) ([]string, error) {
	rows, err := s.Store.QueryContext(ctx, `SELECT DISTINCT rule FROM tickets ORDER BY rule LIMIT 500`)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("list rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

type column struct {
	Status  proactive.TicketStatus
	Count   int
	Tickets []boardTicket
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
	List    []boardTicket
	Older   string
	Techs   map[string]string
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
		Statuses: append(append([]proactive.TicketStatus(nil), activeStatuses...), terminalStatuses...), Severity: severities}
	d.Refresh = s.RefreshEvery.Milliseconds()
	if d.Rules, err = s.ruleNames(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.countTickets(ctx, f)
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
	if d.Techs, err = s.technicianNames(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "board", d)
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
func (s *server) technicians(ctx context.Context) ([]devices.Technician, error) {
	var out []devices.Technician
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
