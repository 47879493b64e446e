package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// visitDone takes an offer to alice through to the satisfaction question:
// the alert, slot 1 booked, the visit done with a replaced part.
func (e *env) visitDone(dev, component string) proactive.Ticket {
	e.t.Helper()
	e.fire(dev, component)
	e.reply(alice, "1")
	e.poll()
	tk := e.ticket(dev, component)
	must(e.n.VisitDone(e.ctx, tk.ID, "", proactive.OutcomePartReplaced, "new part"))
	e.poll()
	return tk
}

// last returns the latest message sent to alice.
func (e *env) last() string {
	e.t.Helper()
	got := e.sentTo(alice)
	if len(got) == 0 {
		e.t.Fatal("nothing sent to alice")
	}
	return got[len(got)-1]
}

// The three questions, one at a time, through the fake Twilio: replies out
// of range get the clarifying answer with the range, keywords keep
// working, the answers are on the ticket's timeline, in the measures and in
// the counters.
func TestSurveyConversation(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, dsn, func(o *notify.Options) { o.CES, o.Registerer = true, reg })
		tk := e.visitDone("fridge-1", "compressor")
		contains(t, e.last(), "How was the visit", "1 (poor) to 5 (excellent)")

		step := func(reply string, want ...string) {
			t.Helper()
			n := len(e.sentTo(alice))
			if code := e.reply(alice, reply); code != 200 {
				t.Fatalf("reply %q answered %d", reply, code)
			}
			e.poll()
			e.wantSent(alice, n+1)
			contains(t, e.last(), want...)
			if m := e.last(); len(m) > notify.MaxBody {
				t.Errorf("%q is %d characters", m, len(m))
			}
		}
		step("7", "from 1 to 5")
		step("4", "recommend Proactive", "0 (not at all) to 10")
		if tk = e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketClosed {
			t.Errorf("after the satisfaction answer the ticket is %s, want closed", tk.Status)
		}
		step("11", "from 0 to 10")
		step("help", "reply CALL") // the keyword's answer; the question still waits
		step("ten", "from 0 to 10")
		step("10", "how easy", "1 (very hard) to 5 (very easy)")
		step("5", "Thank you")

		conv := must(e.n.Conversation(e.ctx, tk.ID))
		if conv.Stage != "done" || conv.CSAT != 4 || conv.NPS == nil || *conv.NPS != 10 || conv.CES == nil || *conv.CES != 5 {
			t.Errorf("conversation = %+v, want done with CSAT 4, NPS 10, CES 5", conv)
		}
		answers := map[string]any{}
		for _, ev := range e.ticket("fridge-1", "compressor").Timeline {
			if ev.Kind != proactive.TicketEventMessage || ev.Actor != "customer" {
				continue
			}
			for _, k := range []string{`"csat":4`, `"nps":10`, `"ces":5`} {
				if strings.Contains(string(ev.Body), k) {
					answers[k] = true
				}
			}
		}
		if len(answers) != 3 {
			t.Errorf("timeline holds the answers %v, want csat 4, nps 10 and ces 5", answers)
		}

		// A later reply finds no question waiting.
		n := len(e.sentTo(alice))
		e.reply(alice, "9")
		e.poll()
		e.wantSent(alice, n)

		outs := must(e.n.Outcomes(e.ctx, devices.ByModel))
		if len(outs) != 1 || outs[0].Key != "fridge-a200" || outs[0].NPS != 100 || outs[0].CSAT != 4 || outs[0].CES != 5 ||
			outs[0].Fixes != 1 || outs[0].FirstVisitFixRate != 1 {
			t.Errorf("outcomes by model = %+v", outs)
		}
		for _, c := range []struct {
			labels []string
			value  float64
		}{
			{[]string{"survey", "csat", "score", "4"}, 1},
			{[]string{"survey", "nps", "score", "10"}, 1},
			{[]string{"survey", "nps", "score", "0"}, 0}, // initialised at zero
			{[]string{"survey", "ces", "score", "5"}, 1},
		} {
			if got := sample(t, reg, "proactive_survey_answers_total", c.labels...); got != c.value {
				t.Errorf("answers %v: %v, want %v", c.labels, got, c.value)
			}
		}
		// The fix: counted as a first visit, the other series at zero.
		if got := sample(t, reg, "proactive_fixes_total", "rule", "compressor_wear", "model", "fridge-a200", "first_visit", "true"); got != 1 {
			t.Errorf("first-visit fixes %v, want 1", got)
		}
		if got := sample(t, reg, "proactive_fixes_total", "rule", "compressor_wear", "model", "fridge-a200", "first_visit", "false"); got != 0 {
			t.Errorf("later-visit fixes %v, want 0", got)
		}
		if got := sample(t, reg, "proactive_alert_to_fix_seconds", "rule", "compressor_wear"); got != 1 {
			t.Errorf("alert-to-fix observations %v, want 1", got)
		}
	})
}

// sample returns the value of one series in reg, found by its labels: a
// counter's value, a histogram's count of observations.
func sample(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// The NPS question goes to one customer at most once per 90 days, on the
// wall clock: a satisfaction answer a minute short of 90 days after the
// last NPS question gets the thanks, one at 90 days the question.
func TestNPSOncePer90Days(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.visitDone("fridge-1", "compressor")
		asked := e.clock.Now()
		e.reply(alice, "5")
		e.poll()
		contains(t, e.last(), "recommend")
		e.reply(alice, "3")
		e.poll()
		contains(t, e.last(), "Thank you")

		// A week later another fault of the same fridge: the satisfaction
		// question, and no NPS question.
		e.clock.Set(asked.Add(7 * 24 * time.Hour))
		e.visitDone("fridge-1", "fan")
		e.reply(alice, "4")
		e.poll()
		contains(t, e.last(), "Thank you")

		e.clock.Set(asked.Add(80 * 24 * time.Hour))
		e.visitDone("fridge-1", "compressor")
		e.clock.Set(asked.Add(90*24*time.Hour - time.Minute))
		e.reply(alice, "4")
		e.poll()
		contains(t, e.last(), "Thank you")

		e.clock.Set(asked.Add(90*24*time.Hour - time.Minute))
		e.visitDone("fridge-1", "fan")
		e.clock.Set(asked.Add(90 * 24 * time.Hour))
		e.reply(alice, "4")
		e.poll()
		contains(t, e.last(), "recommend")
	})
}

// An NPS question without an answer ends quietly after SurveyTimeout: on
// the timeline, and a late answer is not taken.
func TestNPSQuestionTimesOut(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		tk := e.visitDone("fridge-1", "compressor")
		e.reply(alice, "5")
		e.poll()
		contains(t, e.last(), "recommend")
		e.clock.Add(48 * time.Hour)
		e.poll()
		conv := must(e.n.Conversation(e.ctx, tk.ID))
		if conv.Stage != "done" || conv.NPS != nil {
			t.Errorf("conversation = %+v, want done without an NPS answer", conv)
		}
		n := len(e.sentTo(alice))
		e.reply(alice, "9")
		e.poll()
		e.wantSent(alice, n)
		if conv = must(e.n.Conversation(e.ctx, tk.ID)); conv.NPS != nil {
			t.Errorf("late answer stored: %+v", conv)
		}
		found := false
		for _, ev := range e.ticket("fridge-1", "compressor").Timeline {
			found = found || strings.Contains(string(ev.Body), `"question":"nps"`) && strings.Contains(string(ev.Body), `"survey":"no answer"`)
		}
		if !found {
			t.Error("the timeline does not say the NPS question went unanswered")
		}
	})
}
