package notify_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/notify"
)

// replayAlert is a firing alert of rule on dev at, as a backtest gives it.
func replayAlert(rule string, contact proactive.Contact, dev string, at time.Time) proactive.Alert {
	return proactive.Alert{Rule: rule, Device: proactive.DeviceID(dev), Model: "fridge-a1", Component: "compressor",
		Severity: proactive.SeverityWarning, State: proactive.AlertFiring, Summary: "wear", ActiveAt: at, FiredAt: at,
		Cooldown: 7 * 24 * time.Hour, Contact: contact}
}

// replayOptions are the platform's defaults, as the configuration gives
// them, over a temporary directory.
func replayOptions(t *testing.T) notify.ReplayOptions {
	return notify.ReplayOptions{Notify: notify.Options{GroupWait: 30 * time.Second, Logger: discard()}, Dir: t.TempDir()}
}

// counts sums a replay's tickets and texts.
func counts(res notify.ReplayResult) (tickets, texts int) {
	for _, t := range res.Tickets {
		tickets++
		if t.Texted {
			texts++
		}
	}
	return tickets, texts
}

// A replay of known alert histories gives the tickets and texts the
// notifier's decisions make of them.
func TestReplay(t *testing.T) {
	t.Parallel()
	start := monday0830.UTC()
	fleet := map[proactive.DeviceID]string{}
	for i := range 30 {
		fleet[proactive.DeviceID(fmt.Sprintf("fridge-%d", i))] = "fridge-a1"
	}
	for _, c := range []struct {
		name                string
		alerts              func() []proactive.Alert
		tickets, texts      int
		wantHeld, wantState string
	}{
		{"a device firing every hour for 3 days, cooldown 1w", func() []proactive.Alert {
			var out []proactive.Alert
			for h := range 72 {
				out = append(out, replayAlert("wear", "", "fridge-1", start.Add(time.Duration(h)*time.Hour)))
			}
			return out
		}, 1, 1, "", ""},
		{"six devices within the group wait: an incident", func() []proactive.Alert {
			var out []proactive.Alert
			for i := range 6 {
				out = append(out, replayAlert("wear", "", fmt.Sprintf("fridge-%d", i), start.Add(time.Duration(i)*4*time.Second)))
			}
			return out
		}, 6, 0, "", ""},
		{"a review rule", func() []proactive.Alert {
			return []proactive.Alert{replayAlert("wear", proactive.ContactReview, "fridge-1", start),
				replayAlert("wear", proactive.ContactReview, "fridge-2", start.Add(48*time.Hour))}
		}, 2, 0, "review", ""},
		{"a contact: none rule", func() []proactive.Alert {
			return []proactive.Alert{replayAlert("wear", proactive.ContactNone, "fridge-1", start),
				replayAlert("wear", proactive.ContactNone, "fridge-2", start.Add(48*time.Hour))}
		}, 2, 0, "contact_none", ""},
		{"two devices apart: two texts", func() []proactive.Alert {
			return []proactive.Alert{replayAlert("wear", "", "fridge-1", start), replayAlert("wear", "", "fridge-2", start.Add(time.Hour))}
		}, 2, 2, "", string(proactive.TicketExpired)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := replayOptions(t)
			o.Fleet, o.To = fleet, start.Add(7*24*time.Hour)
			res, err := notify.Replay(t.Context(), c.alerts(), o)
			if err != nil {
				t.Fatal(err)
			}
			if tickets, texts := counts(res); tickets != c.tickets || texts != c.texts {
				t.Errorf("%d tickets, %d texts; want %d, %d: %+v", tickets, texts, c.tickets, c.texts, res.Tickets)
			}
			if res.Copied != 0 || res.Synthetic != len(fleet) {
				t.Errorf("registry: %d copied, %d synthetic; want 0, %d", res.Copied, res.Synthetic, len(fleet))
			}
			for _, tk := range res.Tickets {
				if c.wantHeld != "" && tk.Held != c.wantHeld {
					t.Errorf("ticket %d held %q, want %q", tk.ID, tk.Held, c.wantHeld)
				}
				if c.wantState != "" && string(tk.Status) != c.wantState {
					t.Errorf("ticket %d is %s, want %s", tk.ID, tk.Status, c.wantState)
				}
			}
		})
	}
}

// The tickets of an incident carry its id.
func TestReplayIncident(t *testing.T) {
	t.Parallel()
	start := monday0830.UTC()
	o := replayOptions(t)
	o.To = start.Add(24 * time.Hour)
	var alerts []proactive.Alert
	for i := range 6 {
		alerts = append(alerts, replayAlert("wear", "", fmt.Sprintf("fridge-%d", i), start.Add(time.Duration(i)*4*time.Second)))
	}
	res, err := notify.Replay(t.Context(), alerts, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range res.Tickets {
		if tk.Incident == 0 || tk.Texted {
			t.Errorf("ticket %+v: want an incident's, not texted", tk)
		}
	}
}

// The registry's devices and customers are copied: a customer without
// consent gets a ticket and no text; a consenting one is texted.
func TestReplayRegistry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	reg, err := devices.Open(ctx, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, c := range []proactive.Customer{{ID: "ann", Name: "Ann", Phone: "+33600000001"}, {ID: "bob", Name: "Bob", Phone: "+33600000002"}} {
		must(reg.CreateCustomer(ctx, c))
	}
	must(reg.RecordConsent(ctx, "bob", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWritten, Actor: "test"}))
	for id, cust := range map[string]string{"fridge-ann": "ann", "fridge-bob": "bob"} {
		must(reg.CreateDevice(ctx, proactive.Device{ID: proactive.DeviceID(id), Model: "fridge-a1", CustomerID: cust, TimeZone: "Europe/Paris"}))
	}
	start := monday0830.UTC()
	o := replayOptions(t)
	o.Registry, o.To = reg, start.Add(24*time.Hour)
	o.Fleet = map[proactive.DeviceID]string{"fridge-ann": "fridge-a1", "stranger": ""}
	res, err := notify.Replay(ctx, []proactive.Alert{replayAlert("wear", "", "fridge-ann", start), replayAlert("wear", "", "fridge-bob", start.Add(time.Hour))}, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 2 || res.Synthetic != 1 {
		t.Errorf("registry: %d copied, %d synthetic; want 2, 1", res.Copied, res.Synthetic)
	}
	if len(res.Tickets) != 2 {
		t.Fatalf("tickets %+v, want two", res.Tickets)
	}
	if ann := res.Tickets[0]; ann.Device != "fridge-ann" || ann.Texted || ann.Held != "no_consent" {
		t.Errorf("ann's ticket %+v: want held for no consent, not texted", ann)
	}
	if bob := res.Tickets[1]; bob.Device != "fridge-bob" || !bob.Texted {
		t.Errorf("bob's ticket %+v: want texted", bob)
	}
}

// With the truth known, waiting tickets are settled by it after
// HandleAfter: a false one dismissed, a true one visited and confirmed;
// the device's next alert after the rule's cooldown opens a new ticket.
func TestReplayHandlesTickets(t *testing.T) {
	t.Parallel()
	start := monday0830.UTC()
	o := replayOptions(t)
	o.To = start.Add(30 * 24 * time.Hour)
	o.True = func(a proactive.Alert) bool { return a.Device == "fridge-true" }
	var alerts []proactive.Alert
	for d := range 20 {
		for _, dev := range []string{"fridge-true", "fridge-false"} {
			alerts = append(alerts, replayAlert("wear", proactive.ContactReview, dev, start.Add(time.Duration(d)*24*time.Hour)))
		}
	}
	res, err := notify.Replay(t.Context(), alerts, o)
	if err != nil {
		t.Fatal(err)
	}
	// One ticket per cooldown (1w) over 20 days: days 0, 7 and 14.
	got := map[string]int{}
	for _, tk := range res.Tickets {
		got[string(tk.Device)+" "+string(tk.Status)]++
	}
	if got["fridge-true closed"] != 3 || got["fridge-false closed"] != 3 || len(res.Tickets) != 6 {
		t.Errorf("tickets by device and status %v, want 3 closed each", got)
	}
}

// An auto rule whose settled tickets keep proving false loses the
// customer's texts once its measured trust holds it (MinOutcomes 5,
// MinPrecision 0.6 by default): the replay runs the trust hold too.
func TestReplayTrustHold(t *testing.T) {
	t.Parallel()
	start := monday0830.UTC()
	o := replayOptions(t)
	o.To = start.Add(30 * 24 * time.Hour)
	o.True = func(proactive.Alert) bool { return false }
	var alerts []proactive.Alert
	for i := range 10 {
		alerts = append(alerts, replayAlert("wear", "", fmt.Sprintf("fridge-%d", i), start.Add(time.Duration(i)*48*time.Hour)))
	}
	res, err := notify.Replay(t.Context(), alerts, o)
	if err != nil {
		t.Fatal(err)
	}
	if tickets, texts := counts(res); tickets != 10 || texts != 5 {
		t.Errorf("%d tickets, %d texts; want 10, 5 (then the rule is held)", tickets, texts)
	}
	for _, tk := range res.Tickets[5:] {
		if tk.Held != "untrusted_rule" {
			t.Errorf("ticket %d of %s held %q, want untrusted_rule", tk.ID, tk.Device, tk.Held)
		}
	}
}
