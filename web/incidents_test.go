package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// The board shows open incidents with a dismiss form (CSRF-protected, for
// staff); dismissing closes the incident's tickets in review as false
// alarms and takes it off the board.
func TestBoardIncidentPanel(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	var id int64
	at := e.clock.Now()
	err := e.store.WithTx(e.ctx, func(tx *devices.Tx) error {
		for _, tk := range []int64{e.open, e.offered} {
			t := must(e.store.GetTicket(e.ctx, tk))
			if err := tx.RecordFiring(e.ctx, "fleet_glitch", t.Device, t.ID, at); err != nil {
				return err
			}
		}
		var err error
		if id, err = tx.OpenIncident(e.ctx, "fleet_glitch", at, 2); err != nil {
			return err
		}
		_, err = tx.JoinIncident(e.ctx, id, at, at, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/incidents/%d/dismiss", id)

	b := e.signedIn("dispatcher")
	resp, page := b.get("/")
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, fmt.Sprintf("Incident %d · fleet_glitch", id), "2 devices · 2 tickets", `action="`+path+`"`)

	resp, page = b.do(http.MethodPost, path, url.Values{"note": {"no token"}})
	wantStatus(t, resp, page, http.StatusForbidden)
	paula := e.signedIn("paula")
	paula.get("/day")
	resp, page = paula.post(path, url.Values{})
	wantStatus(t, resp, page, http.StatusForbidden)
	if i := must(e.store.GetIncident(e.ctx, id)); i.Status != proactive.IncidentOpen {
		t.Fatalf("a refused form dismissed the incident: %s", i.Status)
	}

	resp, page = b.post(path, url.Values{"note": {"our broker was down"}})
	wantStatus(t, resp, page, http.StatusSeeOther)
	resp, page = b.get("/")
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, fmt.Sprintf("Incident %d dismissed", id))
	wantNotIn(t, page, `action="`+path+`"`)
	if tk := must(e.store.GetTicket(e.ctx, e.open)); tk.Status != proactive.TicketClosed || tk.Outcome != proactive.OutcomeFalseAlarm {
		t.Errorf("the incident's review ticket: %s, %q; want closed as false_alarm", tk.Status, tk.Outcome)
	}
	if tk := must(e.store.GetTicket(e.ctx, e.offered)); tk.Status != proactive.TicketOffered {
		t.Errorf("the incident's offered ticket: %s; want it left offered", tk.Status)
	}

	// Twice: the board says why.
	b.get("/")
	resp, page = b.post(path, url.Values{})
	wantStatus(t, resp, page, http.StatusSeeOther)
	_, page = b.get("/")
	wantIn(t, page, "dismissed already")
}
