package notify

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// decisionNotifier is a Notifier for the pure decisions: no store.
func decisionNotifier() *Notifier {
	return &Notifier{opt: Options{HelpContact: "call 0800 100 200"}.withDefaults(), zones: map[string]*time.Location{}}
}

// TestDecideReply: every keyword at every stage, decided without a
// database.
func TestDecideReply(t *testing.T) {
	now := time.Date(2026, 3, 9, 8, 30, 0, 0, time.UTC) // a Monday
	alice := proactive.Customer{ID: "alice", Phone: "+33611111111", Language: "en", SMSConsent: true, ConsentAt: now.Add(-time.Hour)}
	p := party{Customer: alice, Device: proactive.Device{ID: "fridge-1", Model: "Fridge 9", TimeZone: "Europe/Paris"}, Component: "compressor"}
	slots := []devices.OfferSlot{
		{Position: 1, Technician: "tom", Start: now.Add(26 * time.Hour), End: now.Add(28 * time.Hour)},
		{Position: 2, Technician: "tom", Start: now.Add(50 * time.Hour), End: now.Add(52 * time.Hour)},
	}
	at := func(stage string, clarified bool) replyState {
		return replyState{Customer: alice, Ticket: proactive.Ticket{ID: 7, Device: "fridge-1", Component: "compressor"}, Party: p,
			Conversations: devices.CustomerConversations{Found: true, Open: []int64{7, 9}, Slots: slots,
				Active: devices.Conversation{Ticket: 7, Customer: "alice", Device: "fridge-1", Stage: stage, Offer: 1, Clarified: clarified}}}
	}
	none := replyState{Customer: alice}
	passed := at(stageOffer, false)
	passed.Conversations.Slots = []devices.OfferSlot{{Position: 1, Technician: "tom", Start: now.Add(-time.Hour), End: now.Add(time.Hour)}}
	noConsent := at(stageOffer, false)
	noConsent.Party.Customer.SMSConsent = false
	has := func(t *testing.T, body string, parts ...string) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(body, p) {
				t.Errorf("message %q lacks %q", body, p)
			}
		}
	}
	npsAsked := at(stageSurvey, false) // 89 days ago: not yet due
	npsAsked.NPSAskedAt = now.Add(-89 * 24 * time.Hour)

	// handled lists the inbound entries as "ticket:handled".
	handled := func(c devices.Change) []string {
		var out []string
		for _, e := range c.Entries {
			out = append(out, fmt.Sprintf("%d:%s", e.Ticket, e.Body["handled"]))
		}
		return out
	}
	kinds := func(c devices.Change) []string {
		var out []string
		for _, m := range c.Messages {
			out = append(out, m.Kind)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		st      replyState
		body    string
		metric  string
		entries []string
		sent    []string
		check   func(t *testing.T, d replyDecision)
	}{
		{name: "stop at an offer", st: at(stageOffer, false), body: " stop. ", metric: "stop", entries: []string{"7:opt_out", "9:opt_out"},
			sent: []string{KindOptOut},
			check: func(t *testing.T, d replyDecision) {
				c := d.Change
				if c.Consent == nil || c.Consent.Granted || c.Consent.Method != proactive.ConsentSMS || c.Consent.Note != "SMS keyword STOP" {
					t.Errorf("consent = %+v, want withdrawn by SMS keyword STOP", c.Consent)
				}
				if c.Customer != "alice" || c.Suppress == "" || !reflect.DeepEqual(c.Keep, []string{KindHelp, KindOptOut}) {
					t.Errorf("suppress %q of %q keeping %v, want alice's pending messages but help and the confirmation", c.Suppress, c.Customer, c.Keep)
				}
			}},
		{name: "carrier stop word without conversation", st: none, body: "UNSUBSCRIBE", metric: "stop", sent: []string{KindOptOut}},
		{name: "twilio stop word", st: none, body: "revoke", metric: "stop", sent: []string{KindOptOut}},
		{name: "french help", st: none, body: "Aide", metric: "help", sent: []string{KindHelp}},
		{name: "start", st: at(stageScheduled, false), body: "Start", metric: "start", entries: []string{"7:start", "9:start"},
			sent: []string{KindStart},
			check: func(t *testing.T, d replyDecision) {
				if c := d.Change.Consent; c == nil || !c.Granted || c.Note != "SMS keyword START" {
					t.Errorf("consent = %+v, want granted by SMS keyword START", c)
				}
				if m := d.Change.Messages[0]; m.Ticket != 7 || m.Phone != alice.Phone {
					t.Errorf("answer = %+v, want to alice on the conversation's ticket", m)
				}
			}},
		{name: "help", st: at(stageOffer, false), body: "info", metric: "help", entries: []string{"7:help", "9:help"}, sent: []string{KindHelp},
			check: func(t *testing.T, d replyDecision) {
				if !strings.Contains(d.Change.Messages[0].Body, "0800 100 200") {
					t.Errorf("help answer %q lacks the contact", d.Change.Messages[0].Body)
				}
			}},
		{name: "help without conversation", st: none, body: "HELP", metric: "help", sent: []string{KindHelp}},
		{name: "number without conversation", st: none, body: "2", metric: "no_conversation",
			check: func(t *testing.T, d replyDecision) {
				if d.Change.Inbound == nil || d.Change.Inbound.Ticket != 0 {
					t.Errorf("inbound = %+v, want recorded without a ticket", d.Change.Inbound)
				}
			}},
		{name: "slot chosen", st: at(stageOffer, false), body: "2", metric: "slot", entries: []string{"7:slot 2"}, sent: []string{KindConfirm},
			check: func(t *testing.T, d replyDecision) {
				c := d.Change
				if b := c.Book; b == nil || b.Technician != "tom" || !b.Start.Equal(slots[1].Start) || b.Actor != "customer" {
					t.Errorf("booking = %+v, want slot 2 by the customer", b)
				}
				if !d.Reoffer || c.Stage != stageScheduled || !c.ReleaseHolds || len(c.Jobs) != 1 || c.Jobs[0].Kind != jobVisitReminder {
					t.Errorf("decision = %+v, want a fallback re-offer, stage scheduled, holds released, the visit reminder", d)
				}
				if c.Inbound == nil || c.Inbound.Ticket != 7 {
					t.Errorf("inbound = %+v, want recorded on ticket 7", c.Inbound)
				}
			}},
		{name: "slot chosen, customer without consent", st: noConsent, body: "1", metric: "slot", entries: []string{"7:slot 1"},
			check: func(t *testing.T, d replyDecision) {
				if d.Change.Book == nil || d.Change.Stage != "" || len(d.Change.Jobs) != 0 {
					t.Errorf("change = %+v, want a booking only", d.Change)
				}
			}},
		{name: "slot passed", st: passed, body: "1", metric: "slot", entries: []string{"7:slot 1"},
			check: func(t *testing.T, d replyDecision) {
				if d.Change.Book != nil || !d.Reoffer {
					t.Errorf("decision = %+v, want a re-offer and no booking", d)
				}
			}},
		{name: "slot out of range", st: at(stageOffer, false), body: "7", metric: "slot", entries: []string{"7:clarify"}, sent: []string{KindClarify},
			check: func(t *testing.T, d replyDecision) {
				if !strings.Contains(d.Change.Messages[0].Body, "(1, 2)") {
					t.Errorf("clarification %q does not name the slots", d.Change.Messages[0].Body)
				}
			}},
		{name: "other at an offer", st: at(stageOffer, false), body: "banana", metric: "other", entries: []string{"7:clarify"},
			sent: []string{KindClarify}},
		{name: "other at an offer clarified", st: at(stageOffer, true), body: "what?", metric: "other", entries: []string{"7:clarify"},
			sent: []string{KindClarify}},
		{name: "no at an offer", st: at(stageOffer, false), body: "No", metric: "no", entries: []string{"7:declined"}, sent: []string{KindDeclined},
			check: func(t *testing.T, d replyDecision) {
				c := d.Change
				if c.Status == nil || c.Status.To != proactive.TicketDeclined || c.Stage != stageDone || !c.ReleaseHolds ||
					!reflect.DeepEqual(c.CancelJobs, []string{jobOfferReminder, jobOfferExpire}) {
					t.Errorf("change = %+v, want declined, done, holds released, offer jobs cancelled", c)
				}
			}},
		{name: "call at an offer", st: at(stageOffer, false), body: "CALL", metric: "call", entries: []string{"7:callback"},
			sent: []string{KindCallback}},
		{name: "call when scheduled", st: at(stageScheduled, false), body: "call", metric: "call", entries: []string{"7:callback"},
			sent: []string{KindCallback}},
		{name: "number when scheduled", st: at(stageScheduled, false), body: "2", metric: "reschedule", entries: []string{"7:reschedule 2"},
			sent: []string{KindConfirm},
			check: func(t *testing.T, d replyDecision) {
				if b := d.Change.Book; b == nil || !b.Reschedule || !d.Reschedule {
					t.Errorf("booking %+v, want the visit moved", b)
				}
			}},
		{name: "not a slot when scheduled", st: at(stageScheduled, false), body: "9", metric: "other", entries: []string{"7:clarify"},
			sent: []string{KindClarify}},
		{name: "no when scheduled", st: at(stageScheduled, false), body: "NO", metric: "other", entries: []string{"7:clarify"},
			sent: []string{KindClarify}},
		{name: "survey score, NPS due", st: at(stageSurvey, false), body: "4", metric: "survey", entries: []string{"7:survey"}, sent: []string{KindNPS},
			check: func(t *testing.T, d replyDecision) {
				c := d.Change
				if c.CSAT != 4 || c.Close != "notify" || c.Stage != stageNPS || c.Ask == nil || c.Ask.Survey != proactive.SurveyNPS ||
					c.Ask.Customer != "alice" || len(c.CancelJobs) != 0 || len(c.Jobs) != 1 || c.Jobs[0].Kind != jobSurveyTimeout ||
					!c.Jobs[0].Due.Equal(now.Add(48*time.Hour)) {
					t.Errorf("change = %+v, want csat 4, closed, the NPS question asked with its own timeout", c)
				}
				has(t, c.Messages[0].Body, "recommend Proactive", "0 (not at all) to 10")
				if d.Survey != proactive.SurveyCSAT || d.Score != 4 {
					t.Errorf("answer %s %d, want csat 4", d.Survey, d.Score)
				}
			}},
		{name: "nps score", st: at(stageNPS, false), body: "9", metric: "nps", entries: []string{"7:nps"}, sent: []string{KindThanks},
			check: func(t *testing.T, d replyDecision) {
				c := d.Change
				if c.Answer == nil || *c.Answer != (devices.SurveyScore{Survey: proactive.SurveyNPS, Score: 9}) || c.Entries[0].Body["nps"] != 9 ||
					c.Close != "" || c.CSAT != 0 || c.Stage != stageDone || !reflect.DeepEqual(c.CancelJobs, []string{jobSurveyTimeout}) {
					t.Errorf("change = %+v, want nps 9, done, the timeout cancelled, no closing", c)
				}
			}},
		{name: "nps zero", st: at(stageNPS, false), body: "0", metric: "nps", entries: []string{"7:nps"}, sent: []string{KindThanks}},
		{name: "nps out of range", st: at(stageNPS, false), body: "11", metric: "other", entries: []string{"7:clarify"}, sent: []string{KindClarify},
			check: func(t *testing.T, d replyDecision) {
				has(t, d.Change.Messages[0].Body, "from 0 to 10")
			}},
		{name: "ces out of range", st: at(stageCES, false), body: "0", metric: "other", entries: []string{"7:clarify"}, sent: []string{KindClarify},
			check: func(t *testing.T, d replyDecision) {
				has(t, d.Change.Messages[0].Body, "from 1 to 5")
			}},
		{name: "ces score", st: at(stageCES, false), body: "5", metric: "ces", entries: []string{"7:ces"}, sent: []string{KindThanks},
			check: func(t *testing.T, d replyDecision) {
				if a := d.Change.Answer; a == nil || *a != (devices.SurveyScore{Survey: proactive.SurveyCES, Score: 5}) || d.Change.Stage != stageDone {
					t.Errorf("change = %+v, want ces 5, done", d.Change)
				}
			}},
		{name: "stop at the nps question", st: at(stageNPS, false), body: "STOP", metric: "stop", entries: []string{"7:opt_out", "9:opt_out"},
			sent: []string{KindOptOut}},
		{name: "help at the ces question", st: at(stageCES, false), body: "HELP", metric: "help", entries: []string{"7:help", "9:help"},
			sent: []string{KindHelp}},
		{name: "survey score, NPS asked lately", st: npsAsked, body: "4", metric: "survey", entries: []string{"7:survey"}, sent: []string{KindThanks},
			check: func(t *testing.T, d replyDecision) {
				c := d.Change
				if c.CSAT != 4 || c.Entries[0].Body["csat"] != 4 || c.Close != "notify" || c.Stage != stageDone ||
					!reflect.DeepEqual(c.CancelJobs, []string{jobSurveyTimeout}) {
					t.Errorf("change = %+v, want csat 4, closed by notify, done, survey timeout cancelled", c)
				}
			}},
		{name: "survey out of range", st: at(stageSurvey, false), body: "9", metric: "other", entries: []string{"7:clarify"},
			sent: []string{KindClarify}},
		{name: "no at a survey", st: at(stageSurvey, false), body: "no", metric: "other", entries: []string{"7:clarify"},
			sent: []string{KindClarify}},
		{name: "call at a survey", st: at(stageSurvey, false), body: "CALL", metric: "call", entries: []string{"7:callback"},
			sent: []string{KindCallback}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decisionNotifier().decideReply(tc.st, "SM1", tc.body, now)
			if err != nil {
				t.Fatal(err)
			}
			if d.Metric != tc.metric {
				t.Errorf("metric %q, want %q", d.Metric, tc.metric)
			}
			if got := handled(d.Change); !reflect.DeepEqual(got, tc.entries) {
				t.Errorf("timeline entries %v, want %v", got, tc.entries)
			}
			if got := kinds(d.Change); !reflect.DeepEqual(got, tc.sent) {
				t.Errorf("messages %v, want %v", got, tc.sent)
			}
			if in := d.Change.Inbound; in == nil || in.SID != "SM1" || in.From != alice.Phone {
				t.Errorf("inbound = %+v, want SM1 from alice", in)
			}
			if d.Change.ClaimClarify != (len(tc.sent) == 1 && tc.sent[0] == KindClarify) {
				t.Errorf("claims the clarification: %v", d.Change.ClaimClarify)
			}
			if d.Change.ClaimClarify {
				if o := d.Change.Otherwise; o == nil || !reflect.DeepEqual(handled(*o), []string{"7:ignored"}) || len(o.Messages) != 0 {
					t.Errorf("otherwise = %+v, want the message recorded as ignored, no answer", o)
				}
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
	t.Run("without SID", func(t *testing.T) {
		d, err := decisionNotifier().decideReply(at(stageOffer, false), "", "CALL", now)
		if err != nil || d.Change.Inbound != nil {
			t.Errorf("inbound = %+v, %v: want none recorded", d.Change.Inbound, err)
		}
	})
}

// TestDecideAlert: an alert's outreach, decided without a database.
func TestDecideAlert(t *testing.T) {
	now := time.Date(2026, 3, 9, 8, 30, 0, 0, time.UTC)
	consent := proactive.Customer{ID: "alice", Phone: "+33611111111", SMSConsent: true, ConsentAt: now}
	withdrawn := proactive.Customer{ID: "alice", ConsentAt: now}
	never := proactive.Customer{ID: "alice"}
	tk := proactive.Ticket{ID: 3, Status: proactive.TicketOpen}
	review := contactState{Contact: proactive.ContactReview}
	none := contactState{Contact: proactive.ContactNone}
	old := contactState{Contact: proactive.ContactAuto, Age: 2 * time.Hour, TooOld: true}
	untrusted := contactState{Contact: proactive.ContactAuto, Untrusted: true, Trust: Trust{Outcomes: 5, Precision: 0.2}}
	for _, tc := range []struct {
		name   string
		st     alertState
		action alertAction
		reason string
	}{
		{"open already", alertState{Party: party{Customer: consent}, Ticket: tk}, alertNone, ""},
		{"no customer", alertState{Ticket: tk, Created: true}, alertSkip, "no_customer"},
		{"opted out", alertState{Party: party{Customer: withdrawn}, Ticket: tk, Created: true}, alertSkip, "opted_out"},
		{"no consent", alertState{Party: party{Customer: never}, Ticket: tk, Created: true}, alertSkip, "no_consent"},
		{"cooldown", alertState{Party: party{Customer: consent}, Ticket: tk, Created: true, Recent: 1}, alertSkip, "contact_cooldown"},
		{"offer", alertState{Party: party{Customer: consent}, Ticket: tk, Created: true}, alertOffer, ""},
		{"review", alertState{Party: party{Customer: consent}, Ticket: tk, Created: true, Contact: review}, alertSkip, "review"},
		{"none", alertState{Party: party{Customer: consent}, Ticket: tk, Created: true, Contact: none}, alertSkip, "contact_none"},
		{"none before age", alertState{Party: party{Customer: consent}, Ticket: tk, Created: true, Contact: contactState{Contact: proactive.ContactNone, TooOld: true}}, alertSkip, "contact_none"},
		{"too old", alertState{Party: party{Customer: consent}, Ticket: tk, Created: true, Contact: old}, alertSkip, "alert_age"},
		{"untrusted", alertState{Party: party{Customer: consent}, Ticket: tk, Created: true, Contact: untrusted}, alertSkip, "untrusted_rule"},
		{"policy before customer", alertState{Party: party{Customer: never}, Ticket: tk, Created: true, Contact: review}, alertSkip, "review"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decideAlert(tc.st, now)
			if d.Action != tc.action || d.Reason != tc.reason {
				t.Fatalf("decision %+v, want action %d reason %q", d, tc.action, tc.reason)
			}
			if d.Action != alertSkip {
				return
			}
			c := d.Change
			if len(c.Entries) != 1 || c.Entries[0].Ticket != 3 || c.Entries[0].Body["outreach"] != "skipped" ||
				c.Entries[0].Body["reason"] != tc.reason || c.Entries[0].Body["note"] == "" {
				t.Errorf("entries %+v, want one skip with reason %q and a note", c.Entries, tc.reason)
			}
			if c.Held != tc.reason || c.Ticket != 3 {
				t.Errorf("held %q on ticket %d, want %q on 3", c.Held, c.Ticket, tc.reason)
			}
			// Held tickets wait in review, but a contact none one stays open.
			toReview := c.Status != nil && c.Status.To == proactive.TicketReview
			if toReview != (tc.reason != "contact_none") {
				t.Errorf("status change %+v: to review %v, want %v", c.Status, toReview, tc.reason != "contact_none")
			}
		})
	}
	t.Run("offer change", func(t *testing.T) {
		n := decisionNotifier()
		st := alertState{Party: party{Customer: consent, Device: proactive.Device{ID: "fridge-1", Model: "Fridge 9"}, Component: "fan"},
			Ticket: tk, Created: true}
		a := proactive.Alert{Severity: proactive.SeverityCritical, TimeToFailure: 5 * 24 * time.Hour}
		c, err := n.offerChange(st, n.planOffer(a), nil, now)
		if err != nil {
			t.Fatal(err)
		}
		if c.Start == nil || c.Start.Stage != stageOffer || c.Status == nil || c.Status.To != proactive.TicketOffered ||
			len(c.Messages) != 1 || c.Messages[0].Urgent || len(c.Jobs) != 2 {
			t.Errorf("change = %+v, want the conversation started, offered, one non-urgent offer, reminder and expiry", c)
		}
		if !strings.Contains(c.Messages[0].Body, "about 5 days") || !strings.Contains(c.Messages[0].Body, "CALL") {
			t.Errorf("offer without slots %q", c.Messages[0].Body)
		}
	})
}
