package proactive_test

import (
	"slices"
	"testing"

	"github.com/proactivehq/proactive"
)

func TestTicketTransitions(t *testing.T) {
	next := map[proactive.TicketStatus][]proactive.TicketStatus{
		proactive.TicketOpen:      {proactive.TicketReview, proactive.TicketOffered, proactive.TicketScheduled, proactive.TicketClosed, proactive.TicketCancelled},
		proactive.TicketReview:    {proactive.TicketOpen, proactive.TicketOffered, proactive.TicketScheduled, proactive.TicketClosed, proactive.TicketCancelled},
		proactive.TicketOffered:   {proactive.TicketScheduled, proactive.TicketDeclined, proactive.TicketExpired, proactive.TicketCancelled},
		proactive.TicketScheduled: {proactive.TicketVisited, proactive.TicketCancelled},
		proactive.TicketVisited:   {proactive.TicketClosed, proactive.TicketCancelled},
	}
	for _, from := range proactive.TicketStatuses {
		t.Run(string(from), func(t *testing.T) {
			if !from.Valid() {
				t.Errorf("%s is not Valid", from)
			}
			if got := from.Next(); !slices.Equal(got, next[from]) {
				t.Errorf("Next() = %v, want %v", got, next[from])
			}
			if from.Terminal() != (len(next[from]) == 0) {
				t.Errorf("Terminal() = %v with next states %v", from.Terminal(), next[from])
			}
			for _, to := range proactive.TicketStatuses {
				if got, want := from.CanTransition(to), slices.Contains(next[from], to); got != want {
					t.Errorf("CanTransition(%s) = %v, want %v", to, got, want)
				}
			}
		})
	}
	if proactive.TicketStatus("reopened").Valid() {
		t.Error("reopened is Valid")
	}
	// Next returns the caller's slice: changing it leaves the machine alone.
	proactive.TicketScheduled.Next()[0] = proactive.TicketClosed
	if proactive.TicketScheduled.CanTransition(proactive.TicketClosed) {
		t.Error("Next shares the transition table")
	}
}
