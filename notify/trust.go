package notify

import (
	"context"

	"github.com/proactivehq/proactive/devices"
)

// Trust is a rule's measured trust: the share of its tickets' outcomes that
// confirmed a fault, and whether that holds its new tickets to review.
type Trust struct {
	Rule string `json:"rule"`
	// Outcomes is how many of the rule's tickets closed with an outcome,
	// Confirmed how many of those confirmed a fault (fault_confirmed,
	// part_replaced); no_fault_found and false_alarm count against it.
	Outcomes  int `json:"outcomes"`
	Confirmed int `json:"confirmed"`
	// Precision is Confirmed over Outcomes, 0 without outcomes.
	Precision float64 `json:"precision"`
	// Held is set when the rule has at least MinOutcomes outcomes and a
	// precision under MinPrecision: its new tickets wait in review.
	Held bool `json:"held"`
}

// trust judges a rule's record against MinOutcomes and MinPrecision.
func (n *Notifier) trust(rt devices.RuleTrust) Trust {
	t := Trust{Rule: rt.Rule, Outcomes: rt.Outcomes, Confirmed: rt.Confirmed, Precision: rt.Precision()}
	t.Held = n.opt.MinPrecision > 0 && t.Outcomes > 0 && t.Outcomes >= n.opt.MinOutcomes && t.Precision < n.opt.MinPrecision
	return t
}

// Trust returns the measured trust of every rule with an outcome, by rule;
// a rule without any is trusted (and absent).
func (n *Notifier) Trust(ctx context.Context) (map[string]Trust, error) {
	all, err := n.store.RulesTrust(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Trust, len(all))
	for r, rt := range all {
		out[r] = n.trust(rt)
	}
	return out, nil
}
