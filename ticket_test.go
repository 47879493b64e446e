package proactive_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

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

func TestThreadFollowsTheTimeline(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 32, 42, 0, time.UTC)
	timeline := []proactive.TicketEvent{
		{ID: 4, Kind: proactive.TicketEventMessage, Body: json.RawMessage(`{"direction":"out","kind":"offer","message_id":3}`)},
		{ID: 13, Kind: proactive.TicketEventMessage, Body: json.RawMessage(`{"direction":"in","body":"2"}`)},
		{ID: 14, Kind: proactive.TicketEventState, Body: json.RawMessage(`{"from":"offered","to":"scheduled"}`)},
		{ID: 16, Kind: proactive.TicketEventMessage, Body: json.RawMessage(`{"direction":"out","kind":"confirm","message_id":4}`)},
	}
	got := proactive.MessageEvents(timeline)
	if len(got) != 2 || got[3] != 4 || got[4] != 16 {
		t.Fatalf("MessageEvents = %v, want map[3:4 4:16]", got)
	}
	// The confirmation was queued (at) before the reply was recorded, yet
	// follows it; a message without an event comes last.
	if c := proactive.CompareThread(13, at, got[4], at.Add(-time.Millisecond)); c >= 0 {
		t.Errorf("reply vs confirmation = %d, want < 0", c)
	}
	if c := proactive.CompareThread(0, at.Add(-time.Hour), 16, at); c <= 0 {
		t.Errorf("no event vs event = %d, want > 0", c)
	}
	if c := proactive.CompareThread(0, at, 0, at.Add(time.Second)); c >= 0 {
		t.Errorf("two without events = %d, want by time", c)
	}
}
