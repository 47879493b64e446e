package api

import (
	"context"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/notify"
)

// siteSlot is a visit slot as the API shows it: with the site's zone and
// label, the window in the site's local time with its zone ("Tue 10 Mar
// 08:00–10:00 CET"), as the customer's SMS and the pages show it. Start
// and end stay RFC 3339 in UTC, for programs.
type siteSlot struct {
	notify.Slot
	TimeZone string `json:"time_zone"`
	Label    string `json:"label"`
}

// siteAppointment is a visit as the API shows it, like siteSlot.
type siteAppointment struct {
	notify.Appointment
	TimeZone string `json:"time_zone"`
	Label    string `json:"label"`
}

// siteZones finds the site's time zone of tickets, reading each ticket's
// device once per request.
type siteZones struct {
	s     *server
	zones map[int64]*time.Location
}

func (s *server) siteZones() *siteZones {
	return &siteZones{s: s, zones: map[int64]*time.Location{}}
}

// of returns the time zone of the ticket's site; UTC when the site names
// none (then the labels say UTC).
func (z *siteZones) of(ctx context.Context, ticket int64) (*time.Location, error) {
	if loc, ok := z.zones[ticket]; ok {
		return loc, nil
	}
	t, err := z.s.Store.GetTicket(ctx, ticket)
	if err != nil {
		return nil, err
	}
	d, err := z.s.Store.GetDevice(ctx, t.Device)
	if err != nil && proactive.ErrorCode(err) != proactive.ENotFound {
		return nil, err
	}
	loc := proactive.LoadZone(d.TimeZone, time.UTC)
	z.zones[ticket] = loc
	return loc, nil
}

func localSlot(sl notify.Slot, loc *time.Location) siteSlot {
	return siteSlot{Slot: sl, TimeZone: loc.String(),
		Label: proactive.FormatLocalSpan(sl.Start, sl.End, loc)}
}

func (z *siteZones) appointment(ctx context.Context, a notify.Appointment) (siteAppointment, error) {
	loc, err := z.of(ctx, a.Ticket)
	if err != nil {
		return siteAppointment{}, err
	}
	return siteAppointment{Appointment: a, TimeZone: loc.String(),
		Label: proactive.FormatLocalSpan(a.Start, a.End, loc)}, nil
}
