package notify

import (
	"context"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// After a visit the conversation asks, one question at a time: the
// satisfaction question (CSAT, 1–5; its answer closes the ticket), then, at
// most once per Options.NPSInterval per customer, the loyalty question (NPS,
// 0–10), then, with Options.CES, the effort question (CES, 1–5). A question
// follows only an answer to the one before: a customer who does not answer
// is not asked more. Each question waits SurveyTimeout for its answer; each
// answer is on the ticket's timeline.

// The conversation stages of the NPS and CES questions (stageSurvey is the
// satisfaction question's).
const (
	stageNPS = "nps"
	stageCES = "ces"
)

// surveyStage reports whether a conversation at stage awaits a survey
// answer, and which survey.
func surveyStage(stage string) (proactive.Survey, bool) {
	switch stage {
	case stageSurvey:
		return proactive.SurveyCSAT, true
	case stageNPS:
		return proactive.SurveyNPS, true
	case stageCES:
		return proactive.SurveyCES, true
	}
	return "", false
}

// npsDue reports whether a customer last asked the NPS question at last
// (zero: never) may be asked it at now.
func (n *Notifier) npsDue(last, now time.Time) bool {
	if n.opt.NPSInterval < 0 { // Off
		return false
	}
	return last.IsZero() || now.Sub(last) >= n.opt.NPSInterval
}

// decideSurvey decides a valid answer r.Number to the survey question that
// the active conversation awaits: the answer recorded on the ticket's
// timeline, then the next question, or the thanks that end the
// conversation.
func (n *Notifier) decideSurvey(d *replyDecision, st replyState, survey proactive.Survey, r parsedReply, body string, now time.Time) error {
	c := &d.Change
	conv, p := st.Conversations.Active, st.Party
	d.Metric, d.Survey, d.Score = "survey", survey, r.Number
	handled := string(survey)
	if survey == proactive.SurveyCSAT {
		handled = "survey" // as before NPS and CES existed
		c.CSAT, c.Close = r.Number, "notify"
	} else {
		d.Metric = string(survey)
		c.Answer = &devices.SurveyScore{Survey: survey, Score: r.Number}
	}
	e := inEntry(conv.Ticket, body, handled)
	e.Body[string(survey)] = r.Number
	c.Entries = append(c.Entries, e)

	var next proactive.Survey
	switch {
	case survey == proactive.SurveyCSAT && n.npsDue(st.NPSAskedAt, now):
		next = proactive.SurveyNPS
	case survey != proactive.SurveyCES && n.opt.CES:
		// CES follows the NPS question; after a CSAT answer only when the
		// NPS question is not due (NPS off).
		if survey == proactive.SurveyNPS || n.opt.NPSInterval < 0 {
			next = proactive.SurveyCES
		}
	}
	if next == "" {
		c.Stage, c.CancelJobs = stageDone, []string{jobSurveyTimeout}
		text, err := n.render(p.Customer.Language, KindThanks, p.data())
		if err != nil {
			return err
		}
		c.Messages = append(c.Messages, outMessage(p, conv.Ticket, KindThanks, text, false, now))
		return nil
	}
	kind, stage := KindNPS, stageNPS
	if next == proactive.SurveyCES {
		kind, stage = KindCES, stageCES
	}
	text, err := n.render(p.Customer.Language, kind, p.data())
	if err != nil {
		return err
	}
	c.Stage = stage
	c.Ask = &devices.SurveyAsk{Survey: next, Customer: conv.Customer}
	c.Messages = append(c.Messages, outMessage(p, conv.Ticket, kind, text, false, now))
	// The next question gets its own wait for an answer.
	c.Jobs = append(c.Jobs, devices.NewJob{Kind: jobSurveyTimeout, Due: now.Add(n.opt.SurveyTimeout)})
	return nil
}

// isSurveyAnswer reports whether r answers the survey question a
// conversation at stage awaits.
func isSurveyAnswer(stage string, r parsedReply) bool {
	s, ok := surveyStage(stage)
	return ok && r.Kind == replyNumber && s.Valid(r.Number)
}

// surveyClarifyData is what the clarifying answer to a reply that is not an
// answer to survey's question says: the range of answers.
func surveyClarifyData(survey proactive.Survey) msgData {
	lo, hi := survey.Range()
	return msgData{Low: lo, High: hi}
}

// endQuestion ends a conversation whose NPS or CES question got no answer
// within SurveyTimeout: recorded on the timeline; the ticket was closed by
// the satisfaction answer already.
func (n *Notifier) endQuestion(ctx context.Context, tx *devices.Tx, ticket int64, survey proactive.Survey, now time.Time) error {
	if _, err := tx.Record(ctx, ticket, proactive.TicketEventMessage, "notify", map[string]any{
		"survey": "no answer", "question": string(survey), "after": n.opt.SurveyTimeout.String()}); err != nil {
		return err
	}
	return setStage(ctx, tx, ticket, stageDone, now)
}

// Outcomes computes the loyalty, effort and fix measures grouped by g (see
// devices.Outcomes); EInvalid for an unknown grouping.
func (n *Notifier) Outcomes(ctx context.Context, g devices.GroupBy) ([]devices.Outcomes, error) {
	return n.store.Outcomes(ctx, g)
}
