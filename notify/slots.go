package notify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// Slot is a visit window of one technician.
type Slot struct {
	// Position is the slot's number in the offer the customer got (1, 2,
	// 3); zero outside an offer.
	Position   int       `json:"position,omitempty"`
	Technician string    `json:"technician_id"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
}

// span is a busy period of a technician.
type span = devices.Span

// technicians returns the technicians who repair component and serve the
// postal code.
// Answers are kept for techCacheTTL: calendars change rarely, reading them
// costs several queries per technician, and bookings and holds, which do
// change, are read afresh in each transaction.
func (n *Notifier) technicians(ctx context.Context, component, postal string) ([]proactive.Technician, error) {
	key := component + "\x00" + postal
	now := time.Now() // the cache ages in real time, whatever the notifier's clock says
	n.techMu.Lock()
	if c, ok := n.techCache[key]; ok && now.Sub(c.at) < techCacheTTL {
		n.techMu.Unlock()
		return c.techs, nil
	}
	n.techMu.Unlock()
	techs, err := n.listTechnicians(ctx, component, postal)
	if err != nil {
		return nil, err
	}
	n.techMu.Lock()
	if len(n.techCache) > 10000 {
		clear(n.techCache)
	}
	n.techCache[key] = techEntry{at: now, techs: techs}
	n.techMu.Unlock()
	return techs, nil
}

// techCacheTTL is how long a technician listing is reused.
const techCacheTTL = 5 * time.Second

type techEntry struct {
	at    time.Time
	techs []proactive.Technician
}

func (n *Notifier) listTechnicians(ctx context.Context, component, postal string) ([]proactive.Technician, error) {
	var out []proactive.Technician
	f := devices.TechnicianFilter{Skill: component, PostalCode: postal, ListOptions: devices.ListOptions{Limit: 500}}
	for {
		page, err := n.store.ListTechnicians(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list technicians: %w", err)
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out, nil
		}
		f.Cursor = page.Next
	}
}

// reader is what calendar reads through: a write transaction when it
// decides a booking or a hold, the store's read pool when it only shows.
// Both *devices.Store and *devices.Tx are one.
type reader interface {
	BookedSpans(ctx context.Context, techs []string, now time.Time) (map[string][]devices.Span, error)
	HeldStarts(ctx context.Context, techs []string, exclude int64, now time.Time) (map[string]map[time.Time]bool, error)
}

// calendar reads the booked appointments and, except exclude's, the held
// slots of the technicians that end after now.
func calendar(ctx context.Context, tx reader, techs []proactive.Technician, exclude int64, now time.Time) (map[string][]span, map[string]map[time.Time]bool, error) {
	ids := make([]string, len(techs))
	for i, t := range techs {
		ids[i] = t.ID
	}
	busy, err := tx.BookedSpans(ctx, ids, now)
	if err != nil {
		return nil, nil, err
	}
	held, err := tx.HeldStarts(ctx, ids, exclude, now)
	if err != nil {
		return nil, nil, err
	}
	return busy, held, nil
}

// holdSlots picks the slots of a ticket's offer number offer and holds them.
func (n *Notifier) holdSlots(ctx context.Context, tx *devices.Tx, t proactive.Ticket, p party, techs []proactive.Technician,
	offer int, now time.Time) ([]Slot, error) {
	// Offers at once to the same technicians wait for each other here
	// (PostgreSQL; SQLite has one writer), so that the second reads the
	// first's holds and never offers the same slot to two customers.
	ids := make([]string, len(techs))
	for i, tc := range techs {
		ids[i] = tc.ID
	}
	if err := tx.LockTechnicians(ctx, ids); err != nil {
		return nil, err
	}
	busy, held, err := calendar(ctx, tx, techs, t.ID, now)
	if err != nil {
		return nil, err
	}
	slots := n.pickSlots(techs, busy, held, now, t.PredictedFailure, n.zone(p.Device.TimeZone))
	holds := make([]devices.SlotHold, len(slots))
	for i := range slots {
		slots[i].Position = i + 1
		s := slots[i]
		holds[i] = devices.SlotHold{Position: s.Position, Technician: s.Technician, Start: s.Start, End: s.End}
	}
	if err := tx.HoldSlots(ctx, t.ID, offer, holds, now.Add(n.opt.SlotHold)); err != nil {
		return nil, err
	}
	return slots, nil
}

// freeSlots lists every free slot of the technicians from now over the
// horizon, earliest first: shifts cut into SlotLength windows separated by
// TravelBuffer, less time off, bookings (with the buffer around them) and
// other customers' holds.
func (n *Notifier) freeSlots(techs []proactive.Technician, busy map[string][]span, held map[string]map[time.Time]bool, now time.Time) []Slot {
	return n.freeSlotsWithin(techs, busy, held, now, n.opt.SlotHorizon)
}

// freeSlotsWithin is freeSlots over another horizon than SlotHorizon.
func (n *Notifier) freeSlotsWithin(techs []proactive.Technician, busy map[string][]span, held map[string]map[time.Time]bool,
	now time.Time, within time.Duration) []Slot {
	earliest := now.Add(n.opt.SlotLead)
	horizon := now.Add(within)
	step := n.opt.SlotLength + n.opt.TravelBuffer
	var out []Slot
	for _, tech := range techs {
		loc := n.zone(tech.TimeZone)
		local := now.In(loc)
		for day := 0; ; day++ {
			midnight := time.Date(local.Year(), local.Month(), local.Day()+day, 0, 0, 0, 0, loc)
			if midnight.After(horizon) {
				break
			}
			for _, sh := range tech.Hours[midnight.Weekday()] {
				shiftEnd := time.Date(midnight.Year(), midnight.Month(), midnight.Day(), 0, int(sh.End), 0, 0, loc)
				for start := time.Date(midnight.Year(), midnight.Month(), midnight.Day(), 0, int(sh.Start), 0, 0, loc); !start.Add(n.opt.SlotLength).After(shiftEnd); start = start.Add(step) {
					end := start.Add(n.opt.SlotLength)
					if start.Before(earliest) || start.After(horizon) || held[tech.ID][start.UTC()] || away(tech, start, end) {
						continue
					}
					if overlaps(busy[tech.ID], start.Add(-n.opt.TravelBuffer), end.Add(n.opt.TravelBuffer)) {
						continue
					}
					out = append(out, Slot{Technician: tech.ID, Start: start.UTC(), End: end.UTC()})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Slot) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Technician, b.Technician)
	})
	return out
}

// pickSlots chooses an offer's slots among the free ones: the earliest,
// spread over different local days, before the predicted failure where
// possible, then after it, then on the same days if there is no other way.
func (n *Notifier) pickSlots(techs []proactive.Technician, busy map[string][]span, held map[string]map[time.Time]bool,
	now, failure time.Time, loc *time.Location) []Slot {
	free := n.freeSlots(techs, busy, held, now)
	var picked []Slot
	days := map[string]bool{}
	starts := map[time.Time]bool{}
	pass := func(beforeFailure, newDay bool) {
		for _, s := range free {
			if len(picked) == n.opt.SlotCount {
				return
			}
			day := s.Start.In(loc).Format(time.DateOnly)
			switch {
			case starts[s.Start]:
				continue // one offer names a time once, whoever the technician
			case beforeFailure && !failure.IsZero() && !s.End.Before(failure):
				continue
			case newDay && days[day]:
				continue
			}
			picked = append(picked, s)
			days[day], starts[s.Start] = true, true
		}
	}
	pass(true, true)
	pass(true, false)
	pass(false, true)
	pass(false, false)
	slices.SortFunc(picked, func(a, b Slot) int { return a.Start.Compare(b.Start) })
	return picked
}

func away(t proactive.Technician, start, end time.Time) bool {
	for _, o := range t.TimeOff {
		if o.Start.Before(end) && start.Before(o.End) {
			return true
		}
	}
	return false
}

func overlaps(spans []span, start, end time.Time) bool {
	for _, s := range spans {
		if s.Start.Before(end) && start.Before(s.End) {
			return true
		}
	}
	return false
}
