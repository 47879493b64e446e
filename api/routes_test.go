package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

var (
	admin      = devices.RoleAdmin
	dispatcher = devices.RoleDispatcher
	technician = devices.RoleTechnician
	anyone     = []devices.Role{admin, dispatcher, technician}
	staff      = []devices.Role{admin, dispatcher}
	adminOnly  = []devices.Role{admin}
)

// call is one request of a route case: as role, to path (the pattern with
// ids filled in), with body; it must answer status, and check, if set,
// looks at the answer.
type call struct {
	role   devices.Role
	path   string
	body   string
	status int
	check  func(t *testing.T, f *fixture, r response)
}

// routeCase covers one route: the roles it admits, a request that
// succeeds, and one with bad input (nil for the few routes that take none).
type routeCase struct {
	method, pattern string
	roles           []devices.Role
	happy           func(t *testing.T, f *fixture) call
	bad             func(t *testing.T, f *fixture) call
}

// hasFields checks that a JSON error names fields.
func hasFields(code string, fields ...string) func(t *testing.T, f *fixture, r response) {
	return func(t *testing.T, f *fixture, r response) {
		t.Helper()
		got, _, fs := r.err(t)
		if got != code {
			t.Errorf("code %q, want %q", got, code)
		}
		for _, k := range fields {
			if fs[k] == "" {
				t.Errorf("no problem reported for field %q: %v", k, fs)
			}
		}
	}
}

// isProfile checks that the answer is a gzipped pprof profile.
func isProfile(t *testing.T, f *fixture, r response) {
	t.Helper()
	if !bytes.HasPrefix(r.body, []byte{0x1f, 0x8b}) || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("not a gzipped profile (%s): %.40q", r.header.Get("Content-Type"), r.body)
	}
}

// jsonHas checks that the answer contains each substring.
func jsonHas(subs ...string) func(t *testing.T, f *fixture, r response) {
	return func(t *testing.T, f *fixture, r response) {
		t.Helper()
		for _, s := range subs {
			if !strings.Contains(string(r.body), s) {
				t.Errorf("answer lacks %s: %s", s, r.body)
			}
		}
	}
}

const newTech = `{"id": %q, "name": "Bob", "phone": "+33611111111", "time_zone": "Europe/Paris", "skills": ["compressor"], "service_area": ["75"]}`

func routeCases() []routeCase {
	return []routeCase{
		{"GET", "/openapi.json", anyone,
			func(t *testing.T, f *fixture) call {
				return call{technician, "/openapi.json", "", 200, jsonHas(`"openapi": "3.0.3"`)}
			}, nil},
		{"GET", "/me", anyone,
			func(t *testing.T, f *fixture) call {
				return call{technician, "/me", "", 200, jsonHas(`"role":"technician"`, `"technician_id":"tech-1"`)}
			}, nil},

		{"GET", "/health", adminOnly,
			func(t *testing.T, f *fixture) call {
				return call{admin, "/health", "", 200, jsonHas(`"status":"ready"`)}
			}, nil},

		{"GET", "/devices", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/devices?customer_id=c-base", "", 200, jsonHas(`"id":"d-base"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/devices?limit=0", "", 400, hasFields("bad_request", "limit")}
			}},
		{"POST", "/devices", staff,
			func(t *testing.T, f *fixture) call {
				id := f.id("new")
				return call{dispatcher, "/devices", fmt.Sprintf(`{"id": %q, "model": "fridge-a200", "time_zone": "Europe/Paris"}`, id), 201,
					jsonHas(`"id":"`+id+`"`, `"created_at"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/devices", `{"id": "bad id!", "model": "", "time_zone": "Mars/Base"}`, 422,
					hasFields("invalid", "id", "model", "time_zone")}
			}},
		{"GET", "/devices/{id}", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/devices/d-base", "", 200, jsonHas(`"customer_id":"c-base"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/devices/ghost", "", 404, hasFields("not_found")}
			}},
		{"PUT", "/devices/{id}", staff,
			func(t *testing.T, f *fixture) call {
				id := f.id("put")
				f.device(t, id, "")
				return call{dispatcher, "/devices/" + id, `{"model": "fridge-b", "time_zone": "Europe/Berlin", "firmware": "2.1"}`, 200,
					jsonHas(`"model":"fridge-b"`, `"firmware":"2.1"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/devices/d-base", `{"model": "fridge-b", "time_zone": "Nowhere"}`, 422, hasFields("invalid", "time_zone")}
			}},
		{"DELETE", "/devices/{id}", adminOnly,
			func(t *testing.T, f *fixture) call {
				id := f.id("del")
				f.device(t, id, "")
				return call{admin, "/devices/" + id, "", 204, func(t *testing.T, f *fixture, _ response) {
					want(t, f.as(t, admin, "GET", "/devices/"+id, ""), 404)
				}}
			},
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "")
				return call{admin, "/devices/" + string(tk.Device), "", 409, hasFields("conflict")}
			}},
		{"GET", "/devices/{id}/telemetry/latest", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/devices/d-base/telemetry/latest", "", 200,
					jsonHas(`"device_id":"d-base"`, `{"metric":"current","value":5.2,"time":"2026-03-10T09:29:00Z"}`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/devices/bad!id/telemetry/latest", "", 400, hasFields("bad_request", "id")}
			}},
		{"GET", "/devices/{id}/telemetry", staff,
			func(t *testing.T, f *fixture) call {
				// from -2h, to now, 10 points: windows of 12 minutes.
				return call{dispatcher, "/devices/d-base/telemetry?from=-2h&to=now&metric=current,temp&points=10", "", 200,
					jsonHas(`"from":"2026-03-10T07:30:00Z"`, `"to":"2026-03-10T09:30:00Z"`, `"every":"12m"`,
						`{"metric":"current","points":[{"time":"2026-03-10T07:30:00Z","value":10}`, `"metric":"temp"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/devices/d-base/telemetry?from=yesterday&metric=Temp&points=99999", "", 400,
					hasFields("bad_request", "from", "metric", "points")}
			}},
		{"GET", "/devices/{id}/maintenance", staff, listMaintenanceHappy, listMaintenanceBad},
		{"POST", "/devices/{id}/maintenance", staff, addMaintenanceHappy, addMaintenanceBad},

		{"GET", "/customers", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/customers?limit=10", "", 200, jsonHas(`"id":"c-base"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/customers?limit=abc", "", 400, hasFields("bad_request", "limit")}
			}},
		{"POST", "/customers", staff,
			func(t *testing.T, f *fixture) call {
				id := f.id("c")
				return call{dispatcher, "/customers", fmt.Sprintf(`{"id": %q, "name": "Carl", "phone": "+44 7700 900%03d",
					"preferred_channel": "email", "email": "carl@example.org"}`, id, f.seq.Add(1)%1000), 201,
					jsonHas(`"id":"`+id+`"`, `"quiet_hours":{"start":"21:00","end":"08:00"}`, `"preferred_channel":"email"`,
						`"email":"carl@example.org"`, `"email_consent":false`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/customers", `{"id": "c-x", "name": "X", "phone": "0612", "preferred_channel": "email", "email": "x"}`, 422,
					hasFields("invalid", "phone", "email")}
			}},
		{"GET", "/customers/{id}", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/customers/c-base", "", 200, jsonHas(`"phone":"+33612345678"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/customers/ghost", "", 404, hasFields("not_found")}
			}},
		{"PUT", "/customers/{id}", staff,
			func(t *testing.T, f *fixture) call {
				id := f.id("cp")
				if _, err := f.store.CreateCustomer(t.Context(), proactive.Customer{ID: id, Name: "Old", Phone: fmt.Sprintf("+4930%07d", f.seq.Add(1))}); err != nil {
					t.Fatal(err)
				}
				return call{dispatcher, "/customers/" + id, `{"name": "New", "phone": "+4930123456", "language": "de", "preferred_channel": "whatsapp"}`, 200,
					jsonHas(`"name":"New"`, `"language":"de"`, `"preferred_channel":"whatsapp"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/customers/c-base", `{"id": "c-other", "name": "New", "phone": "+33612345678"}`, 422, hasFields("invalid", "id")}
			}},
		{"DELETE", "/customers/{id}", adminOnly,
			func(t *testing.T, f *fixture) call {
				id := f.id("cd")
				if _, err := f.store.CreateCustomer(t.Context(), proactive.Customer{ID: id, Name: "Gone", Phone: fmt.Sprintf("+3120%07d", f.seq.Add(1))}); err != nil {
					t.Fatal(err)
				}
				return call{admin, "/customers/" + id, "", 204, nil}
			},
			func(t *testing.T, f *fixture) call {
				return call{admin, "/customers/c-base", "", 409, hasFields("conflict")} // owns d-base
			}},
		{"GET", "/customers/{id}/consent", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/customers/c-base/consent", "", 200, jsonHas(`"items":[`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/customers/ghost/consent", "", 404, hasFields("not_found")}
			}},
		{"POST", "/customers/{id}/consent", staff,
			func(t *testing.T, f *fixture) call {
				id := f.id("cc")
				if _, err := f.store.CreateCustomer(t.Context(), proactive.Customer{ID: id, Name: "Con", Phone: fmt.Sprintf("+3220%07d", f.seq.Add(1))}); err != nil {
					t.Fatal(err)
				}
				return call{dispatcher, "/customers/" + id + "/consent", `{"granted": true, "method": "phone_call", "note": "agreed on the phone", "channel": "whatsapp"}`, 201,
					func(t *testing.T, f *fixture, r response) {
						jsonHas(`"granted":true`, `"actor":"dispatcher"`, `"method":"phone_call"`, `"channel":"whatsapp"`)(t, f, r)
						jsonHas(`"whatsapp_consent":true`, `"sms_consent":false`)(t, f, f.as(t, dispatcher, "GET", "/customers/"+id, ""))
					}}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/customers/c-base/consent", `{"granted": true, "method": "carrier pigeon", "channel": "fax"}`, 422,
					hasFields("invalid", "method", "channel")}
			}},

		{"GET", "/technicians", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/technicians?skill=compressor&postal_code=75011", "", 200, jsonHas(`"id":"tech-1"`, `"id":"tech-2"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/technicians?limit=501", "", 400, hasFields("bad_request", "limit")}
			}},
		{"POST", "/technicians", adminOnly,
			func(t *testing.T, f *fixture) call {
				id := f.id("tn")
				return call{admin, "/technicians", fmt.Sprintf(newTech, id), 201, jsonHas(`"id":"`+id+`"`, `"skills":["compressor"]`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{admin, "/technicians", `{"id": "t x", "name": "", "phone": "12", "time_zone": "Europe/Paris"}`, 422,
					hasFields("invalid", "id", "name", "phone")}
			}},
		{"GET", "/technicians/{id}", anyone,
			func(t *testing.T, f *fixture) call {
				return call{technician, "/technicians/tech-1", "", 200, jsonHas(`"id":"tech-1"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/technicians/ghost", "", 404, hasFields("not_found")}
			}},
		{"GET", "/technicians/{id}/calendar.ics", anyone,
			func(t *testing.T, f *fixture) call {
				return call{technician, "/technicians/tech-1/calendar.ics", "", 200, jsonHas("BEGIN:VCALENDAR", "Visits of")}
			},
			func(t *testing.T, f *fixture) call {
				return call{technician, "/technicians/tech-2/calendar.ics", "", 403, hasFields("forbidden")}
			}},
		{"PUT", "/technicians/{id}", staff,
			func(t *testing.T, f *fixture) call {
				id := f.id("tp")
				want(t, f.as(t, admin, "POST", "/technicians", fmt.Sprintf(newTech, id)), 201)
				return call{dispatcher, "/technicians/" + id, `{"name": "Bob B", "phone": "+33611111111", "time_zone": "Europe/Paris",
					"skills": ["fan"], "hours": {"mon": [{"start": "08:00", "end": "12:00"}]}}`, 200,
					jsonHas(`"skills":["fan"]`, `"hours":{"mon":[{"start":"08:00","end":"12:00"}]}`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/technicians/tech-2", `{"name": "T", "phone": "+33611111111", "time_zone": "Europe/Paris", "skills": ["Bad Skill"]}`, 422,
					hasFields("invalid", "skills[0]")}
			}},
		{"DELETE", "/technicians/{id}", adminOnly,
			func(t *testing.T, f *fixture) call {
				id := f.id("td")
				want(t, f.as(t, admin, "POST", "/technicians", fmt.Sprintf(newTech, id)), 201)
				return call{admin, "/technicians/" + id, "", 204, nil}
			},
			func(t *testing.T, f *fixture) call {
				id := f.id("tb")
				want(t, f.as(t, admin, "POST", "/technicians", fmt.Sprintf(newTech, id)), 201)
				f.ticket(t, id)
				return call{admin, "/technicians/" + id, "", 409, hasFields("conflict")}
			}},

		{"GET", "/tickets", anyone,
			func(t *testing.T, f *fixture) call {
				mine, other := f.ticket(t, "tech-1"), f.ticket(t, "tech-2")
				return call{technician, "/tickets?active=true", "", 200, func(t *testing.T, f *fixture, r response) {
					var page devices.Page[proactive.Ticket]
					r.decode(t, &page)
					if !slices.ContainsFunc(page.Items, func(x proactive.Ticket) bool { return x.ID == mine.ID }) {
						t.Errorf("own ticket %d missing", mine.ID)
					}
					for _, x := range page.Items {
						if x.Technician != "tech-1" || x.ID == other.ID {
							t.Errorf("technician sees ticket %d of %q", x.ID, x.Technician)
						}
					}
				}}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/tickets?status=open,bogus", "", 400, hasFields("bad_request", "status")}
			}},
		{"GET", "/tickets/{id}", anyone,
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "tech-1")
				return call{technician, fmt.Sprintf("/tickets/%d", tk.ID), "", 200, jsonHas(`"timeline":[`, `"kind":"alert"`, `"kind":"assignment"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/tickets/abc", "", 400, hasFields("bad_request", "id")}
			}},
		{"POST", "/tickets/{id}/assign", staff,
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "tech-1")
				return call{dispatcher, fmt.Sprintf("/tickets/%d/assign", tk.ID), `{"technician_id": "tech-2"}`, 200, jsonHas(`"technician_id":"tech-2"`)}
			},
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "")
				return call{dispatcher, fmt.Sprintf("/tickets/%d/assign", tk.ID), `{}`, 422, hasFields("invalid", "technician_id")}
			}},
		{"POST", "/tickets/{id}/transition", anyone,
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "tech-1", "scheduled")
				return call{technician, fmt.Sprintf("/tickets/%d/transition", tk.ID), `{"status": "visited", "note": "done"}`, 200, jsonHas(`"status":"visited"`)}
			},
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "")
				return call{dispatcher, fmt.Sprintf("/tickets/%d/transition", tk.ID), `{"status": "bogus"}`, 422, hasFields("invalid", "status")}
			}},
		{"POST", "/tickets/{id}/comment", anyone,
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "tech-1")
				return call{technician, fmt.Sprintf("/tickets/%d/comment", tk.ID), `{"text": "parts ordered"}`, 201,
					jsonHas(`"kind":"comment"`, `"actor":"technician tech-1"`, `"body":{"text":"parts ordered"}`)}
			},
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "tech-1")
				return call{technician, fmt.Sprintf("/tickets/%d/comment", tk.ID), `{"text": "   "}`, 422, hasFields("invalid", "text")}
			}},
		{"POST", "/tickets/{id}/follow-up/handled", anyone,
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "tech-1")
				if err := f.store.WithTx(t.Context(), func(tx *devices.Tx) error {
					return tx.RaiseFollowUp(t.Context(), tk.ID, proactive.FollowUpCall, "customer", time.Now())
				}); err != nil {
					t.Fatal(err)
				}
				return call{technician, fmt.Sprintf("/tickets/%d/follow-up/handled", tk.ID), `{"note": "called back"}`, 200,
					func(t *testing.T, f *fixture, r response) {
						jsonHas(`"kind":"follow_up"`, `"handled":"call_requested"`, `"note":"called back"`, `"actor":"technician tech-1"`)(t, f, r)
						if strings.Contains(string(r.body), `"follow_up":{`) {
							t.Errorf("handled ticket still has its follow-up: %s", r.body)
						}
					}}
			},
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "tech-1")
				return call{technician, fmt.Sprintf("/tickets/%d/follow-up/handled", tk.ID), `{}`, 409, nil}
			}},
		{"POST", "/tickets/{id}/close", anyone,
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "tech-1", "scheduled", "visited")
				return call{technician, fmt.Sprintf("/tickets/%d/close", tk.ID), `{"outcome": "part_replaced", "notes": "new compressor"}`, 200,
					jsonHas(`"status":"closed"`, `"outcome":"part_replaced"`)}
			},
			func(t *testing.T, f *fixture) call {
				tk := f.ticket(t, "tech-1", "scheduled", "visited")
				return call{technician, fmt.Sprintf("/tickets/%d/close", tk.ID), `{"outcome": "fixed"}`, 422, hasFields("invalid", "outcome")}
			}},

		{"GET", "/tickets/{id}/slots", staff,
			func(t *testing.T, f *fixture) call {
				tk, _ := f.outreachTicket(t)
				return call{dispatcher, fmt.Sprintf("/tickets/%d/slots", tk.ID), "", 200, func(t *testing.T, f *fixture, r response) {
					var got struct{ Items []notify.Slot }
					r.decode(t, &got)
					if len(got.Items) == 0 {
						t.Fatalf("no slots: %s", r.body)
					}
					for _, s := range got.Items {
						if (s.Technician != "tech-1" && s.Technician != "tech-2") || !s.Start.After(testNow) || s.End.Sub(s.Start) != 2*time.Hour {
							t.Errorf("slot %+v", s)
						}
					}
				}}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/tickets/999999/slots", "", 404, hasFields("not_found")}
			}},
		{"POST", "/tickets/{id}/book", staff,
			func(t *testing.T, f *fixture) call {
				tk, _ := f.outreachTicket(t)
				// Not one of the free slots now: a case running in parallel
				// may offer it to its own customer meanwhile.
				s := f.slotOfItsOwn(t, tk.ID, "tech-1")
				return call{dispatcher, fmt.Sprintf("/tickets/%d/book", tk.ID),
					fmt.Sprintf(`{"technician_id": %q, "start": %q}`, s.Technician, s.Start.Format(time.RFC3339)), 201,
					func(t *testing.T, f *fixture, r response) {
						jsonHas(`"status":"booked"`, fmt.Sprintf(`"ticket_id":%d`, tk.ID), `"technician_id":"`+s.Technician+`"`,
							`"end":"`+s.End.UTC().Format(time.RFC3339)+`"`, `"booked_by":"dispatcher"`)(t, f, r)
						got, err := f.store.GetTicket(t.Context(), tk.ID)
						if err != nil || got.Status != proactive.TicketScheduled || got.Technician != s.Technician {
							t.Errorf("booked ticket is %s with %q, %v", got.Status, got.Technician, err)
						}
					}}
			},
			func(t *testing.T, f *fixture) call {
				_, a, _ := f.bookedTicket(t, "tech-2")
				tk, _ := f.outreachTicket(t)
				return call{dispatcher, fmt.Sprintf("/tickets/%d/book", tk.ID),
					fmt.Sprintf(`{"technician_id": "tech-2", "start": %q}`, a.Start.Format(time.RFC3339)), 409, hasFields("conflict")}
			}},
		{"POST", "/tickets/{id}/reassign", staff,
			func(t *testing.T, f *fixture) call {
				tk, a, _ := f.bookedTicket(t, "tech-1")
				return call{dispatcher, fmt.Sprintf("/tickets/%d/reassign", tk.ID), `{"technician_id": "tech-2"}`, 200,
					func(t *testing.T, f *fixture, r response) {
						jsonHas(fmt.Sprintf(`"id":%d`, a.ID), `"technician_id":"tech-2"`)(t, f, r)
						got, err := f.store.GetTicket(t.Context(), tk.ID)
						if err != nil || got.Technician != "tech-2" {
							t.Errorf("reassigned ticket is with %q, %v; want tech-2", got.Technician, err)
						}
					}}
			},
			func(t *testing.T, f *fixture) call {
				tk, _, _ := f.bookedTicket(t, "tech-1")
				return call{dispatcher, fmt.Sprintf("/tickets/%d/reassign", tk.ID), `{}`, 422, hasFields("invalid", "technician_id")}
			}},
		{"POST", "/tickets/{id}/visit", anyone,
			func(t *testing.T, f *fixture) call {
				tk, _, _ := f.bookedTicket(t, "tech-1")
				return call{technician, fmt.Sprintf("/tickets/%d/visit", tk.ID), `{"outcome": "part_replaced", "notes": "new compressor"}`, 200,
					func(t *testing.T, f *fixture, r response) {
						jsonHas(`"status":"done"`, `"outcome":"part_replaced"`, `"notes":"new compressor"`, `"done_at":"2026-03-10T09:30:00Z"`)(t, f, r)
						got, err := f.store.GetTicket(t.Context(), tk.ID)
						if err != nil || got.Status != proactive.TicketVisited {
							t.Errorf("ticket is %s, %v; want visited, awaiting the survey", got.Status, err)
						}
					}}
			},
			func(t *testing.T, f *fixture) call {
				tk, _, _ := f.bookedTicket(t, "tech-2")
				return call{dispatcher, fmt.Sprintf("/tickets/%d/visit", tk.ID), `{"outcome": "fixed"}`, 422,
					hasFields("invalid", "outcome", "technician_id")}
			}},
		{"GET", "/tickets/{id}/messages", anyone,
			func(t *testing.T, f *fixture) call {
				tk, phone := f.outreachTicket(t)
				if err := f.notifier.Inbound(t.Context(), f.id("SMin"), phone, "CALL"); err != nil {
					t.Fatal(err)
				}
				f.book(t, tk.ID, "tech-1")
				if err := f.notifier.Poll(t.Context()); err != nil {
					t.Fatal(err)
				}
				return call{technician, fmt.Sprintf("/tickets/%d/messages", tk.ID), "", 200, func(t *testing.T, f *fixture, r response) {
					var got struct {
						Conversation *notify.Conversation
						Items        []struct {
							Direction, Body, Kind, Status, To, Handled, SID string
						}
					}
					r.decode(t, &got)
					if got.Conversation == nil || got.Conversation.Stage != "scheduled" || got.Conversation.Ticket != tk.ID {
						t.Errorf("conversation %+v", got.Conversation)
					}
					var dirs []string
					for _, m := range got.Items {
						dirs = append(dirs, m.Direction+" "+m.Kind+m.Handled)
						switch {
						case m.Direction == "in" && (m.Body != "CALL" || m.Handled == ""):
							t.Errorf("reply %+v", m)
						case m.Direction == "out" && (m.To != phone || m.Status != "sent" || m.SID == "" || m.Body == ""):
							t.Errorf("message %+v", m)
						}
					}
					// The offer, the reply, the call-back answer, the confirmation,
					// in the order they happened (the clock stands still here).
					if want := []string{"out offer", "in callback", "out callback", "out confirm"}; !slices.Equal(dirs, want) {
						t.Errorf("thread %v, want %v: %s", dirs, want, r.body)
					}
				}}
			},
			func(t *testing.T, f *fixture) call {
				tk, _, _ := f.bookedTicket(t, "tech-2")
				return call{technician, fmt.Sprintf("/tickets/%d/messages", tk.ID), "", 404, hasFields("not_found")}
			}},
		{"POST", "/tickets/{id}/approve", staff,
			func(t *testing.T, f *fixture) call {
				tk := f.reviewTicket(t)
				return call{dispatcher, fmt.Sprintf("/tickets/%d/approve", tk.ID), "", 200, func(t *testing.T, f *fixture, r response) {
					jsonHas(`"status":"offered"`, `"held_reason":"review"`)(t, f, r)
					msgs, err := f.notifier.Messages(t.Context(), tk.ID, "")
					if err != nil || len(msgs) != 1 || msgs[0].Kind != notify.KindOffer {
						t.Errorf("messages %+v, %v; want the one offer", msgs, err)
					}
				}}
			},
			func(t *testing.T, f *fixture) call {
				tk, _ := f.outreachTicket(t)
				return call{dispatcher, fmt.Sprintf("/tickets/%d/approve", tk.ID), "", 409, hasFields("conflict")}
			}},
		{"POST", "/tickets/{id}/dismiss", staff,
			func(t *testing.T, f *fixture) call {
				tk := f.reviewTicket(t)
				return call{dispatcher, fmt.Sprintf("/tickets/%d/dismiss", tk.ID), `{"note": "a cleaning crew unplugged it"}`, 200,
					jsonHas(`"status":"closed"`, `"outcome":"false_alarm"`, `"outcome_notes":"a cleaning crew unplugged it"`)}
			},
			func(t *testing.T, f *fixture) call {
				tk := f.reviewTicket(t)
				return call{dispatcher, fmt.Sprintf("/tickets/%d/dismiss", tk.ID), `{"note": 7}`, 400, hasFields("bad_request", "note")}
			}},
		{"POST", "/tickets/{id}/messages", staff,
			func(t *testing.T, f *fixture) call {
				tk, _ := f.outreachTicket(t)
				return call{dispatcher, fmt.Sprintf("/tickets/%d/messages", tk.ID), `{"text": "We will call you at 5pm."}`, 202,
					func(t *testing.T, f *fixture, r response) {
						var got struct{ ID, TicketID int64 }
						r.decode(t, &got)
						msgs, err := f.notifier.Messages(t.Context(), tk.ID, "")
						if err != nil || got.ID == 0 || !slices.ContainsFunc(msgs, func(m notify.OutboundMessage) bool {
							return m.ID == got.ID && m.Kind == notify.KindDispatch && strings.Contains(m.Body, "We will call you at 5pm.")
						}) {
							t.Errorf("message %d not in the outbox: %+v, %v", got.ID, msgs, err)
						}
					}}
			},
			func(t *testing.T, f *fixture) call {
				tk, _ := f.outreachTicket(t)
				return call{dispatcher, fmt.Sprintf("/tickets/%d/messages", tk.ID), `{"text": "  "}`, 422, hasFields("invalid", "text")}
			}},
		{"GET", "/appointments", anyone,
			func(t *testing.T, f *fixture) call {
				_, mine, _ := f.bookedTicket(t, "tech-1")
				_, theirs, _ := f.bookedTicket(t, "tech-2")
				return call{technician, "/appointments?technician_id=tech-2&from=now", "", 200, func(t *testing.T, f *fixture, r response) {
					var got struct{ Items []notify.Appointment }
					r.decode(t, &got)
					if !slices.ContainsFunc(got.Items, func(a notify.Appointment) bool { return a.ID == mine.ID }) {
						t.Errorf("own appointment %d missing: %s", mine.ID, r.body)
					}
					for _, a := range got.Items {
						if a.Technician != "tech-1" || a.ID == theirs.ID {
							t.Errorf("technician sees appointment %d of %s", a.ID, a.Technician)
						}
					}
				}}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/appointments?from=yesterday&ticket_id=x", "", 400, hasFields("bad_request", "from", "ticket_id")}
			}},
		{"GET", "/incidents", staff,
			func(t *testing.T, f *fixture) call {
				i := f.incident(t)
				return call{dispatcher, "/incidents?status=open", "", 200, jsonHas(`"items":[`, fmt.Sprintf(`"id":%d`, i.ID), `"devices":["`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/incidents?status=closed&limit=0", "", 400, hasFields("bad_request", "limit")}
			}},
		{"GET", "/incidents/{id}", staff,
			func(t *testing.T, f *fixture) call {
				i := f.incident(t)
				return call{dispatcher, fmt.Sprintf("/incidents/%d", i.ID), "", 200, jsonHas(`"rule":"fleet_glitch"`, `"status":"open"`, `"opened_at":`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/incidents/99999", "", 404, hasFields("not_found")}
			}},
		{"POST", "/incidents/{id}/dismiss", staff,
			func(t *testing.T, f *fixture) call {
				i := f.incident(t)
				return call{dispatcher, fmt.Sprintf("/incidents/%d/dismiss", i.ID), `{"note": "broker outage"}`, 200, func(t *testing.T, f *fixture, r response) {
					jsonHas(`"status":"dismissed"`)(t, f, r)
					tk, err := f.store.GetTicket(t.Context(), i.Tickets[0])
					if err != nil || tk.Status != proactive.TicketClosed || tk.Outcome != proactive.OutcomeFalseAlarm {
						t.Errorf("the incident's ticket after the dismissal: %s, %q, %v; want closed as false_alarm", tk.Status, tk.Outcome, err)
					}
				}}
			},
			func(t *testing.T, f *fixture) call {
				i := f.incident(t)
				if _, err := f.store.DismissIncident(t.Context(), i.ID, "test", ""); err != nil {
					t.Fatal(err)
				}
				return call{dispatcher, fmt.Sprintf("/incidents/%d/dismiss", i.ID), "", 409, hasFields("conflict")}
			}},
		{"GET", "/measures", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/measures?by=rule", "", 200, jsonHas(`"alert_to_first_sms_seconds":`, `"offers":`, `"offer_acceptance":`,
					`"time_to_visit_seconds":`, `"resolution_time_seconds":`, `"first_visit_fix_rate":`, `"csat":`, `"rule_precision":{`,
					`"nps":`, `"ces":`, `"alert_to_fix_seconds":`, `"by":"rule"`, `"groups":[`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/measures?by=week", "", 400, hasFields("bad_request", "by")}
			}},

		{"GET", "/dead-letters", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/dead-letters?limit=5", "", 200, jsonHas(`"reason":"bad_json"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/dead-letters?limit=0", "", 400, hasFields("bad_request", "limit")}
			}},
		{"GET", "/rules", staff,
			func(t *testing.T, f *fixture) call {
				// Trust's figures only by name: the parallel cases close tickets
				// of compressor_wear with outcomes (TestServeContactNoneAndTrust
				// and the notify tests check the values).
				return call{dispatcher, "/rules", "", 200, jsonHas(`"name":"compressor_wear"`, `"health":"ok"`, `"pending":1`, `"firing":2`,
					`"precision":`, `"outcomes":`, `"held":`)}
			}, nil},
		{"POST", "/rules/reload", adminOnly,
			func(t *testing.T, f *fixture) call {
				return call{admin, "/rules/reload", "", 200, jsonHas(`{"rules":3}`)}
			},
			nil}, // the rule files are the input: see TestReloadProblems
		{"GET", "/alerts", staff,
			func(t *testing.T, f *fixture) call {
				return call{dispatcher, "/alerts", "", 200, jsonHas(`"device_id":"d-base"`, `"state":"firing"`)}
			}, nil},

		{"GET", "/tokens", adminOnly,
			func(t *testing.T, f *fixture) call {
				return call{admin, "/tokens", "", 200, func(t *testing.T, f *fixture, r response) {
					jsonHas(`"role":"technician"`, `"technician_id":"tech-1"`)(t, f, r)
					if strings.Contains(string(r.body), "hash") || strings.Contains(string(r.body), "pat_") {
						t.Errorf("token list shows secrets: %s", r.body)
					}
				}}
			}, nil},
		{"POST", "/tokens", adminOnly,
			func(t *testing.T, f *fixture) call {
				return call{admin, "/tokens", `{"name": "night desk", "role": "dispatcher"}`, 201, func(t *testing.T, f *fixture, r response) {
					var got struct {
						Token  devices.Token `json:"token"`
						Secret string        `json:"secret"`
					}
					r.decode(t, &got)
					if got.Token.Role != dispatcher || !strings.HasPrefix(got.Secret, "pat_"+got.Token.ID+"_") {
						t.Fatalf("created %+v", got)
					}
					want(t, f.do(t, got.Secret, "GET", "/tickets", ""), 200)
				}}
			},
			func(t *testing.T, f *fixture) call {
				return call{admin, "/tokens", `{"name": "x", "role": "root"}`, 422, hasFields("invalid", "role")}
			}},
		{"DELETE", "/tokens/{id}", adminOnly,
			func(t *testing.T, f *fixture) call {
				plain := f.newToken(t, "temp", dispatcher, "")
				id := strings.Split(plain, "_")[1]
				want(t, f.do(t, plain, "GET", "/me", ""), 200)
				return call{admin, "/tokens/" + id, "", 200, func(t *testing.T, f *fixture, r response) {
					jsonHas(`"revoked_at":"`)(t, f, r)
					want(t, f.do(t, plain, "GET", "/me", ""), 401) // at once, cache or not
				}}
			},
			func(t *testing.T, f *fixture) call {
				return call{admin, "/tokens/ghost", "", 404, hasFields("not_found")}
			}},

		{"GET", "/webhooks", adminOnly,
			func(t *testing.T, f *fixture) call {
				f.webhook(t, proactive.EventTicketClosed)
				return call{admin, "/webhooks", "", 200, func(t *testing.T, f *fixture, r response) {
					jsonHas(`"events":["ticket.closed"]`, `"enabled":true`, `"format":"json"`)(t, f, r)
					if strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), hookSecret) {
						t.Errorf("webhook list shows secrets: %s", r.body)
					}
				}}
			}, nil},
		{"POST", "/webhooks", adminOnly,
			func(t *testing.T, f *fixture) call {
				return call{admin, "/webhooks", `{"url": "http://127.0.0.1:9/hook", "events": ["ticket.opened", "customer.opted_out"],
					"secret": "` + hookSecret + `", "format": "slack"}`, 201,
					jsonHas(`"url":"http://127.0.0.1:9/hook"`, `"events":["customer.opted_out","ticket.opened"]`, `"format":"slack"`)}
			},
			func(t *testing.T, f *fixture) call {
				return call{admin, "/webhooks", `{"url": "gopher://x", "events": ["ticket.opened", "ticket.exploded"], "secret": "` + hookSecret + `"}`,
					400, func(t *testing.T, f *fixture, r response) {
						hasFields("bad_request", "url", "events")(t, f, r)
						jsonHas(`ticket.exploded`, `customer.callback_requested`)(t, f, r)
						// The message is for people: no Go error's "code=... message=" framing.
						if _, msg, _ := r.err(t); !strings.HasPrefix(msg, "invalid webhook: ") {
							t.Errorf("message %q, want it to start with %q", msg, "invalid webhook: ")
						}
					}}
			}},
		{"PATCH", "/webhooks/{id}", adminOnly,
			func(t *testing.T, f *fixture) call {
				w := f.webhook(t, proactive.EventTicketClosed)
				return call{admin, fmt.Sprintf("/webhooks/%d", w.ID), `{"enabled": false}`, 200, jsonHas(`"enabled":false`)}
			},
			func(t *testing.T, f *fixture) call {
				w := f.webhook(t, proactive.EventTicketClosed)
				return call{admin, fmt.Sprintf("/webhooks/%d", w.ID), `{}`, 400, hasFields("bad_request", "enabled")}
			}},
		{"DELETE", "/webhooks/{id}", adminOnly,
			func(t *testing.T, f *fixture) call {
				w := f.webhook(t, proactive.EventTicketClosed)
				return call{admin, fmt.Sprintf("/webhooks/%d", w.ID), "", 204, func(t *testing.T, f *fixture, r response) {
					want(t, f.as(t, admin, "GET", fmt.Sprintf("/webhooks/%d/deliveries", w.ID), ""), 404)
				}}
			},
			func(t *testing.T, f *fixture) call {
				return call{admin, "/webhooks/999999", "", 404, hasFields("not_found")}
			}},
		{"GET", "/webhooks/{id}/deliveries", adminOnly,
			func(t *testing.T, f *fixture) call {
				w := f.webhook(t, proactive.EventCustomerOptedOut)
				cust := fmt.Sprintf("hook-%d", f.seq.Add(1))
				must(f.store.CreateCustomer(t.Context(), proactive.Customer{ID: cust, Name: "Hugo", Phone: fmt.Sprintf("+3378%07d", f.seq.Add(1)), Language: "en"}))
				for _, granted := range []bool{true, false} {
					must(f.store.RecordConsent(t.Context(), cust, proactive.ConsentEvent{Granted: granted, Method: proactive.ConsentAPI, Actor: "test"}))
				}
				return call{admin, fmt.Sprintf("/webhooks/%d/deliveries?limit=10", w.ID), "", 200,
					jsonHas(`"type":"customer.opted_out"`, `"state":"pending"`, `"attempts":0`, `"event_id":"evt_`)}
			},
			func(t *testing.T, f *fixture) call {
				w := f.webhook(t, proactive.EventTicketClosed)
				return call{admin, fmt.Sprintf("/webhooks/%d/deliveries?limit=0", w.ID), "", 400, hasFields("bad_request", "limit")}
			}},
		{"POST", "/webhooks/{id}/deliveries/{delivery}/retry", adminOnly,
			func(t *testing.T, f *fixture) call {
				w, d := f.deadDelivery(t)
				return call{admin, fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", w.ID, d.ID), "", 200,
					jsonHas(`"state":"pending"`, `"attempts":0`, `"event_id":"`+d.EventID+`"`)}
			},
			func(t *testing.T, f *fixture) call {
				w := f.webhook(t, proactive.EventTicketClosed)
				return call{admin, fmt.Sprintf("/webhooks/%d/deliveries/none/retry", w.ID), "", 400, hasFields("bad_request", "delivery")}
			}},

		{"GET", "/debug/pprof/", adminOnly,
			func(t *testing.T, f *fixture) call {
				return call{admin, "/debug/pprof/", "", 200, jsonHas("heap?debug=1", "goroutine?debug=2", "profile?debug=1")}
			}, nil},
		{"GET", "/debug/pprof/profile", adminOnly,
			func(t *testing.T, f *fixture) call {
				return call{admin, "/debug/pprof/profile?seconds=1", "", 200, isProfile}
			},
			func(t *testing.T, f *fixture) call {
				return call{admin, "/debug/pprof/profile?seconds=0", "", 400, hasFields("bad_request", "seconds")}
			}},
		{"GET", "/debug/pprof/trace", adminOnly,
			func(t *testing.T, f *fixture) call {
				return call{admin, "/debug/pprof/trace?seconds=0.05", "", 200, func(t *testing.T, f *fixture, r response) {
					if !strings.HasPrefix(string(r.body), "go 1.") {
						t.Errorf("not a trace: %.40q", r.body)
					}
				}}
			},
			func(t *testing.T, f *fixture) call {
				return call{admin, "/debug/pprof/trace?seconds=forever", "", 400, hasFields("bad_request", "seconds")}
			}},
		{"GET", "/debug/pprof/{name}", adminOnly,
			func(t *testing.T, f *fixture) call {
				return call{admin, "/debug/pprof/heap", "", 200, isProfile}
			},
			func(t *testing.T, f *fixture) call {
				return call{admin, "/debug/pprof/passwords", "", 404, hasFields("not_found")}
			}},
	}
}

// Every route: 401 without a token, 403 for a role it does not admit, the
// happy path, and bad input; on SQLite and PostgreSQL.
func TestRoutes(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		for _, rc := range routeCases() {
			t.Run(rc.method+" "+rc.pattern, func(t *testing.T) {
				t.Parallel()
				happy := rc.happy(t, f)
				if !slices.Contains(rc.roles, happy.role) {
					t.Fatalf("test bug: happy role %s not among %v", happy.role, rc.roles)
				}
				t.Run("no token", func(t *testing.T) {
					r := f.do(t, "", rc.method, happy.path, happy.body)
					want(t, r, http.StatusUnauthorized)
					if code, _, _ := r.err(t); code != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
						t.Errorf("code %q, WWW-Authenticate %q", code, r.header.Get("WWW-Authenticate"))
					}
				})
				for _, role := range anyone {
					if slices.Contains(rc.roles, role) {
						continue
					}
					t.Run("as "+string(role), func(t *testing.T) {
						r := f.as(t, role, rc.method, happy.path, happy.body)
						want(t, r, http.StatusForbidden)
						if code, _, _ := r.err(t); code != "forbidden" {
							t.Errorf("code %q", code)
						}
					})
				}
				t.Run("happy", func(t *testing.T) {
					r := f.as(t, happy.role, rc.method, happy.path, happy.body)
					want(t, r, happy.status)
					if happy.check != nil {
						happy.check(t, f, r)
					}
				})
				if rc.bad == nil {
					return
				}
				t.Run("bad input", func(t *testing.T) {
					bad := rc.bad(t, f)
					r := f.as(t, bad.role, rc.method, bad.path, bad.body)
					want(t, r, bad.status)
					if bad.check != nil {
						bad.check(t, f, r)
					}
				})
			})
		}
	})
}

const hookSecret = "s3cret-s3cret-s3cret"

// deadDelivery registers a webhook for customer.opted_out, queues one
// delivery for it and records it dead (the receiver refused it), as a
// dispatcher would, without a dispatcher that would take other cases'
// deliveries too.
func (f *fixture) deadDelivery(t *testing.T) (proactive.Webhook, devices.Delivery) {
	t.Helper()
	w := f.webhook(t, proactive.EventCustomerOptedOut)
	cust := fmt.Sprintf("dead-%d", f.seq.Add(1))
	must(f.store.CreateCustomer(t.Context(), proactive.Customer{ID: cust, Name: "Dora", Phone: fmt.Sprintf("+3377%07d", f.seq.Add(1)), Language: "en"}))
	for _, granted := range []bool{true, false} {
		must(f.store.RecordConsent(t.Context(), cust, proactive.ConsentEvent{Granted: granted, Method: proactive.ConsentAPI, Actor: "test"}))
	}
	d := must(f.store.WebhookDeliveries(t.Context(), w.ID, devices.ListOptions{})).Items[0]
	now := time.Now()
	if ok, err := f.store.WebhookClaim(t.Context(), d.ID, now, now.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := f.store.WebhookResult(t.Context(), d.ID, devices.DeliveryResult{State: devices.DeliveryDead, Status: http.StatusGone, At: now}); err != nil {
		t.Fatal(err)
	}
	return w, d
}

// webhook registers a webhook for events to a port nothing listens on.
func (f *fixture) webhook(t *testing.T, events ...proactive.EventType) proactive.Webhook {
	t.Helper()
	return must(f.store.CreateWebhook(t.Context(), proactive.Webhook{URL: "http://127.0.0.1:9/hook", Events: events}, hookSecret))
}

// must returns v, or panics (failing the test with a stack) on err.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
